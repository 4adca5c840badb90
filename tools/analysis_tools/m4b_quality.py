#!/usr/bin/env python
"""How well do pseudo-boxes from segmentation masks match the true instance
boxes? (BoMBo, section 3.2: raw mask boxes versus Mask-for-Box refined boxes.)

On a VOC-layout dataset that keeps instance ground truth for every image (the
toy dataset: ``Annotations/<id>.xml``), for each image of ``--split``:

* ``mask_boxes``: circumscribed rectangles of the connected components of
  ``SegmentationClass/<id>.png`` (no refinement);
* ``m4b``: the same refined by Algorithm 1 with the teacher's predictions;
* ``teacher>thr``: the teacher's predictions above ``--ut-thr`` (the
  unbiased-teacher baseline), for context.

Each set is matched one-to-one, per class, greedily by IoU, to the true boxes;
the table reports how many true boxes are matched at IoU >= 0.5 and >= 0.75
(recall) and how many pseudo-boxes are matched (precision).

Teacher predictions come from a trained detector (``--config CFG
--checkpoint CKPT``; mmdet's ``init_detector`` / ``inference_detector``,
boxes rescaled to the original image, i.e. the mask's frame; per-class
score vectors built from the single (label, score) of each box, see
``pseudo_boxes.scores_from_labels``) or, as a documented fallback that
involves no model at all, from jittered ground truth
(``--synthetic-teacher``).

Usage::

    python tools/analysis_tools/m4b_quality.py --data data/toy \\
        --config configs/toy/toy_r18_fpn_mtl.py --checkpoint work_dirs/x.pth
    python tools/analysis_tools/m4b_quality.py --data data/toy \\
        --synthetic-teacher --out m4b_quality.json
"""
import argparse
import json
import os.path as osp
import sys
import xml.etree.ElementTree as ET

import numpy as np
from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

CLASSES = ('rectangle', 'ellipse', 'triangle')


def load_toy_image(data_root, img_id, classes=CLASSES):
    """Semantic mask (H, W) uint8 and instance ground truth of one image.

    Returns:
        tuple: mask, boxes (n, 4) float64 0-based xyxy with x2/y2 exclusive
        (VOC ``xmin - 1, ymin - 1, xmax, ymax``), labels (n, ) 0-based.
    """
    from PIL import Image
    mask = np.array(
        Image.open(osp.join(data_root, 'SegmentationClass', f'{img_id}.png')))
    root = ET.parse(osp.join(data_root, 'Annotations', f'{img_id}.xml'))
    boxes, labels = [], []
    for obj in root.findall('object'):
        bb = obj.find('bndbox')
        x1, y1, x2, y2 = (float(bb.find(k).text)
                          for k in ('xmin', 'ymin', 'xmax', 'ymax'))
        boxes.append((x1 - 1, y1 - 1, x2, y2))
        labels.append(classes.index(obj.find('name').text))
    return (mask, np.array(boxes, float).reshape(-1, 4),
            np.array(labels, np.int64))


def synthetic_teacher(gt_boxes, gt_labels, num_classes, rng, shape,
                      miss_prob=0.1, jitter=0.12, n_false=2):
    """Fake teacher predictions (fallback when no trained detector is given):
    each true box is missed with ``miss_prob``, else jittered by Gaussian
    noise of ``jitter`` times its width/height per side, with score
    U(0.3, 1) for its class and U(0, 0.3) for another class half of the
    time; plus ``n_false`` random boxes with random sparse scores.

    Returns:
        tuple: boxes (N, 4) and per-class scores (N, num_classes).
    """
    h, w = shape
    boxes, scores = [], []
    for b, lab in zip(gt_boxes, gt_labels):
        if rng.random() < miss_prob:
            continue
        bw, bh = b[2] - b[0], b[3] - b[1]
        boxes.append(b + rng.normal(0, jitter, 4) * [bw, bh, bw, bh])
        s = np.zeros(num_classes)
        s[lab] = rng.uniform(0.3, 1.0)
        if rng.random() < 0.5:
            s[rng.integers(num_classes)] += rng.uniform(0, 0.3)
        scores.append(np.minimum(s, 1.0))
    for _ in range(n_false):
        xy = rng.uniform(0, [w, h])
        boxes.append(np.concatenate([xy, xy + rng.uniform(8, 50, 2)]))
        scores.append(rng.uniform(0, 0.6, num_classes) *
                      (rng.random(num_classes) < 0.4))
    return (np.array(boxes, float).reshape(-1, 4),
            np.array(scores, float).reshape(-1, num_classes))


