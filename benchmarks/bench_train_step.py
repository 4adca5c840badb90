#!/usr/bin/env python
"""Cost of one training step (forward + backward + optimiser step, and the
EMA teacher update where the config has ``TeacherEMAHook``) of BoMBo, M4B and
B4M against the multi-task baseline (MTL), as ratios measured in one process.

CPU (unless ``--no-cpu``): the toy configs
``configs/toy/toy_r18_fpn_{mtl,m4b,b4m,bombo}.py``
(ResNet-18/2 + FPN(64)) at ``--size`` (default 128²), ``--det`` detection +
``--seg`` segmentation images per step (default 8 + 8).

CUDA (when available, unless ``--no-gpu``): the R50-PAFPN paper configs
(``configs/bombo/{mtl,m4b/...,b4m/...,bombo}_r50_pafpn_voc.py``) at
``--gpu-size`` (default 320 px) with AMP (mmengine's ``AmpOptimWrapper``,
fp16): images per second and peak memory (``torch.cuda.max_memory_allocated``).

Inputs are synthetic, built in-process (no dataset): shapes of random classes
on a noisy background, passed through the real packing transforms
(``GenerateBoxMask`` for the B4M box-shaped mask, ``PackPartialInputs``) and
``PartialDataPreprocessor``; the coarse pseudo-mask of a detection image is
its shapes' mask (GrabCut is offline in training). The backbone's
``init_cfg`` is set to None (no pretrained weights). The teacher is a copy of
the student (the EMA at its first update). Every model's steps are timed in
interleaved rounds (MTL, M4B, B4M, BoMBo, MTL, ...) against the drift of a
shared machine; the figures are medians.

    python benchmarks/bench_train_step.py                       # 128², 8+8
    python benchmarks/bench_train_step.py --size 320 --det 2 --seg 2
    python benchmarks/bench_train_step.py --sizes 96x128,128x96,128x128
    python benchmarks/bench_train_step.py --clock cpu   # shared machine
    python benchmarks/bench_train_step.py --no-cpu --breakdown  # the parts

Figures and what remains: ``docs/speed.md``.
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time

import numpy as np
import torch

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
sys.path.insert(0, ROOT)

TOY = {name: f'configs/toy/toy_r18_fpn_{name.lower()}.py'
       for name in ('MTL', 'M4B', 'B4M', 'BoMBo')}
PAPER = {'MTL': 'configs/bombo/mtl_r50_pafpn_voc.py',
         'M4B': 'configs/bombo/m4b/refined_l_r50_pafpn_voc.py',
         'B4M': 'configs/bombo/b4m/seg_att_object_r50_pafpn_voc.py',
         'BoMBo': 'configs/bombo/bombo_r50_pafpn_voc.py'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--size', type=int, default=128,
                        help='square image side of the CPU toy run')
    parser.add_argument('--sizes', default=None,
                        help='comma-separated HxW sizes cycled over the '
                        'images instead of --size (a real, padded, '
                        'non-square batch), e.g. 96x128,128x96')
    parser.add_argument('--det', type=int, default=8,
                        help='detection-annotated images per step')
    parser.add_argument('--seg', type=int, default=8,
                        help='segmentation-annotated images per step')
    parser.add_argument('--rounds', type=int, default=3,
                        help='interleaved rounds over the models')
    parser.add_argument('--steps', type=int, default=4,
                        help='timed steps per model and round')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps per model first (fills the '
                        'memory bank)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (1: steadier on a shared '
                        'machine)')
    parser.add_argument('--models', default='MTL,M4B,B4M,BoMBo',
                        help='comma-separated subset of MTL,M4B,B4M,BoMBo '
                        '(MTL is always measured: it is the reference)')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help="CPU run: 'wall' (time.perf_counter) or 'cpu' "
                        '(time.process_time: this process\'s CPU time, far '
                        'steadier on a machine shared with other jobs; with '
                        '--threads 1 it is the step\'s compute)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--breakdown', action='store_true',
                        help='also time the parts of a BoMBo step on the CPU '
                        'batch (teacher passes, Algorithm 1, keys, bank, '
                        'backward, EMA)')
    parser.add_argument('--no-cpu', action='store_true',
                        help='skip the CPU toy measurement')
    parser.add_argument('--no-gpu', action='store_true',
                        help='skip the CUDA paper-config measurement')
    parser.add_argument('--gpu-size', type=int, default=320,
                        help='image side of the CUDA run')
    parser.add_argument('--gpu-det', type=int, default=32,
                        help='detection images per step on CUDA (paper: 32)')
    parser.add_argument('--gpu-seg', type=int, default=32,
                        help='segmentation images per step on CUDA '
                        '(paper: 32)')
    parser.add_argument('--gpu-steps', type=int, default=5,
                        help='timed steps per model and round on CUDA')
    parser.add_argument('--gpu-rounds', type=int, default=2,
                        help='interleaved rounds on CUDA')
    return parser.parse_args(argv)


# --------------------------------------------------------------------------
# synthetic inputs
def _draw(rng, h, w, num_classes):
    """An image, its semantic mask (0 bg, class+1) and the tight boxes."""
    img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8) + 80
    seg = np.zeros((h, w), np.uint8)
    boxes, labels = [], []
    yy, xx = np.mgrid[:h, :w]
    for _ in range(int(rng.integers(1, 5))):
        bh = int(rng.integers(max(4, h // 8), max(5, h // 2)))
        bw = int(rng.integers(max(4, w // 8), max(5, w // 2)))
        y0 = int(rng.integers(0, h - bh))
        x0 = int(rng.integers(0, w - bw))
        c = int(rng.integers(0, num_classes))
        if rng.random() < 0.5:  # rectangle
            shape = (yy >= y0) & (yy < y0 + bh) & (xx >= x0) & (xx < x0 + bw)
        else:  # ellipse
            shape = (((yy - y0 - bh / 2) / (bh / 2)) ** 2 +
                     ((xx - x0 - bw / 2) / (bw / 2)) ** 2) <= 1
        if not shape.any():
            continue
        img[shape] = rng.integers(0, 255, 3).astype(np.uint8)
        seg[shape] = c + 1
        ys, xs = np.nonzero(shape)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(c)
    return (img, seg, np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(labels, np.int64))


def synthetic_items(num_det, num_seg, sizes, num_classes, seed=0):
    """``num_det + num_seg`` packed samples (``dict(inputs, data_samples)``)
    as the toy / VOC pipelines give them: detection images carry boxes, a
    coarse pseudo-mask (``gt_sem_seg``) and the box-shaped mask
    (``gt_box_mask``); segmentation images carry ``gt_sem_seg`` only.

    Args:
        sizes (list[tuple[int, int]]): (H, W) cycled over the images.
    """
    from mmdet.structures.bbox import HorizontalBoxes

    from bombo.datasets.transforms.partial import PackPartialInputs
    from bombo.datasets.transforms.pseudo_mask import GenerateBoxMask
    rng = np.random.default_rng(seed)
    pack, box_mask = PackPartialInputs(), GenerateBoxMask()
    items = []
    for i in range(num_det + num_seg):
        h, w = sizes[i % len(sizes)]
        img, seg, boxes, labels = _draw(rng, h, w, num_classes)
        task = 'det' if i < num_det else 'seg'
        if task == 'seg':  # segmentation images lose their boxes
            boxes, labels = boxes[:0], labels[:0]
        results = dict(
            img=img, img_shape=(h, w), ori_shape=(h, w),
            scale_factor=(1., 1.), flip=False, flip_direction=None,
            img_id=f'{task}{i}', img_path=f'synthetic/{task}{i}.jpg',
            ann_task=task, gt_bboxes=HorizontalBoxes(boxes),
            gt_bboxes_labels=labels,
            gt_ignore_flags=np.zeros(len(labels), bool),
            gt_seg_map=seg, ignore_index=255)
        if task == 'det':
            results = box_mask(results)
        items.append(pack(results))
    return items


# --------------------------------------------------------------------------
# models and steps
def load_cfg(path, amp=False):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.model.backbone.init_cfg = None
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    return cfg


def ema_of(cfg):
    """The config's TeacherEMAHook settings, or None."""
    for hook in cfg.get('custom_hooks', []) or []:
        if hook.get('type') == 'TeacherEMAHook':
            return hook
    return None


