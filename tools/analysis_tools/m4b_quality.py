#!/usr/bin/env python
"""Quality of pseudo-boxes from segmentation masks against the true boxes.

How well do pseudo-boxes from segmentation masks match the true instance
boxes? (BoMBo, section 3.2: raw mask boxes versus Mask-for-Box refined boxes.)

On a VOC-layout dataset that keeps instance ground truth for every image (the
toy dataset: ``Annotations/<id>.xml``), for each image of ``--split``:

* ``mask_boxes``: circumscribed rectangles of the connected components of
  ``SegmentationClass/<id>.png`` (no refinement);
* ``m4b``: the same refined by Algorithm 1 with the teacher's predictions;
* ``teacher>thr``: the teacher's predictions above ``--ut-thr`` (the
  unbiased-teacher baseline), for context.

What the teacher gives Algorithm 1 (``--teacher-boxes``, checkpoint teachers
only): ``nms`` (default; the final, post-NMS detections, one label per box),
``dense`` (the dense head's boxes before NMS with their full per-class
sigmoid score vectors, exactly what ``MaskForBoxBranch(teacher_boxes='dense')``
gives it in training: ``bombo.models.task_modules.teacher.dense_predictions``
on the test-pipeline input, boxes rescaled to the original image) or
``both`` (one ``m4b`` row each, ``m4b[nms]`` and ``m4b[dense]``, on the same
teacher). ``teacher>thr`` always uses the post-NMS detections. Dense input
needs a bombo model (``PartialMultiTaskDetector``) with a sigmoid anchor head.

Classes: ``--classes`` (default: the three toy classes; the hard preset's six
are ``--classes rectangle ellipse triangle cross star hexagon``).

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
    python tools/analysis_tools/m4b_quality.py --data data/toy_hard \\
        --classes rectangle ellipse triangle cross star hexagon \\
        --config configs/toy/ablation/hard_mtl.py --checkpoint CKPT \\
        --teacher-boxes both
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
        self._pipeline = None

    def __call__(self, img_path, num_classes, mode='nms'):
        """Boxes (N, 4) in the original image and scores (N, num_classes):
        ``mode='nms'`` the final detections, ``'dense'`` the dense head's
        boxes before NMS (see :meth:`dense`)."""
        import torch
        from mmdet.apis import inference_detector

        from bombo.models.task_modules.pseudo_boxes import score_matrix
        if mode == 'dense':
            return self.dense(img_path)
        if mode != 'nms':
            raise ValueError(f"mode must be 'nms' or 'dense', got {mode!r}")
        with torch.no_grad():
            result = inference_detector(self.model, img_path)
        pred = result.pred_instances
        return (pred.bboxes.cpu().numpy(),
                score_matrix(pred, num_classes).cpu().numpy())

    def dense(self, img_path):
        """The teacher input of ``MaskForBoxBranch(teacher_boxes='dense')``:
        ``dense_predictions`` (defaults: score > 0.1, top 1000 per level) on
        the test-pipeline input, rescaled to the original image."""
        import torch
        from mmengine.dataset import Compose, pseudo_collate
        from mmdet.utils import get_test_pipeline_cfg

        from bombo.models.task_modules.teacher import dense_predictions
        if self._pipeline is None:
            self._pipeline = Compose(get_test_pipeline_cfg(
                self.model.cfg.copy()))
        data = self._pipeline(dict(img_path=img_path, img_id=0))
        data = self.model.data_preprocessor(pseudo_collate([data]), False)
        sample = data['data_samples'][0]
        with torch.no_grad():
            pred = dense_predictions(self.model, data['inputs'], [sample])[0]
        sx, sy = sample.metainfo.get('scale_factor', (1.0, 1.0))
        boxes = pred.bboxes.cpu().numpy() / np.array([sx, sy, sx, sy])
        h, w = sample.metainfo['ori_shape']
        boxes = np.clip(boxes, 0, [w, h, w, h])
        return boxes, pred.scores.cpu().numpy()


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


TEACHER_BOXES = ('nms', 'dense', 'both')


def evaluate(data_root, split='seg_train', teacher=None, seed=0,
             max_images=None, ut_thr=0.7, num_classes=None, m4b_cfg=None,
             with_variants=False, classes=CLASSES, teacher_boxes='nms'):
    """Returns a dict ``{method: {n_gt, n_pseudo, matched@0.5, ...}}`` and
    the M4B case counts (of the ``m4b`` row: ``m4b_cfg``, paper defaults
    when None); ``with_variants`` adds the rows of :data:`VARIANTS`.
    ``teacher_boxes='both'`` (checkpoint teacher) gives the rows
    ``m4b[nms]`` and ``m4b[dense]`` instead of ``m4b``."""
    from bombo.models.task_modules.mask_for_box import (
        CASE_NAMES, mask_to_reference_boxes, refine_boxes_from_mask)
    if teacher_boxes not in TEACHER_BOXES:
        raise ValueError(f'teacher_boxes must be one of {TEACHER_BOXES}')
    if teacher is None and teacher_boxes != 'nms':
        raise ValueError('dense teacher boxes need a checkpoint teacher')
    classes = tuple(classes)
    num_classes = len(classes) if num_classes is None else num_classes
    if num_classes != len(classes):
        raise ValueError(f'num_classes={num_classes} for {len(classes)} '
                         'classes')
    ids = read_split(data_root, split)[:max_images]
    rng = np.random.default_rng(seed)
    modes = ('nms', 'dense') if teacher_boxes == 'both' else (teacher_boxes, )
    variants = {}
    for mode in modes:
        tag = f'[{mode}]' if teacher_boxes == 'both' else ''
        variants[f'm4b{tag}'] = (mode, dict(m4b_cfg or {}))
        if with_variants:
            variants.update({f'{k}{tag}': (mode, v)
                             for k, v in VARIANTS.items()})
    methods = ('mask_boxes', *variants, f'teacher>{ut_thr}')
    thrs = (0.5, 0.75)
    table = {m: dict(n_gt=0, n_pseudo=0, **{f'matched@{t}': 0
                                             for t in thrs})
             for m in methods}
    cases = {n: 0 for n in CASE_NAMES[:4]}
    all_cases = {name: {n: 0 for n in CASE_NAMES[:4]} for name in variants
                 if name.startswith('m4b[') or name == 'm4b'}
    for img_id in ids:
        mask, gt_boxes, gt_labels = load_toy_image(data_root, img_id, classes)
        img_path = osp.join(data_root, 'JPEGImages', f'{img_id}.jpg')
        preds = {}
        if teacher is None:
            preds['nms'] = synthetic_teacher(gt_boxes, gt_labels,
                                             num_classes, rng, mask.shape)
        else:
            preds['nms'] = teacher(img_path, num_classes)
            if 'dense' in modes:
                preds['dense'] = teacher(img_path, num_classes, mode='dense')
        ref, ref_cls = mask_to_reference_boxes(mask)
        sets = {'mask_boxes': (ref, ref_cls - 1)}
        for name, (mode, kw) in variants.items():
            boxes, scores = preds[mode]
            res = refine_boxes_from_mask(mask, boxes, scores,
                                         num_classes=num_classes, **kw)
            sets[name] = (res.boxes, res.labels)
            if name in all_cases:
                for c in res.cases:
                    all_cases[name][CASE_NAMES[c]] += 1
        boxes, scores = preds['nms']
        k, lab = np.nonzero(scores > ut_thr)
        sets[f'teacher>{ut_thr}'] = (boxes[k], lab)
        for m, (pb, pl) in sets.items():
            table[m]['n_gt'] += len(gt_boxes)
            table[m]['n_pseudo'] += len(pb)
            for t, v in match_counts(np.asarray(pb, float), pl, gt_boxes,
                                     gt_labels, thrs).items():
                table[m][f'matched@{t}'] += v
    first = next(iter(all_cases))
    cases = all_cases[first]
    out = dict(split=split, n_images=len(ids), table=table, m4b_cases=cases,
               teacher_boxes=teacher_boxes)
    if len(all_cases) > 1:
        out['m4b_cases_by_input'] = all_cases
    return out


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
    if 'm4b_cases_by_input' in result:
        for name, cases in result['m4b_cases_by_input'].items():
            lines.append(f"{name} boxes by case: {cases}")
    else:
        lines.append(f"m4b boxes by case: {result['m4b_cases']}")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--data', default='data/toy',
                        help='VOC-layout data root')
    parser.add_argument('--split', default='seg_train', help='split name')
    parser.add_argument('--classes', nargs='+', default=list(CLASSES),
                        help='class names, in label order')
    parser.add_argument('--config', help='teacher config')
    parser.add_argument('--checkpoint', help='teacher checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of --config, key=value')
    parser.add_argument('--device', default='cpu', help='teacher device')
    parser.add_argument('--synthetic-teacher', action='store_true',
                        help='jittered ground truth instead of a detector')
    parser.add_argument('--teacher-boxes', default='nms',
                        choices=TEACHER_BOXES,
                        help='teacher input of Algorithm 1: post-NMS '
                        'detections, dense pre-NMS boxes, or both rows')
    parser.add_argument('--max-images', type=int,
                        help='first N images of the split (default: all)')
    parser.add_argument('--ut-thr', type=float, default=0.7,
                        help='score threshold of the teacher>thr row')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic teacher')
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
    if args.synthetic_teacher and args.teacher_boxes != 'nms':
        parser.error('--teacher-boxes dense/both needs a checkpoint teacher')
    teacher = None
    if not args.synthetic_teacher:
        teacher = CheckpointTeacher(args.config, args.checkpoint,
                                    args.device, args.cfg_options)
    result = evaluate(args.data, args.split, teacher, args.seed,
                      args.max_images, args.ut_thr,
                      m4b_cfg=json.loads(args.m4b_cfg),
                      with_variants=args.variants, classes=args.classes,
                      teacher_boxes=args.teacher_boxes)
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
