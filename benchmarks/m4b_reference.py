# Copyright (c) bombo contributors.
"""Straightforward Python-loop implementation of BoMBo's Algorithm 1
(Mask-for-Box), written independently of
``bombo.models.task_modules.mask_for_box`` (scipy labelling, scalar IoU,
loops over references x predictions, ``itertools`` power set, greedy NMS in
Python). It follows the same documented readings of the pseudo-code, so that
the tests can assert both give the same boxes and the benchmark can compare
their speed. Not part of the package.
"""
import itertools
import math

import numpy as np
from scipy import ndimage

SPLIT, MERGE, ADD, LEFTOVER = 0, 1, 2, 3


def _iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) \
        - inter
    return inter / max(union, 1e-6)


def _touch_crop(ref, pred, ratio):
    w = ref[2] - ref[0]
    h = ref[3] - ref[1]
    tol = [ratio * w, ratio * h, ratio * w, ratio * h]
    crop, n = [], 0
    for s in range(4):
        if abs(ref[s] - pred[s]) <= tol[s]:
            crop.append(ref[s])
            n += 1
        else:
            crop.append(pred[s])
    if crop[2] <= crop[0] or crop[3] <= crop[1]:
        return False, None
    return n >= 2, tuple(crop)


def _references(mask, ignore_index, background_index, connectivity):
    refs = []
    structure = np.ones((3, 3)) if connectivity == 8 else None
    for j in sorted(set(mask.ravel().tolist())):
        if j in (ignore_index, background_index):
            continue
        lab, n = ndimage.label(mask == j, structure=structure)
        boxes = []
        for sl in ndimage.find_objects(lab):
            boxes.append((float(sl[1].start), float(sl[0].start),
                          float(sl[1].stop), float(sl[0].stop)))
        boxes.sort(key=lambda b: (b[1], b[0], b[3], b[2]))
        refs += [(b, j) for b in boxes]
    return refs


def _adjacent(a, b, r):
    ga = (a[0] - r * (a[2] - a[0]) - 1, a[1] - r * (a[3] - a[1]) - 1,
          a[2] + r * (a[2] - a[0]) + 1, a[3] + r * (a[3] - a[1]) + 1)
    gb = (b[0] - r * (b[2] - b[0]) - 1, b[1] - r * (b[3] - b[1]) - 1,
          b[2] + r * (b[2] - b[0]) + 1, b[3] + r * (b[3] - b[1]) + 1)
    return (min(ga[2], gb[2]) - max(ga[0], gb[0]) > 0
            and min(ga[3], gb[3]) - max(ga[1], gb[1]) > 0)


def _subsets(boxes, max_comp, max_subsets, ratio):
    """Subsets (tuples of indices) in canonical order: size, then
    sum(2**i)."""
    n = len(boxes)
    key = lambda t: (len(t), sum(1 << i for i in t))  # noqa: E731
    if n <= max_comp:
        subs = []
        for size in range(2, n + 1):
            subs += list(itertools.combinations(range(n), size))
        return sorted(subs, key=key), False
    out, level = [], [(i, ) for i in range(n)]
    while len(out) < max_subsets and level:
        nxt = set()
        for s in level:
            for v in range(n):
                if v not in s and any(_adjacent(boxes[u], boxes[v], ratio)
                                      for u in s):
                    nxt.add(tuple(sorted(s + (v, ))))
        level = sorted(nxt, key=key)
        if len(out) + len(level) > max_subsets:
            level = level[:max_subsets - len(out)]
        out += level
    return out, len(out) >= max_subsets and True


def _nms(entries, thr, class_agnostic):
    order = sorted(range(len(entries)), key=lambda i: (-entries[i][1], i))
    kept = []
    for i in order:
        b, s, lab, _ = entries[i]
        if all(_iou(b, entries[k][0]) <= thr for k in kept
               if class_agnostic or entries[k][2] == lab):
            kept.append(i)
    return kept