class Stepper:
    """One model, its optimiser wrapper and its EMA teacher; ``step()`` is
    one training iteration on a fixed, preprocessed batch."""

    def __init__(self, cfg, items, device, seed=0):
        from mmdet.registry import MODELS
        from mmengine.dataset import pseudo_collate
        from mmengine.optim import build_optim_wrapper
        torch.manual_seed(seed)
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.to(device).train()
        self.model = model
        self.optim = build_optim_wrapper(model, cfg.optim_wrapper)
        self.ema = None
        hook = ema_of(cfg)
        if hook is not None or model.m4b is not None or model.b4m is not None:
            from bombo.engine import TeacherEMAHook
            hook = dict(hook or {})
            hook.pop('type', None)
            hook.pop('priority', None)
            # the averaged model TeacherEMAHook would build (its defaults)
            ema_cfg = dict(TeacherEMAHook(**hook).ema_cfg, model=model)
            self.ema = MODELS.build(ema_cfg)
            if model.teacher_cfg['type'] == 'ema':
                model.set_teacher(self.ema.module)
        data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)),
                                       True)
        self.inputs, self.samples = data['inputs'], data['data_samples']

    def step(self):
        model = self.model
        with self.optim.optim_context(model):
            losses = model.loss(self.inputs, self.samples)
        loss, _ = model.parse_losses(losses)
        self.optim.update_params(loss)
        if self.ema is not None:
            self.ema.update_parameters(model)