class CheckpointTeacher:
    """Predictions of a trained detector (mmdet ``init_detector`` +
    ``inference_detector``), as boxes and (N, num_classes) scores."""

    def __init__(self, config, checkpoint, device='cpu', cfg_options=None):
        try:  # registers bombo's modules for bombo configs
            import bombo  # noqa: F401
        except ImportError as e:
            print(f'warning: bombo not importable ({e}); plain mmdet '
                  'configs still work')
        from mmdet.apis import init_detector

        from bombo.utils.config import load_config
        self.model = init_detector(load_config(config, cfg_options),
                                   checkpoint, device=device)

    def __call__(self, img_path, num_classes):
        import torch
        from mmdet.apis import inference_detector

        from bombo.models.task_modules.pseudo_boxes import score_matrix
        with torch.no_grad():
            result = inference_detector(self.model, img_path)
        pred = result.pred_instances
        return (pred.bboxes.cpu().numpy(),
                score_matrix(pred, num_classes).cpu().numpy())


def match_counts(pseudo_boxes, pseudo_labels, gt_boxes, gt_labels,
                 thrs=(0.5, 0.75)):
    """One-to-one greedy matching per class (highest IoU first).

    Returns:
        dict: ``{thr: number of matched pairs}``.
    """
    from bombo.models.task_modules.mask_for_box import box_iou
    out = {t: 0 for t in thrs}
    for c in np.unique(gt_labels):
        g = gt_boxes[gt_labels == c]
        p = pseudo_boxes[pseudo_labels == c]
        if len(p) == 0:
            continue
        iou = box_iou(np.asarray(g, np.float32), np.asarray(p, np.float32))
        for t in thrs:
            m = iou.copy()
            while m.size and m.max() >= t:
                i, j = np.unravel_index(np.argmax(m), m.shape)
                out[t] += 1
                m[i, :] = -1
                m[:, j] = -1
    return out


def read_split(data_root, split):
    with open(osp.join(data_root, 'ImageSets/Main', f'{split}.txt')) as f:
        return f.read().split()


# Options beyond the paper's pseudo-code (see refine_boxes_from_mask).
VARIANTS = {
    'm4b+merge_iou0.5': dict(merge_iou_thr=0.5),
    'm4b+unmatched': dict(merge_unmatched_only=True),
    'm4b+both': dict(merge_iou_thr=0.5, merge_unmatched_only=True),
}


