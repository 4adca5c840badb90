#!/usr/bin/env python
"""Speed of a BoMBo training step (M4B + B4M on the toy config) with the
teacher's features shared between the two branches versus computed by each
branch, in the same process (ratios; the machine is shared and noisy).

    python benchmarks/bench_teacher_cache.py [--steps 10]
"""
import argparse
import copy
import os.path as osp
import sys
import time

import torch

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
sys.path.insert(0, ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--data-root', default='data/toy/')
    args = parser.parse_args()

    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    import bombo  # noqa: F401
    from bombo.models.task_modules.teacher import eval_mode
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/toy/toy_r18_fpn_b4m.py'))
    cfg.model.m4b = dict(type='MaskForBoxBranch', loss_mode='L',
                         refiner=dict(type='MaskForBoxRefiner', mode='m4b',
                                      num_classes=3))
    det_cfg = cfg.train_dataloader.dataset.datasets[0]
    det_cfg.pipeline[2] = dict(type='LoadPseudoMask', pseudo_mask_dir='-',
                               online=True)
    for d in cfg.train_dataloader.dataset.datasets:
        d.data_root = args.data_root
    det, seg = (DATASETS.build(d) for d in cfg.train_dataloader.dataset.datasets)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.set_teacher(copy.deepcopy(model))
    items = [det[i] for i in range(8)] + [seg[i] for i in range(8)]
    data = model.data_preprocessor(pseudo_collate(items), True)

    def step():
        model.zero_grad()
        losses = model.loss(data['inputs'], data['data_samples'])
        model.parse_losses(losses)[0].backward()

    def timed():
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return times

    def uncached(inputs):  # each branch runs the teacher itself
        teacher = model.get_teacher()
        with eval_mode(teacher):
            return teacher.extract_feat(inputs)

    cached = model.teacher_features
    step()  # warm-up
    shared_t, separate_t = [], []
    for _ in range(3):  # interleaved rounds against drifting load
        model.teacher_features = cached
        shared_t += timed()
        model.teacher_features = uncached
        separate_t += timed()
    shared = sorted(shared_t)[len(shared_t) // 2]
    separate = sorted(separate_t)[len(separate_t) // 2]
    print(f'BoMBo step (8 det + 8 seg images, toy): shared teacher features '
          f'{shared:.3f} s, per-branch {separate:.3f} s (medians); '
          f'speed-up x{separate / shared:.2f}')


if __name__ == '__main__':
    main()