def measure(steppers, rounds, steps, warmup, sync=None,
            clock=time.perf_counter):
    """Median seconds per step of every stepper, interleaved rounds."""
    times = {name: [] for name in steppers}
    for s in steppers.values():
        for _ in range(warmup):
            s.step()
    for _ in range(rounds):
        for name, s in steppers.items():
            for _ in range(steps):
                if sync:
                    sync()
                t = clock()
                s.step()
                if sync:
                    sync()
                times[name].append(clock() - t)
    return {name: statistics.median(t) for name, t in times.items()}


def parse_sizes(args):
    if not args.sizes:
        return [(args.size, args.size)]
    out = []
    for part in args.sizes.split(','):
        h, w = part.lower().split('x')
        out.append((int(h), int(w)))
    return out


def chosen(args):
    names = [n.strip() for n in args.models.split(',') if n.strip()]
    bad = set(names) - set(TOY)
    if bad:
        raise SystemExit(f'unknown --models {sorted(bad)}; choose from '
                         f'{list(TOY)}')
    return ['MTL'] + [n for n in names if n != 'MTL']


def report(title, med, extra=None):
    base = med['MTL']
    print(title)
    for name, t in med.items():
        ratio = '' if name == 'MTL' else f'   {name}/MTL x{t / base:.2f}'
        more = '' if extra is None else '   ' + extra[name]
        print(f'  {name:6s} {t * 1000:8.1f} ms/step{ratio}{more}')


def quiet():
    """No per-parameter init log lines from mmengine."""
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)


def run_cpu(args):
    from mmengine.registry import init_default_scope

    import bombo  # noqa: F401
    init_default_scope('mmdet')
    quiet()
    torch.set_num_threads(args.threads)
    sizes = parse_sizes(args)
    items = synthetic_items(args.det, args.seg, sizes, 3, args.seed)
    steppers = {n: Stepper(load_cfg(TOY[n]), items, 'cpu', args.seed)
                for n in chosen(args)}
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    med = measure(steppers, args.rounds, args.steps, args.warmup,
                  clock=clock)
    size = args.sizes or f'{args.size}x{args.size}'
    report(f'CPU toy R18/2-FPN(64), {size}, {args.det}+{args.seg} images, '
           f'{args.threads} thread(s), {args.clock} clock, medians of '
           f'{args.rounds}x{args.steps} steps:', med)
    return med