def evaluate(data_root, split='seg_train', teacher=None, seed=0,
             max_images=None, ut_thr=0.7, num_classes=3, m4b_cfg=None,
             with_variants=False):
    """Returns a dict ``{method: {n_gt, n_pseudo, matched@0.5, ...}}`` and
    the M4B case counts (of the ``m4b`` row: ``m4b_cfg``, paper defaults
    when None); ``with_variants`` adds the rows of :data:`VARIANTS`."""
    from bombo.models.task_modules.mask_for_box import (
        CASE_NAMES, mask_to_reference_boxes, refine_boxes_from_mask)
    ids = read_split(data_root, split)[:max_images]
    rng = np.random.default_rng(seed)
    variants = {'m4b': dict(m4b_cfg or {})}
    if with_variants:
        variants.update(VARIANTS)
    methods = ('mask_boxes', *variants, f'teacher>{ut_thr}')
    thrs = (0.5, 0.75)
    table = {m: dict(n_gt=0, n_pseudo=0, **{f'matched@{t}': 0
                                             for t in thrs})
             for m in methods}
    cases = {n: 0 for n in CASE_NAMES[:4]}
    for img_id in ids:
        mask, gt_boxes, gt_labels = load_toy_image(data_root, img_id)
        if teacher is None:
            boxes, scores = synthetic_teacher(gt_boxes, gt_labels,
                                              num_classes, rng, mask.shape)
        else:
            boxes, scores = teacher(
                osp.join(data_root, 'JPEGImages', f'{img_id}.jpg'),
                num_classes)
        ref, ref_cls = mask_to_reference_boxes(mask)
        sets = {'mask_boxes': (ref, ref_cls - 1)}
        for name, kw in variants.items():
            res = refine_boxes_from_mask(mask, boxes, scores,
                                         num_classes=num_classes, **kw)
            sets[name] = (res.boxes, res.labels)
            if name == 'm4b':
                for c in res.cases:
                    cases[CASE_NAMES[c]] += 1
        k, lab = np.nonzero(scores > ut_thr)
        sets[f'teacher>{ut_thr}'] = (boxes[k], lab)
        for m, (pb, pl) in sets.items():
            table[m]['n_gt'] += len(gt_boxes)
            table[m]['n_pseudo'] += len(pb)
            for t, v in match_counts(np.asarray(pb, float), pl, gt_boxes,
                                     gt_labels, thrs).items():
                table[m][f'matched@{t}'] += v
    return dict(split=split, n_images=len(ids), table=table, m4b_cases=cases)


def format_table(result):
    lines = [f"{result['n_images']} images of {result['split']}",
             f"{'pseudo-boxes':<18}{'n_gt':>6}{'n_pseudo':>10}"
             f"{'R@0.5':>8}{'R@0.75':>8}{'P@0.5':>8}{'P@0.75':>8}"]
    for m, r in result['table'].items():
        rec = [r[f'matched@{t}'] / max(r['n_gt'], 1) for t in (0.5, 0.75)]
        pre = [r[f'matched@{t}'] / max(r['n_pseudo'], 1) for t in (0.5, 0.75)]
        lines.append(f"{m:<18}{r['n_gt']:>6}{r['n_pseudo']:>10}"
                     f"{rec[0]:>8.3f}{rec[1]:>8.3f}{pre[0]:>8.3f}"
                     f"{pre[1]:>8.3f}")
    lines.append(f"m4b boxes by case: {result['m4b_cases']}")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data/toy')
    parser.add_argument('--split', default='seg_train')
    parser.add_argument('--config')
    parser.add_argument('--checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of --config, key=value')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--synthetic-teacher', action='store_true',
                        help='jittered ground truth instead of a detector')
    parser.add_argument('--max-images', type=int)
    parser.add_argument('--ut-thr', type=float, default=0.7)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--m4b-cfg', default='{}',
                        help='json dict of refine_boxes_from_mask keyword '
                        'arguments for the m4b row (paper defaults: {})')
    parser.add_argument('--variants', action='store_true',
                        help='also evaluate the options beyond the paper')
    parser.add_argument('--out', help='json file for the results')
    args = parser.parse_args(argv)
    if args.synthetic_teacher == bool(args.config and args.checkpoint):
        parser.error('give either --config and --checkpoint, or '
                     '--synthetic-teacher')
    teacher = None
    if not args.synthetic_teacher:
        teacher = CheckpointTeacher(args.config, args.checkpoint,
                                    args.device, args.cfg_options)
    result = evaluate(args.data, args.split, teacher, args.seed,
                      args.max_images, args.ut_thr,
                      m4b_cfg=json.loads(args.m4b_cfg),
                      with_variants=args.variants)
    result['teacher'] = ('synthetic (jittered ground truth)'
                         if teacher is None else
                         f'{args.config} {args.checkpoint}')
    print(format_table(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
