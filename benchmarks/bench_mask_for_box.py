#!/usr/bin/env python
"""Speed of the vectorised Mask-for-Box refinement (BoMBo Algorithm 1,
``bombo.models.task_modules.mask_for_box``) against a straightforward
Python-loop implementation of the same algorithm
(``benchmarks/m4b_reference.py``), in the same process.

1. Toy dataset: the ``seg_train`` masks of ``data/toy`` with synthetic teacher
   predictions (true instance boxes from ``Annotations/*.xml`` jittered, plus
   false positives, random scores; seeded).
2. Synthetic worst case: 30 same-class components in one image, 100
   predictions that split nothing, so all 30 are leftovers of one class and
   the merge step runs its bounded strategy (the exact power set would have
   2**30 subsets); then 100 components (vectorised only) and the exact power
   set for 8..16 components.

3. Bounded cost (``docs/training_at_scale.md``): a 64x64 noise mask (20
   classes + background, 3,190 connected components) with 4,000 random
   predictions, and a one-class noise mask with 2,000+ components and 5,000
   predictions (the dense teacher's maximum, 1,000 per FPN level), against
   the version before the bounds (``--old-rev``, read from git): time and
   peak numpy memory (tracemalloc), and the same outputs. With the default
   cap (``max_references=2048``) the noise mask is not refined (its mask
   boxes are returned, counted); ``max_references`` raised, it is refined.

Both implementations are checked to agree on every image before timing.

Usage::

    python benchmarks/bench_mask_for_box.py --data data/toy [--repeat 3]
    python benchmarks/bench_mask_for_box.py --data data/toy --old-rev 1944034
"""
import argparse
import os.path as osp
import subprocess
import sys
import time
import tracemalloc
import types

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from m4b_reference import reference_refine  # noqa: E402

from bombo.models.task_modules.mask_for_box import (  # noqa: E402
    mask_to_reference_boxes, refine_boxes_from_mask)

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..',
                            'tools', 'analysis_tools'))
from m4b_quality import (load_toy_image, read_split,  # noqa: E402
                         synthetic_teacher)


