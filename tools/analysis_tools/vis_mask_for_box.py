#!/usr/bin/env python
"""Draw Mask-for-Box refinements like the BoMBo paper's Figures 6-8: for each
of N images, side by side, the teacher's predicted boxes, the M4B-refined
boxes (coloured by case), the mask's circumscribed boxes and the mask.

Colours (BGR names): predictions red (score shown); refined: split blue,
merge yellow, add magenta, leftover green; mask boxes green; true instance
boxes (optional, ``--show-gt``) thin white on the first panel.

Usage::

    python tools/analysis_tools/vis_mask_for_box.py --data data/toy \\
        --synthetic-teacher --num 8 --out-dir work_dirs/vis_m4b
    python tools/analysis_tools/vis_mask_for_box.py --data data/toy \\
        --config CFG --checkpoint CKPT --num 8 --out-dir work_dirs/vis_m4b
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np
from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from m4b_quality import (CheckpointTeacher, load_toy_image,  # noqa: E402
                         read_split, synthetic_teacher)

CASE_COLOURS = {  # BGR
    0: (255, 128, 0),    # split: blue
    1: (0, 230, 255),    # merge: yellow
    2: (255, 0, 255),    # add: magenta
    3: (0, 200, 0),      # leftover: green
}
PRED_COLOUR = (0, 0, 255)
MASK_BOX_COLOUR = (0, 200, 0)


def _palette():
    rng = np.random.default_rng(3)
    pal = rng.integers(60, 255, (256, 3)).astype(np.uint8)
    pal[0] = 0
    pal[255] = (192, 224, 224)
    return pal


def _draw(img, boxes, colours, scale, texts=None, thickness=1):
    out = img.copy()
    for i, (b, c) in enumerate(zip(boxes, colours)):
        x1, y1, x2, y2 = (np.asarray(b, float) * scale).round().astype(int)
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), c, thickness)
        if texts is not None:
            cv2.putText(out, texts[i], (x1 + 2, max(y1 + 10, 10)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, c, 1, cv2.LINE_AA)
    return out


def render(image, mask, pred_boxes, pred_scores, result, ref_boxes,
           gt_boxes=None, scale=3, pred_thr=0.3):
    """One row of four panels (H*scale, 4*W*scale + gaps, 3) uint8 BGR."""
    from bombo.models.task_modules.mask_for_box import CASE_NAMES
    h, w = mask.shape
    big = cv2.resize(image, (w * scale, h * scale),
                     interpolation=cv2.INTER_NEAREST)
    best = pred_scores.max(1) if len(pred_scores) else np.zeros(0)
    keep = best > pred_thr
    p1 = big
    if gt_boxes is not None:
        p1 = _draw(p1, gt_boxes, [(255, 255, 255)] * len(gt_boxes), scale)
    p1 = _draw(p1, pred_boxes[keep], [PRED_COLOUR] * int(keep.sum()), scale,
               [f'{s:.2f}' for s in best[keep]], 2)
    p2 = _draw(big, result.boxes, [CASE_COLOURS[c] for c in result.cases],
               scale, [f'{CASE_NAMES[c][:2]} {s:.2f}'
                       for c, s in zip(result.cases, result.scores)], 2)
    p3 = _draw(big, ref_boxes, [MASK_BOX_COLOUR] * len(ref_boxes), scale,
               None, 2)
    p4 = cv2.resize(_palette()[mask], (w * scale, h * scale),
                    interpolation=cv2.INTER_NEAREST)
    gap = np.full((h * scale, 6, 3), 255, np.uint8)
    titles = ('predicted', 'refined (M4B)', 'mask boxes', 'mask')
    panels = []
    for p, t in zip((p1, p2, p3, p4), titles):
        p = p.copy()
        cv2.putText(p, t, (4, h * scale - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
        panels += [p, gap]
    return np.concatenate(panels[:-1], 1)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults after every flag, the description as written."""


def main(argv=None):
    from bombo.models.task_modules.mask_for_box import (
        mask_to_reference_boxes, refine_boxes_from_mask)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=_HelpFormatter)
    parser.add_argument('--data', default='data/toy',
                        help='toy-layout data root (JPEGImages/, '
                        'SegmentationClass/, SegmentationObject/, ImageSets/)')
    parser.add_argument('--split', default='seg_train',
                        help='image list ImageSets/Main/<split>.txt')
    parser.add_argument('--num', type=int, default=8,
                        help='number of images to draw')
    parser.add_argument('--out-dir', default='work_dirs/vis_mask_for_box',
                        help='folder for the PNGs (<image id>.png)')
    parser.add_argument('--config', help='teacher config (with '
                        '--checkpoint)')
    parser.add_argument('--checkpoint', help='teacher checkpoint (with '
                        '--config)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of --config, key=value')
    parser.add_argument('--device', default='cpu',
                        help='device of the teacher, e.g. cpu or cuda:0')
    parser.add_argument('--synthetic-teacher', action='store_true',
                        help='predictions made from the true boxes with '
                        'noise, splits and misses, instead of a checkpoint')
    parser.add_argument('--only-changed', action='store_true',
                        help='draw only images where M4B split or merged')
    parser.add_argument('--show-gt', action='store_true',
                        help='draw the true instance boxes (thin white) on '
                        'the first panel')
    parser.add_argument('--scale', type=int, default=3,
                        help='upscaling factor of the drawn panels')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic teacher')
    args = parser.parse_args(argv)
    if args.synthetic_teacher == bool(args.config and args.checkpoint):
        parser.error('give either --config and --checkpoint, or '
                     '--synthetic-teacher')
    teacher = None if args.synthetic_teacher else CheckpointTeacher(
        args.config, args.checkpoint, args.device, args.cfg_options)
    os.makedirs(args.out_dir, exist_ok=True)
    ids = read_split(args.data, args.split)
    rng = np.random.default_rng(args.seed)
    written = []
    from mmengine.utils import ProgressBar
    bar = ProgressBar(min(args.num, len(ids)))
    for img_id in ids:
        if len(written) >= args.num:
            break
        mask, gt_boxes, gt_labels = load_toy_image(args.data, img_id)
        img_path = osp.join(args.data, 'JPEGImages', f'{img_id}.jpg')
        if teacher is None:
            boxes, scores = synthetic_teacher(gt_boxes, gt_labels, 3, rng,
                                              mask.shape)
        else:
            boxes, scores = teacher(img_path, 3)
        res = refine_boxes_from_mask(mask, boxes, scores, num_classes=3)
        if args.only_changed and not np.isin(res.cases, (0, 1)).any():
            continue
        refs, _ = mask_to_reference_boxes(mask)
        row = render(cv2.imread(img_path), mask, boxes, scores, res, refs,
                     gt_boxes if args.show_gt else None, args.scale)
        path = osp.join(args.out_dir, f'{img_id}.png')
        cv2.imwrite(path, row)
        written.append(path)
        bar.update()
    print(f'\nwrote {len(written)} images to {args.out_dir}')
    return written


if __name__ == '__main__':
    main()
