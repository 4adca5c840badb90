r"""mIoU of the Box-for-Mask pseudo-masks M^b (box-filled) and M^c (GrabCut)
against the true semantic masks of a VOC-layout split (BoMBo Sec. 3.3).

Usage (toy dataset)::

    python tools/analysis_tools/pseudo_mask_quality.py \\
        data/toy/ImageSets/Main/det_train.txt \\
        --classes rectangle ellipse triangle [--pseudo-mask-dir DIR]

Without ``--pseudo-mask-dir`` M^c is computed here (``--workers``, GrabCut
options as in ``tools/make_pseudo_masks.py``). The ground truth is
``SegmentationClass/<id>.png`` (palette or grey PNG, 255 ignored). IoU per
class (background included) from the confusion matrix summed over the split;
mIoU is their mean. ``--sweep`` evaluates a grid of GrabCut options (tune on
a split other than the one you report).
"""
import argparse
import itertools
import json
import os.path as osp
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))

from bombo.datasets.pseudo_masks import box_shaped_mask  # noqa: E402
from bombo.evaluation.semseg_metric import (  # noqa: E402,F401
    confusion_matrix, iou_from_confusion)
import make_pseudo_masks as tool  # noqa: E402


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int,
              ignore_index: int = 255) -> np.ndarray:
    """``(K, K)`` confusion matrix (rows ground truth), ignored pixels of
    ``gt`` left out: the one ``SemanticIoUMetric`` accumulates."""
    return confusion_matrix(torch.as_tensor(np.array(pred)),
                            torch.as_tensor(np.array(gt)), num_classes,
                            ignore_index).numpy()


def gt_path(split: str, key: str) -> str:
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(split))))
    return osp.join(root, 'SegmentationClass', key + '.png')


def read_mask(path: str) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode not in ('P', 'L'):
            raise ValueError(f'{path}: expected a palette or grey PNG of '
                             f'class indices, got mode {im.mode}')
        return np.asarray(im)


def evaluate(split, entries, mc_dir, num_classes):
    """IoU per class of M^b and M^c (read from ``mc_dir``)."""
    cm_b = np.zeros((num_classes, num_classes), np.int64)
    cm_c = cm_b.copy()
    missing = []
    for e in entries:
        gt = read_mask(gt_path(split, e['key']))
        mc_path = osp.join(mc_dir, e['key'] + '.png')
        if not osp.exists(mc_path):
            missing.append(e['key'])
            continue
        mc = read_mask(mc_path)
        mb = box_shaped_mask(e['boxes'], e['labels'], gt.shape)
        cm_b += confusion(mb, gt, num_classes)
        cm_c += confusion(mc, gt, num_classes)
    return iou_from_confusion(cm_b), iou_from_confusion(cm_c), missing


def run(split, classes, mc_dir=None, workers=1, grabcut=None):
    entries, _ = tool.entries_from_split(split, classes)
    k = len(classes) + 1
    t0 = time.time()
    if mc_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            s = tool.make_pseudo_masks(entries, tmp, workers=workers,
                                       grabcut=grabcut, progress=False)
            res = evaluate(split, entries, tmp, k)
    else:
        s, res = None, evaluate(split, entries, mc_dir, k)
    return dict(iou_box=res[0], iou_coarse=res[1], missing=res[2],
                images=len(entries), tool_summary=s,
                seconds=time.time() - t0)


def table(names, iou_b, iou_c):
    lines = [f"{'class':<14}{'M^b IoU':>10}{'M^c IoU':>10}"]
    for n, b, c in zip(names, iou_b, iou_c):
        lines.append(f'{n:<14}{b * 100:>10.2f}{c * 100:>10.2f}')
    lines.append(f"{'mIoU':<14}{np.nanmean(iou_b) * 100:>10.2f}"
                 f'{np.nanmean(iou_c) * 100:>10.2f}')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0].replace('\n', ' '),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('split', nargs='?',
                   default='data/toy/ImageSets/Main/det_train.txt',
                   help='an ImageSets list of a VOC-layout dataset (its '
                   'JPEGImages / Annotations / SegmentationClass are read)')
    p.add_argument('--classes', nargs='+',
                   default=['rectangle', 'ellipse', 'triangle'],
                   help='class names in label order (label k+1 = class k)')
    p.add_argument('--pseudo-mask-dir', help='read M^c from this cache (none: compute it here '
                   'with GrabCut)')
    p.add_argument('--workers', type=int, default=1,
                   help='processes for GrabCut')
    p.add_argument('--iterations', type=int,
                   default=tool.DEFAULT_GRABCUT['iterations'],
                   help='GrabCut iterations per box')
    p.add_argument('--margin', type=float,
                   default=tool.DEFAULT_GRABCUT['margin'],
                   help='crop margin around each box, as a fraction of its '
                   'size; negative: the whole image')
    p.add_argument('--max-side', type=int,
                   default=tool.DEFAULT_GRABCUT['max_side'],
                   help='crops are downscaled to this longest side')
    p.add_argument('--min-size', type=int,
                   default=tool.DEFAULT_GRABCUT['min_size'],
                   help='boxes smaller than this (px) keep the box mask')
    p.add_argument('--sweep', action='store_true',
                   help='grid over iterations x margin (computes M^c)')
    p.add_argument('--json', help='write the figures to this json file')
    args = p.parse_args(argv)
    names = ['background'] + list(args.classes)
    if args.sweep:
        rows = []
        for it, margin in itertools.product((1, 3, 5, 8),
                                            (0.1, 0.25, 0.5, 1.0)):
            gc = dict(iterations=it, margin=margin, max_side=args.max_side,
                      min_size=args.min_size)
            r = run(args.split, args.classes, workers=args.workers,
                    grabcut=gc)
            rows.append(dict(gc, miou_box=float(np.nanmean(r['iou_box'])),
                             miou_coarse=float(np.nanmean(r['iou_coarse'])),
                             seconds=r['seconds']))
            print(f"iterations={it} margin={margin}: M^b mIoU "
                  f"{rows[-1]['miou_box'] * 100:.2f}  M^c mIoU "
                  f"{rows[-1]['miou_coarse'] * 100:.2f}  "
                  f"({r['seconds']:.1f} s)", flush=True)
        best = max(rows, key=lambda r: r['miou_coarse'])
        print(f'best: {best}')
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(rows, f, indent=1)
        return rows
    gc = dict(iterations=args.iterations,
              margin=None if args.margin < 0 else args.margin,
              max_side=args.max_side or None, min_size=args.min_size)
    r = run(args.split, args.classes, args.pseudo_mask_dir, args.workers, gc)
    print(f"{args.split}: {r['images']} images"
          + (f", M^c from {args.pseudo_mask_dir}" if args.pseudo_mask_dir
             else f', M^c computed with {gc}'))
    if r['missing']:
        print(f"{len(r['missing'])} images without a cache entry left out, "
              f"e.g. {r['missing'][:3]}")
    print(table(names, r['iou_box'], r['iou_coarse']))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(classes=names, grabcut=gc,
                           iou_box=[float(x) for x in r['iou_box']],
                           iou_coarse=[float(x) for x in r['iou_coarse']],
                           miou_box=float(np.nanmean(r['iou_box'])),
                           miou_coarse=float(np.nanmean(r['iou_coarse']))),
                      f, indent=1)
    return r


if __name__ == '__main__':
    main()
