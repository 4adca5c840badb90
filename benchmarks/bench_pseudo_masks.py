"""Benchmark of the pseudo-mask tool (BoMBo Sec. 3.3 M^c by GrabCut).

Prints, each measured in this process against its baseline:

1. the speed-up of ``tools/make_pseudo_masks.py`` with 2 workers over 1
   (same images, fresh output folders), on the toy images and on copies
   upscaled ``--upscale`` times (more work per image, as on VOC);
2. the speed-up and the mIoU change (against the true SegmentationClass
   masks) of GrabCut on a crop around the box, downscaled to ``--max-side``,
   against GrabCut on the full image, on the toy images and on the toy
   images upscaled ``--upscale`` times (VOC-like sizes, where the
   downscale matters);
3. (``flat``) seconds per box of GrabCut on near-flat crops (a uniform
   colour, the same as JPEG, salt noise on a flat area; 400 x 400 images,
   300-pixel boxes) and on the textured toy boxes, with the near-flat test
   (default ``flat_range``) against the old path (``flat_range=None``, every
   crop given to GrabCut), and whether the textured masks are identical
   (toy size and toy x ``--upscale``).

Usage::

    python benchmarks/bench_pseudo_masks.py --split data/toy/ImageSets/Main/det_train.txt --num 60
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))

from bombo.datasets.pseudo_masks import (FLAT_RANGE, coarse_mask,  # noqa: E402
                                         grabcut_box)
import make_pseudo_masks as tool  # noqa: E402
from pseudo_mask_quality import (confusion, gt_path,  # noqa: E402
                                 iou_from_confusion, read_mask)


def time_tool(entries, workers, grabcut):
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        s = tool.make_pseudo_masks(entries, tmp, workers=workers,
                                   grabcut=grabcut, progress=False)
        dt = time.perf_counter() - t0
    assert s['written'] == len(entries), s
    return dt


def upscaled_entries(entries, upscale, tmp):
    """Copies of the entries' images upscaled (JPEG in ``tmp``), boxes
    scaled alike."""
    out = []
    for e in entries:
        img = cv2.imread(e['img_path'], cv2.IMREAD_COLOR)
        img = cv2.resize(img, None, fx=upscale, fy=upscale,
                         interpolation=cv2.INTER_LINEAR)
        path = osp.join(tmp, e['key'] + '.jpg')
        cv2.imwrite(path, img)
        out.append(dict(e, img_path=path, boxes=e['boxes'] * upscale))
    return out


def crop_vs_full(split, entries, grabcut, upscale, k):
    """Seconds and mIoU of crop+downscale vs full-image GrabCut."""
    full = dict(grabcut, margin=None, max_side=None)
    out = {}
    crop_only = dict(grabcut, max_side=None)
    for name, gc in (('full', full), ('crop_only', crop_only),
                     ('crop', grabcut)):
        cm = np.zeros((k, k), np.int64)
        dt = 0.0
        for e in entries:
            img = cv2.imread(e['img_path'], cv2.IMREAD_COLOR)
            gt = read_mask(gt_path(split, e['key']))
            boxes = e['boxes'] * upscale
            if upscale != 1:
                img = cv2.resize(img, None, fx=upscale, fy=upscale,
                                 interpolation=cv2.INTER_LINEAR)
                gt = cv2.resize(gt, (img.shape[1], img.shape[0]),
                                interpolation=cv2.INTER_NEAREST)
            t0 = time.perf_counter()
            mc, _ = coarse_mask(img, boxes, e['labels'], **gc)
            dt += time.perf_counter() - t0
            cm += confusion(mc, gt, k)
        out[name] = (dt, float(np.nanmean(iou_from_confusion(cm))))
    return out


def flat_crops():
    """Near-flat 400 x 400 images (each 3-20 s per box in GrabCut before)."""
    rng = np.random.default_rng(0)
    const = np.full((400, 400, 3), 90, np.uint8)
    ok, enc = cv2.imencode('.jpg', np.full((400, 400, 3), (90, 140, 200),
                                           np.uint8))
    salt = np.full((400, 400, 3), 128, np.uint8)
    salt[rng.random((400, 400)) < 0.001] = 255
    return dict(uniform=const, jpeg_uniform=cv2.imdecode(enc, 1), salt=salt)


def flat_vs_textured(entries, grabcut, upscale=1):
    """Seconds per box, near-flat test vs old path, flat and textured."""
    rows = {}
    box = [50, 50, 350, 350]
    times = {'new': [], 'old': []}
    for img in flat_crops().values():
        for name, fr in (('new', FLAT_RANGE), ('old', None)):
            t0 = time.perf_counter()
            grabcut_box(img, box, flat_range=fr, **grabcut)
            times[name].append(time.perf_counter() - t0)
    rows['flat'] = (np.mean(times['new']), np.mean(times['old']), None)
    times = {'new': 0.0, 'old': 0.0}
    same, nbox = True, 0
    for e in entries:
        img = cv2.imread(e['img_path'], cv2.IMREAD_COLOR)
        if upscale != 1:
            img = cv2.resize(img, None, fx=upscale, fy=upscale,
                             interpolation=cv2.INTER_LINEAR)
        out = {}
        for name, fr in (('new', FLAT_RANGE), ('old', None)):
            t0 = time.perf_counter()
            out[name] = coarse_mask(img, e['boxes'] * upscale, e['labels'],
                                    flat_range=fr, **grabcut)
            times[name] += time.perf_counter() - t0
        same &= bool(np.array_equal(out['new'][0], out['old'][0]))
        nbox += len(e['boxes'])
    rows['textured'] = (times['new'] / nbox, times['old'] / nbox, same)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--split', default='data/toy/ImageSets/Main/det_train.txt',
                   help='detection split file (VOC layout)')
    p.add_argument('--classes', nargs='+', help='class names of the split',
                   default=['rectangle', 'ellipse', 'triangle'])
    p.add_argument('--num', type=int, default=60, help='images used')
    p.add_argument('--upscale', type=int, default=4,
                   help='also measure on images upscaled this many times')
    p.add_argument('--parts', nargs='+', default=['workers', 'crop', 'flat'],
                   choices=['workers', 'crop', 'flat'],
                   help='what to measure (see the module docstring)')
    p.add_argument('--repeat', type=int, default=3,
                   help='tool timings: best of this many runs')
    p.add_argument('--max-side', type=int, help='GrabCut crop downscale',
                   default=tool.DEFAULT_GRABCUT['max_side'])
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    entries, _ = tool.entries_from_split(args.split, args.classes)
    entries = entries[:args.num]
    nbox = sum(len(e['boxes']) for e in entries)
    grabcut = dict(tool.DEFAULT_GRABCUT, max_side=args.max_side)
    k = len(args.classes) + 1
    print(f'{len(entries)} images, {nbox} boxes from {args.split}; GrabCut '
          f'{grabcut}')

    print(f'load average before: {os.getloadavg()[0]:.2f} on '
          f'{os.cpu_count()} CPUs (other jobs slow the 2-worker run)')
    with tempfile.TemporaryDirectory() as tmp:
        for up in (1, args.upscale) if 'workers' in args.parts else ():
            ents = entries if up == 1 else upscaled_entries(entries, up, tmp)
            # alternate, best of --repeat: the machine may be shared
            t1, t2 = float('inf'), float('inf')
            for _ in range(args.repeat):
                t2 = min(t2, time_tool(ents, 2, grabcut))
                t1 = min(t1, time_tool(ents, 1, grabcut))
            size = 'toy size' if up == 1 else f'toy x{up}'
            print(f'[{size}] tool, 1 worker: {t1:.2f} s; 2 workers: '
                  f'{t2:.2f} s; speed-up x{t1 / t2:.2f}')

    for up in (1, args.upscale) if 'crop' in args.parts else ():
        r = crop_vs_full(args.split, entries, grabcut, up, k)
        (tf, mf), (tc, mc) = r['full'], r['crop']
        to, mo = r['crop_only']
        size = 'toy size' if up == 1 else f'toy x{up}'
        print(f'[{size}] full image: {tf:.2f} s, mIoU {mf * 100:.2f}; '
              f'crop+downscale: {tc:.2f} s, mIoU {mc * 100:.2f}; speed-up '
              f'x{tf / tc:.2f}, mIoU change {(mc - mf) * 100:+.2f} points '
              f'(crop without downscale: {to:.2f} s, mIoU {mo * 100:.2f})')

    if 'flat' in args.parts:
        rows = flat_vs_textured(entries, grabcut)
        rows[f'textured, toy x{args.upscale}'] = flat_vs_textured(
            entries, grabcut, args.upscale)['textured']
        for kind, (new, old, same) in rows.items():
            extra = '' if same is None else f'; masks identical: {same}'
            print(f'[{kind}] GrabCut per box: old path {old:.3f} s, with the '
                  f'near-flat test (flat_range={FLAT_RANGE}) {new:.3f} s; '
                  f'speed-up x{old / new:.2f}{extra}')


if __name__ == '__main__':
    main()