def _time(fn, cases, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for case in cases:
            fn(*case)
        best = min(best, time.perf_counter() - t)
    return best


def _check_same(cases, **kw):
    for mask, boxes, scores in cases:
        res = refine_boxes_from_mask(mask, boxes, scores, **kw)
        rb, rl, rs, rc = reference_refine(mask, boxes, scores, **kw)
        ok = (res.labels.tolist() == rl and res.cases.tolist() == rc
              and np.allclose(res.boxes, np.reshape(rb, (-1, 4)), atol=1e-4))
        if not ok:
            raise AssertionError('vectorised and reference results differ')


def worst_case(n_side=(6, 5), size=128, n_pred=100, seed=0):
    """``n_side[0] * n_side[1]`` class-1 squares on a grid (adjacent in the
    merge graph), predictions jittered around them with class scores in
    (0.1, 0.4]: nothing is split, every merged box is matched."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    rows, cols = n_side
    ch, cw = size // rows, size // cols
    inst = []
    for i in range(rows):
        for j in range(cols):
            y1, x1 = i * ch + 2, j * cw + 2
            mask[y1:y1 + ch - 5, x1:x1 + cw - 5] = 1
            inst.append((x1, y1, x1 + cw - 5, y1 + ch - 5))
    inst = np.array(inst, float)
    pick = rng.integers(0, len(inst), n_pred)
    boxes = inst[pick] + rng.normal(0, 4, (n_pred, 4))
    scores = np.zeros((n_pred, 3))
    scores[:, 0] = rng.uniform(0.11, 0.4, n_pred)
    return mask, boxes, scores


def noise_case(size=64, num_classes=20, n_pred=4000, seed=0, fill=None):
    """Uniform noise over background + ``num_classes`` classes (or, with
    ``fill``, class 1 on that fraction of the pixels), random boxes of
    1-20 px with uniform per-class scores."""
    rng = np.random.default_rng(seed)
    if fill is None:
        mask = rng.integers(0, num_classes + 1, (size, size)).astype(np.uint8)
    else:
        mask = (rng.random((size, size)) < fill).astype(np.uint8)
    xy = rng.uniform(0, size - 4, (n_pred, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 20, (n_pred, 2))], 1)
    return mask, boxes, rng.random((n_pred, num_classes))


def old_module(rev):
    """``mask_for_box.py`` as of git revision ``rev``, as a module."""
    root = osp.join(osp.dirname(osp.abspath(__file__)), '..')
    src = subprocess.run(
        ['git', '-C', root, 'show',
         f'{rev}:bombo/models/task_modules/mask_for_box.py'],
        capture_output=True, text=True, check=True).stdout
    mod = types.ModuleType(f'mask_for_box_{rev}')
    exec(compile(src, mod.__name__, 'exec'), mod.__dict__)
    return mod


def _measure(fn, *args, **kw):
    """(seconds, peak MB of numpy allocations, result): timed without
    tracemalloc, then run again under it."""
    t = time.perf_counter()
    res = fn(*args, **kw)
    sec = time.perf_counter() - t
    tracemalloc.start()
    fn(*args, **kw)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return sec, peak, res


def bounded_cost(old_rev):
    old = None
    if old_rev:
        try:
            old = old_module(old_rev)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f'  (no old version: {e})')
    cases = [('noise 64x64, 20 classes', noise_case()),
             ('noise 200x200, 1 class on 20 %', noise_case(200, 1, 5000,
                                                           fill=0.2))]
    for name, (mask, boxes, scores) in cases:
        n_ref = len(mask_to_reference_boxes(mask)[0])
        print(f'{name}: {n_ref} components, {len(boxes)} predictions')
        t_cap, m_cap, r_cap = _measure(refine_boxes_from_mask, mask, boxes,
                                       scores)
        print(f'  bounded, default cap: {t_cap:8.2f} s {m_cap:8.1f} MB '
              f'(skipped={r_cap.stats["skipped_too_many_references"]})')
        t_new, m_new, r_new = _measure(refine_boxes_from_mask, mask, boxes,
                                       scores, max_references=10**6)
        print(f'  bounded, refined:     {t_new:8.2f} s {m_new:8.1f} MB '
              f'(shortlist {r_new.stats["n_shortlist"]}, largest pair block '
              f'{r_new.stats["max_pair_block"]})')
        if old is None:
            continue
        t_old, m_old, r_old = _measure(old.refine_boxes_from_mask, mask,
                                       boxes, scores)
        same = (np.array_equal(r_old.boxes, r_new.boxes)
                and np.array_equal(r_old.labels, r_new.labels)
                and np.array_equal(r_old.scores, r_new.scores)
                and np.array_equal(r_old.cases, r_new.cases))
        print(f'  old ({old_rev}):     {t_old:8.2f} s {m_old:8.1f} MB '
              f'(same outputs as refined: {same})')
        print(f'  ratio old / refined: time x{t_old / t_new:.1f}, memory '
              f'x{m_old / m_new:.1f}; old / default cap: time '
              f'x{t_old / t_cap:.0f}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data/toy')
    parser.add_argument('--split', default='seg_train')
    parser.add_argument('--max-images', type=int, default=400)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--old-rev', default='',
                        help='git revision of the version to compare with on '
                        'the bounded-cost cases (1944034: before the bounds); '
                        'empty: the new version only')
    args = parser.parse_args(argv)

    ids = read_split(args.data, args.split)[:args.max_images]
    rng = np.random.default_rng(args.seed)
    cases = []
    for img_id in ids:
        mask, gt_boxes, gt_labels = load_toy_image(args.data, img_id)
        boxes, scores = synthetic_teacher(gt_boxes, gt_labels, 3, rng,
                                          mask.shape)
        cases.append((mask, boxes, scores))
    _check_same(cases)
    refine_boxes_from_mask(*cases[0])  # imports / first-call costs
    t_fast = _time(refine_boxes_from_mask, cases, args.repeat)
    t_ref = _time(reference_refine, cases, args.repeat)
    n = len(cases)
    print(f'toy {args.split}: {n} images, '
          f'{np.mean([len(c[1]) for c in cases]):.1f} predictions/image')
    print(f'  vectorised   {1e3 * t_fast / n:8.3f} ms/image')
    print(f'  python loops {1e3 * t_ref / n:8.3f} ms/image')
    print(f'  speed ratio (loops / vectorised): {t_ref / t_fast:.2f}x')
    if args.old_rev:
        old_refine = old_module(args.old_rev).refine_boxes_from_mask
        t_old = _time(old_refine, cases, args.repeat)
        print(f'  old vectorised ({args.old_rev}) {1e3 * t_old / n:8.3f} '
              f'ms/image (old / new: {t_old / t_fast:.2f}x)')

    mask, boxes, scores = worst_case()
    _check_same([(mask, boxes, scores)])
    res = refine_boxes_from_mask(mask, boxes, scores)
    st = res.stats
    t_fast = _time(refine_boxes_from_mask, [(mask, boxes, scores)],
                   args.repeat)
    t_ref = _time(reference_refine, [(mask, boxes, scores)], 1)
    print(f'worst case: {st["n_references"]} same-class components, '
          f'{len(boxes)} predictions, {st["n_merge_subsets"]} merge subsets '
          f'(bounded={st["merge_bounded"]}, truncated='
          f'{st["merge_truncated"]}; exact power set: 2**30 - 31 = '
          f'{2**30 - 31})')
    print(f'  vectorised   {1e3 * t_fast:8.1f} ms/image')
    print(f'  python loops {1e3 * t_ref:8.1f} ms/image')
    print(f'  speed ratio (loops / vectorised): {t_ref / t_fast:.2f}x')
    m, b, s = worst_case((10, 10), size=256, n_pred=300)
    t = _time(refine_boxes_from_mask, [(m, b, s)], args.repeat)
    r = refine_boxes_from_mask(m, b, s)
    print(f'  100 same-class components, 300 predictions (vectorised only): '
          f'{r.stats["n_merge_subsets"]} subsets, {1e3 * t:.1f} ms/image')
    print('exact power set (max_merge_components = n), vectorised:')
    for n_comp, shape in ((8, (2, 4)), (10, (2, 5)), (12, (3, 4)),
                          (14, (2, 7)), (16, (4, 4))):
        m, b, s = worst_case(shape)
        kw = dict(max_merge_components=n_comp)
        t = _time(lambda *c: refine_boxes_from_mask(*c, **kw), [(m, b, s)],
                  1)
        r = refine_boxes_from_mask(m, b, s, **kw)
        print(f'  {n_comp:2d} components: {r.stats["n_merge_subsets"]:6d} '
              f'subsets {1e3 * t:9.1f} ms/image')
    print('bounded cost (time; peak numpy memory, tracemalloc):')
    bounded_cost(args.old_rev)


if __name__ == '__main__':
    main()
