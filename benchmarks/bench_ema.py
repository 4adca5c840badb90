#!/usr/bin/env python
"""EMA teacher update: mmdet's ``ExpMomentumEMA`` (one ``mul_`` + ``add_`` per
parameter tensor, one copy per buffer) against bombo's
``ForeachExpMomentumEMA`` (``torch._foreach_*`` over all tensors), on the
models of the configs, in one process.

    python benchmarks/bench_ema.py                       # toy BoMBo + R50 VOC
    python benchmarks/bench_ema.py --configs configs/bombo/bombo_swin-t_pafpn_voc.py
    python benchmarks/bench_ema.py --device cuda         # on a GPU

For every config: the model is built without pretrained weights, both EMA
models are created from it, and ``--rounds`` interleaved rounds of ``--steps``
updates each are timed (the student's weights are perturbed between rounds,
outside the clock); prints the median ms per update, the ratio per-tensor /
foreach, and whether both averaged models are bit-identical at the end.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

DEFAULT_CONFIGS = ('configs/toy/toy_r18_fpn_bombo.py',
                   'configs/bombo/bombo_r50_pafpn_voc.py')


def build_model(path, device):
    from mmdet.registry import MODELS
    from bombo.utils.config import load_config
    cfg = load_config(path)
    cfg.model.backbone.init_cfg = None  # no pretrained weights offline
    torch.manual_seed(0)
    return MODELS.build(cfg.model).to(device).train()


def sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def bench(model, rounds, steps, device):
    from mmdet.models.layers import ExpMomentumEMA
    from bombo.engine import ForeachExpMomentumEMA
    emas = {'ExpMomentumEMA': ExpMomentumEMA(model),
            'ForeachExpMomentumEMA': ForeachExpMomentumEMA(model)}
    for ema in emas.values():  # steps 0 (a copy) is not the update timed
        ema.update_parameters(model)
    times = {name: [] for name in emas}
    for r in range(rounds):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.0 + 1e-3 * ((r % 3) - 1))
        for name, ema in emas.items():
            sync(device)
            t = time.perf_counter()
            for _ in range(steps):
                ema.update_parameters(model)
            sync(device)
            times[name].append((time.perf_counter() - t) / steps)
    a, b = (e.state_dict() for e in emas.values())
    same = all(torch.equal(a[k], b[k]) for k in a)
    return {k: statistics.median(v) for k, v in times.items()}, same


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=type('F', (argparse.ArgumentDefaultsHelpFormatter,
                                   argparse.RawDescriptionHelpFormatter), {}))
    p.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS),
                   help='configs whose models are averaged')
    p.add_argument('--device', default='cpu', help='torch device')
    p.add_argument('--rounds', type=int, default=7,
                   help='interleaved rounds (the median is reported)')
    p.add_argument('--steps', type=int, default=10,
                   help='EMA updates per round')
    args = p.parse_args(argv)
    from mmdet.utils import register_all_modules
    register_all_modules()
    import bombo  # noqa: F401  (registers bombo's modules)
    print(f'EMA update, {args.device}, median of {args.rounds} rounds x '
          f'{args.steps} updates')
    print(f'{"config":<42} {"tensors":>7} {"per-tensor ms":>13} '
          f'{"foreach ms":>10} {"ratio":>6} identical')
    rows = []
    for path in args.configs:
        model = build_model(path, args.device)
        n = sum(1 for _ in model.parameters()) + sum(1 for _ in
                                                      model.buffers())
        t, same = bench(model, args.rounds, args.steps, args.device)
        ratio = t['ExpMomentumEMA'] / t['ForeachExpMomentumEMA']
        rows.append((path, ratio, same))
        print(f'{osp.basename(path):<42} {n:>7} '
              f'{1e3 * t["ExpMomentumEMA"]:>13.2f} '
              f'{1e3 * t["ForeachExpMomentumEMA"]:>10.2f} {ratio:>5.2f}x '
              f'{same}')
    return rows


if __name__ == '__main__':
    main()
