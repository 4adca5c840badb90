#!/usr/bin/env python
"""Batch-all triplet loss: bombo's sort-based O(B^2) implementation against
pytorch-metric-learning's ``TripletMarginLoss`` + ``TripletMarginMiner(
type_of_triplets='all')`` (baseline), forward + backward, at B = 256, 1024,
4096.

Each (implementation, B) runs in a fresh subprocess so that its peak memory is
measured cleanly:

* CPU: growth of the process's peak resident set (``ru_maxrss``) over the
  forward + backward passes, measured from the high-water mark reached once
  everything is imported and the inputs exist;
* CUDA: ``torch.cuda.max_memory_allocated`` over the same passes.

Time is the median of ``--repeats`` forward + backward passes after one
warm-up. Both implementations see the same L2-normalised embeddings
(pytorch-metric-learning normalises by default), the same labels and margin;
the script checks that the loss values agree. Ratios are baseline / bombo (> 1
means bombo is faster / smaller). A baseline run whose triplet index lists
alone would exceed ``--pml-max-gb`` is skipped and reported as such.

Usage::

    pip install pytorch-metric-learning
    python benchmarks/bench_triplet.py                       # CPU
    python benchmarks/bench_triplet.py --device cuda --sizes 256 1024 4096 8192
"""
import argparse
import json
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def make_inputs(b, dims, per_class, device, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(b, dims, generator=g), dim=1)
    y = torch.arange(b) // per_class
    y = y[torch.randperm(b, generator=g)]
    return x.to(device), y.to(device)


def _registry_stub_if_no_mmdet():
    """The loss functions are pure torch; only their registration needs
    mmdet. On a machine without mmdet (e.g. a bare GPU image) register into a
    stub so that the functions can be timed."""
    try:
        import mmdet.registry  # noqa: F401
    except ImportError:
        import types
        stub = types.ModuleType('mmdet.registry')
        stub.MODELS = types.SimpleNamespace(
            register_module=lambda *a, **k: (lambda cls: cls))
        sys.modules.setdefault('mmdet', types.ModuleType('mmdet'))
        sys.modules['mmdet.registry'] = stub


def _load_triplet_module():
    """bombo/models/losses/triplet.py alone (torch + a registry), without
    the package's __init__ chain, so that it also runs on a bare GPU image."""
    import importlib.util
    _registry_stub_if_no_mmdet()
    spec = importlib.util.spec_from_file_location(
        'bombo_triplet', osp.join(ROOT, 'bombo', 'models', 'losses',
                                  'triplet.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(args):
    import torch
    sys.path.insert(0, ROOT)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x0, y = make_inputs(args.b, args.dims, args.per_class, device)
    if args.impl == 'bombo':
        batch_all_triplet_loss = _load_triplet_module().batch_all_triplet_loss

        def step(x):
            return batch_all_triplet_loss(x, y, margin=args.margin)
    else:
        from pytorch_metric_learning import losses, miners
        miner = miners.TripletMarginMiner(margin=args.margin,
                                          type_of_triplets='all')
        loss_fn = losses.TripletMarginLoss(margin=args.margin)

        def step(x):
            return loss_fn(x, y, miner(x, y))

    def run():
        x = x0.clone().requires_grad_()
        loss = step(x)
        loss.backward()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        return loss.item()

    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:  # everything imported and built: the high-water mark so far
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    value = run()  # warm-up (counted in the peak)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    print(json.dumps(dict(time_s=statistics.median(times), peak_bytes=peak,
                          loss=value)))


def spawn(impl, b, args):
    cmd = [sys.executable, osp.abspath(__file__), '--worker', '--impl', impl,
           '--b', str(b), '--dims', str(args.dims), '--per-class',
           str(args.per_class), '--margin', str(args.margin), '--repeats',
           str(args.repeats), '--device', args.device, '--threads',
           str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return dict(error=out.stderr.strip().splitlines()[-1][:120])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[256, 1024, 4096])
    p.add_argument('--dims', type=int, default=128)
    p.add_argument('--per-class', type=int, default=8,
                   help='samples per class (P x K batches)')
    p.add_argument('--margin', type=float, default=0.1)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--pml-max-gb', type=float, default=6.0,
                   help='skip the baseline when its index lists would '
                   'exceed this')
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--impl', default='bombo', help=argparse.SUPPRESS)
    p.add_argument('--b', type=int, default=256, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    print(f'device={args.device} threads={args.threads} dims={args.dims} '
          f'per_class={args.per_class} margin={args.margin} '
          f'repeats={args.repeats} (median of forward+backward)')
    print(f'{"B":>5} {"triplets":>12} | {"bombo s":>8} {"bombo MB":>9} | '
          f'{"pml s":>8} {"pml MB":>9} | {"time x":>7} {"mem x":>7} | '
          f'{"|dloss|":>8}')
    for b in args.sizes:
        k = args.per_class
        n_trip = b * (k - 1) * (b - k)
        ours = spawn('bombo', b, args)
        # three int64 index lists, before any gather / loss tensor
        pml_gb = n_trip * 3 * 8 / 2**30
        if pml_gb > args.pml_max_gb:
            pml = dict(error=f'skipped: indices alone {pml_gb:.1f} GB')
        else:
            pml = spawn('pml', b, args)

        def fmt(r):
            if 'error' in r:
                return f'{"-":>8} {"-":>9}'
            return f'{r["time_s"]:>8.3f} {r["peak_bytes"] / 2**20:>9.1f}'
        ratio_t = ratio_m = dl = '-'
        if 'error' not in ours and 'error' not in pml:
            ratio_t = f'{pml["time_s"] / ours["time_s"]:.1f}'
            ratio_m = f'{pml["peak_bytes"] / max(ours["peak_bytes"], 1):.1f}'
            dl = f'{abs(pml["loss"] - ours["loss"]):.1e}'
        print(f'{b:>5} {n_trip:>12,} | {fmt(ours)} | {fmt(pml)} | '
              f'{ratio_t:>7} {ratio_m:>7} | {dl:>8}')
        for name, r in (('bombo', ours), ('pml', pml)):
            if 'error' in r:
                print(f'      {name}: {r["error"]}')


if __name__ == '__main__':
    main()