def run_gpu(args):
    from mmengine.registry import init_default_scope

    import bombo  # noqa: F401
    init_default_scope('mmdet')
    quiet()
    device = torch.device('cuda')
    sizes = [(args.gpu_size, args.gpu_size)]
    items = synthetic_items(args.gpu_det, args.gpu_seg, sizes, 20, args.seed)
    mem = {}
    # peak memory: each model alone (built, two steps, released)
    for n in chosen(args):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        s = Stepper(load_cfg(PAPER[n], amp=True), items, device, args.seed)
        s.step()
        s.step()
        torch.cuda.synchronize()
        mem[n] = torch.cuda.max_memory_allocated(device) / 2**30
        del s
    torch.cuda.empty_cache()
    steppers = {n: Stepper(load_cfg(PAPER[n], amp=True), items, device,
                           args.seed) for n in chosen(args)}
    med = measure(steppers, args.gpu_rounds, args.gpu_steps, 1,
                  sync=torch.cuda.synchronize)
    imgs = args.gpu_det + args.gpu_seg
    extra = {n: f'{imgs / med[n]:7.1f} img/s   peak {mem[n]:.2f} GiB'
             for n in med}
    report(f'CUDA {torch.cuda.get_device_name(device)}, R50-PAFPN paper '
           f'configs, {args.gpu_size}², {args.gpu_det}+{args.gpu_seg} '
           f'images, AMP fp16, medians of {args.gpu_rounds}x'
           f'{args.gpu_steps} steps (peak memory of each model trained '
           'alone):', med, extra)
    return med, mem


def breakdown(args):
    """Median time of each part of a BoMBo step, measured alone."""
    from bombo.models.task_modules.teacher import (dense_predictions,
                                                   eval_mode)
    from bombo.models.task_modules.b4m_branch import stack_maps
    from bombo.models.task_modules.memory_bank import segmentation_keys
    torch.set_num_threads(args.threads)
    items = synthetic_items(args.det, args.seg, parse_sizes(args), 3,
                            args.seed)
    s = Stepper(load_cfg(TOY['BoMBo']), items, 'cpu', args.seed)
    model, teacher = s.model, s.model.get_teacher()
    seg_idx = model.split_by_task(s.samples)[1]
    inputs = s.inputs[seg_idx]
    samples = [s.samples[i] for i in seg_idx]
    for _ in range(args.warmup):
        s.step()
    with eval_mode(teacher):
        feats = teacher.extract_feat(inputs)
    preds = dense_predictions(teacher, inputs, samples, feats=feats)
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter

    def teacher_feats():
        with eval_mode(teacher):
            teacher.extract_feat(inputs)

    def teacher_z():
        with eval_mode(teacher):
            teacher.seg_head.forward_feats(teacher.seg_feats(feats))

    def keys():
        with torch.no_grad():
            z = teacher.seg_head.forward_feats(teacher.seg_feats(feats))
        t = clock()
        k, lab = segmentation_keys(z.float(), stack_maps(samples,
                                                         'gt_sem_seg'))
        model.b4m.bank.push(k, lab)
        return clock() - t

    mtl = Stepper(load_cfg(TOY['MTL']), items, 'cpu', args.seed)

    def backward(st):
        def run():
            with st.optim.optim_context(st.model):
                losses = st.model.loss(st.inputs, st.samples)
            loss, _ = st.model.parse_losses(losses)
            t = clock()
            loss.backward()
            took = clock() - t
            st.model.zero_grad()
            return took
        return run

    parts = {
        'teacher backbone+neck (seg images)': teacher_feats,
        'teacher semantic head up to z': teacher_z,
        'teacher det head + decoding': lambda: dense_predictions(
            teacher, inputs, samples, feats=feats),
        'Algorithm 1 (M4B refiner)': lambda: model.m4b.refiner(preds,
                                                               samples),
        'keys + bank push (no head)': keys,
        'backward of the whole step': backward(s),
        'EMA update': lambda: s.ema.update_parameters(model),
        'whole step': s.step,
        'MTL: backward of the whole step': backward(mtl),
        'MTL: whole step': mtl.step,
    }
    print(f'BoMBo step parts ({args.clock} clock, medians of '
          f'{args.rounds * args.steps}):')
    for name, fn in parts.items():
        times = []
        for _ in range(args.rounds * args.steps):
            t = clock()
            took = fn()
            times.append(took if isinstance(took, float) else clock() - t)
        print(f'  {name:38s} {statistics.median(times) * 1000:8.1f} ms')


def main(argv=None):
    args = parse_args(argv)
    if not args.no_cpu:
        run_cpu(args)
    if args.breakdown:
        from mmengine.registry import init_default_scope

        import bombo  # noqa: F401
        init_default_scope('mmdet')
        quiet()
        breakdown(args)
    if not args.no_gpu:
        if torch.cuda.is_available():
            run_gpu(args)
        else:
            print('CUDA: not available, the R50-PAFPN AMP rows are not '
                  'measured')


if __name__ == '__main__':
    main()