def reference_refine(sem_mask, pred_boxes, pred_scores, *, ignore_index=255,
                     background_index=0, split_score_thr=0.4,
                     split_iou_thr=0.6, touch_ratio=0.1, split_bonus=0.1,
                     merge_score_thr=0.1, merge_bonus=0.4, add_score_thr=0.5,
                     add_iou_thr=0.8, nms_iou_thr=0.4, score_cap=0.9,
                     min_overlap_iou=0.0, merge_iou_thr=0.0,
                     merge_unmatched_only=False, class_agnostic_nms=False,
                     leftover_score=1.0, dedupe_leftover=True,
                     max_merge_components=8, max_merge_subsets=1024,
                     merge_adjacency_ratio=0.2, connectivity=8):
    """Returns (boxes, labels, scores, cases) as Python lists."""
    mask = np.asarray(sem_mask)
    if mask.ndim == 3:
        mask = mask[0]
    H, W = mask.shape
    preds = []
    for b, c in zip(np.asarray(pred_boxes, float).tolist(),
                    np.asarray(pred_scores, float).tolist()):
        if not all(math.isfinite(v) for v in b):
            continue
        b = (min(max(b[0], 0.0), W), min(max(b[1], 0.0), H),
             min(max(b[2], 0.0), W), min(max(b[3], 0.0), H))
        if b[2] <= b[0] or b[3] <= b[1]:
            continue
        preds.append((b, [v if math.isfinite(v) else 0.0 for v in c]))

    # Lines 1-6.
    references = _references(mask, ignore_index, background_index,
                             connectivity)
    lab = (lambda j: j - 1) if background_index == 0 else (lambda j: j)
    shortlist = []  # (box, score, label, case)
    leftover = []
    # A. Splitting case (lines 9-18).
    for ref_id, (L, j) in enumerate(references):
        leftover.append(ref_id)
        for Lk, ck in preds:
            if not ck[lab(j)] > split_score_thr:
                continue
            iou = _iou(L, Lk)
            if iou <= split_iou_thr and iou > min_overlap_iou:
                t, crop = _touch_crop(L, Lk, touch_ratio)
                if not t:
                    continue
                shortlist.append((crop, min(score_cap, ck[lab(j)] +
                                            split_bonus), lab(j), SPLIT))
                if ref_id in leftover:
                    leftover.remove(ref_id)
    # B. Merging case (lines 19-27).
    candidates = list(leftover)
    if merge_unmatched_only:
        candidates = [
            i for i in leftover if not any(
                ck[lab(references[i][1])] > split_score_thr
                and _iou(references[i][0], Lk) > split_iou_thr
                for Lk, ck in preds)
        ]
    for j in sorted(set(references[i][1] for i in candidates)):
        ids = [i for i in candidates if references[i][1] == j]
        boxes = [references[i][0] for i in ids]
        subsets, _ = _subsets(boxes, max_merge_components, max_merge_subsets,
                              merge_adjacency_ratio)
        merged = {}  # merged box -> member set, insertion = first occurrence
        for p in subsets:
            m = (min(boxes[i][0] for i in p), min(boxes[i][1] for i in p),
                 max(boxes[i][2] for i in p), max(boxes[i][3] for i in p))
            merged.setdefault(m, set()).update(p)
        removed = set()
        for L, members in merged.items():
            if not preds:
                break
            best, best_iou = 0, -1.0
            for k, (Lk, _) in enumerate(preds):
                iou = _iou(L, Lk)
                if iou > best_iou:
                    best, best_iou = k, iou
            c = preds[best][1][lab(j)]
            if c > merge_score_thr and best_iou > merge_iou_thr:
                shortlist.append((L, min(score_cap, c + merge_bonus), lab(j),
                                  MERGE))
                removed |= {ids[i] for i in members}
        leftover = [i for i in leftover if i not in removed]
    # C. Adding well-predicted boxes (lines 28-35).
    for L, j in references:
        for Lk, ck in preds:
            c = ck[lab(j)]
            if not c > add_score_thr:
                continue
            iou = _iou(L, Lk)
            if iou >= add_iou_thr:
                shortlist.append((L, c, lab(j), ADD))
            elif iou > min_overlap_iou:
                t, crop = _touch_crop(L, Lk, touch_ratio)
                if t:
                    shortlist.append((crop, c, lab(j), ADD))
    # Line 36, 37.
    kept = [shortlist[i] for i in _nms(shortlist, nms_iou_thr,
                                       class_agnostic_nms)]
    out = list(kept)
    for i in leftover:
        L, j = references[i]
        if dedupe_leftover and any(
                tuple(e[0]) == tuple(L) and e[2] == lab(j) for e in kept):
            continue
        out.append((L, leftover_score, lab(j), LEFTOVER))
    return ([list(e[0]) for e in out], [e[2] for e in out],
            [e[1] for e in out], [e[3] for e in out])
