"""Draw image | M^b (box-shaped) | M^c (GrabCut) | ground truth side by side
(BoMBo Sec. 3.3), one PNG per image.

Usage (toy dataset)::

    python tools/analysis_tools/vis_pseudo_masks.py \\
        data/toy/ImageSets/Main/det_train.txt --classes rectangle ellipse triangle \\
        --pseudo-mask-dir data/toy/pseudo_masks --num 8 --out-dir work_dirs/vis_pm

Without ``--pseudo-mask-dir`` M^c is computed with GrabCut here. The ground
truth panel is left grey when ``SegmentationClass/<id>.png`` does not exist.
Colours: background black, ignore (255) white, classes from a fixed palette.
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))

from bombo.datasets.pseudo_masks import (box_shaped_mask,  # noqa: E402
                                         coarse_mask)
import make_pseudo_masks as tool  # noqa: E402
from pseudo_mask_quality import gt_path, read_mask  # noqa: E402


def palette(n: int = 256) -> np.ndarray:
    """``(256, 3)`` BGR colours: 0 black, 255 white, others distinct."""
    rng = np.random.default_rng(3)
    pal = rng.integers(60, 256, (n, 3)).astype(np.uint8)
    base = [(0, 0, 0), (60, 60, 230), (60, 200, 60), (230, 120, 40),
            (40, 200, 230), (200, 60, 200), (230, 230, 60)]
    pal[:len(base)] = base
    pal[255] = (255, 255, 255)
    return pal


def colorize(mask: np.ndarray) -> np.ndarray:
    return palette()[mask]


def draw_boxes(img, boxes, labels, names):
    out = img.copy()
    pal = palette()
    for box, lab in zip(boxes, labels):
        x1, y1, x2, y2 = [int(round(v)) for v in box]
        color = tuple(int(c) for c in pal[lab])
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), color, 1)
        cv2.putText(out, names[lab][:3], (x1 + 1, max(y1 - 2, 8)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.3, color, 1, cv2.LINE_AA)
    return out


def panel(img, mb, mc, gt, title_h=14, scale=2):
    tiles = [img, colorize(mb), colorize(mc),
             colorize(gt) if gt is not None else np.full_like(img, 128)]
    titles = ['image + boxes', 'Mb: box-shaped', 'Mc: GrabCut',
              'ground truth']
    h, w = img.shape[:2]
    out = []
    for t, title in zip(tiles, titles):
        t = cv2.resize(t, (w * scale, h * scale),
                       interpolation=cv2.INTER_NEAREST)
        head = np.full((title_h, t.shape[1], 3), 255, np.uint8)
        cv2.putText(head, title, (2, title_h - 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.vstack([head, t]))
        out.append(np.full((t.shape[0] + title_h, 4, 3), 255, np.uint8))
    return np.hstack(out[:-1])


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults after every flag, the description as written."""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=_HelpFormatter)
    p.add_argument('split', nargs='?',
                   default='data/toy/ImageSets/Main/det_train.txt',
                   help='VOC-layout split file (data root = parent of '
                   'ImageSets/)')
    p.add_argument('--classes', nargs='+',
                   default=['rectangle', 'ellipse', 'triangle'],
                   help='class names of the split, in label order')
    p.add_argument('--pseudo-mask-dir',
                   help='read M^c from this cache (made by '
                   'tools/make_pseudo_masks.py); None: run GrabCut here')
    p.add_argument('--num', type=int, default=8,
                   help='number of images to draw (the first of the split)')
    p.add_argument('--scale', type=int, default=2,
                   help='upscaling factor of the drawn panels')
    p.add_argument('--out-dir', default='work_dirs/vis_pseudo_masks',
                   help='folder for the PNGs (<image>.png)')
    args = p.parse_args(argv)
    names = ['background'] + list(args.classes)
    entries, _ = tool.entries_from_split(args.split, args.classes)
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    from mmengine.utils import track_iter_progress
    for e in track_iter_progress(entries[:args.num]):
        img = cv2.imread(e['img_path'], cv2.IMREAD_COLOR)
        if img is None:
            print(f"unreadable image skipped: {e['img_path']}")
            continue
        mb = box_shaped_mask(e['boxes'], e['labels'], img.shape[:2])
        if args.pseudo_mask_dir:
            path = osp.join(args.pseudo_mask_dir, e['key'] + '.png')
            mc = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if mc is None:
                raise FileNotFoundError(
                    f'no pseudo-mask {path}; make it with python '
                    f'tools/make_pseudo_masks.py {args.split} --classes '
                    f"{' '.join(args.classes)} --out {args.pseudo_mask_dir}")
        else:
            mc, _ = coarse_mask(img, e['boxes'], e['labels'],
                                **tool.DEFAULT_GRABCUT)
        gp = gt_path(args.split, e['key'])
        gt = read_mask(gp) if osp.exists(gp) else None
        vis = panel(draw_boxes(img, e['boxes'], e['labels'], names), mb, mc,
                    gt, scale=args.scale)
        out = osp.join(args.out_dir, e['key'] + '.png')
        cv2.imwrite(out, vis)
        written.append(out)
    print(f'\n{len(written)} images written to {args.out_dir}')
    return written


if __name__ == '__main__':
    main()
