# Copyright (c) bombo contributors.
"""Mask-for-Box (M4B): refine the circumscribed rectangles of a semantic mask's
connected components with a teacher's predicted boxes.

Implements Algorithm 1 ("Mask-for-Box matching and refining") of

    H.-A. Lê, P. Berg, M.-T. Pham. Box for Mask and Mask for Box: weak losses
    for multi-task partially supervised learning (BoMBo), section 3.2 and
    supplementary section 7.

The public entry point is :func:`refine_boxes_from_mask`, a pure numpy function
(OpenCV connected components, float64 IoU matrices); it knows nothing of
models or runners. See ``docs/mask_for_box.md``. Its cost is bounded: the
reference x prediction arrays are built in blocks of at most
``chunk_pairs`` pairs, the NMS runs per class without an IoU matrix over the
whole shortlist, and beyond ``max_references`` components (or
``max_predictions`` predictions) an image is skipped (the top predictions
are kept), counted and logged (``docs/training_at_scale.md``).

Coordinate convention (everywhere in this module): boxes are ``xyxy`` in
pixels of the mask, ``x2``/``y2`` exclusive, i.e. a connected component whose
pixels span columns ``c0..c1`` and rows ``r0..r1`` (inclusive) has the
reference box ``[c0, r0, c1 + 1, r1 + 1]``. This is what mmdet's VOC loader
produces from 1-based inclusive VOC boxes (``xmin - 1, ymin - 1, xmax, ymax``)
and what ``mmcv.ops.nms`` (``offset=0``) and mmdet's ``bbox_overlaps``
(``use_legacy_coordinate=False``) assume.
"""
import logging
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

# Which step of Algorithm 1 produced a box (``M4BResult.cases``). ``teacher``
# and ``mask`` are used by the baselines in ``pseudo_boxes.py``.
CASE_SPLIT, CASE_MERGE, CASE_ADD, CASE_LEFTOVER, CASE_TEACHER, CASE_MASK = \
    range(6)
CASE_NAMES = ('split', 'merge', 'add', 'leftover', 'teacher', 'mask')


@dataclass
class M4BResult:
    """Output of :func:`refine_boxes_from_mask`.

    Args:
        boxes (np.ndarray): (M, 4) float32 xyxy boxes (x2/y2 exclusive).
        labels (np.ndarray): (M,) int64 0-based detection labels
            (= semantic index - 1 when ``background_index == 0``).
        scores (np.ndarray): (M,) float32 shortlist scores (Algorithm 1);
            leftover boxes get ``leftover_score``.
        cases (np.ndarray): (M,) int64 codes into :data:`CASE_NAMES`.
        stats (dict): counters (references, dropped/clipped predictions, NaN
            scores, merge subsets enumerated, whether the merge enumeration
            was bounded or truncated, ...).
    """
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    cases: np.ndarray
    stats: Dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def case_names(self):
        return [CASE_NAMES[c] for c in self.cases]


def _empty_result(stats: Dict) -> M4BResult:
    return M4BResult(
        boxes=np.zeros((0, 4), np.float32),
        labels=np.zeros((0, ), np.int64),
        scores=np.zeros((0, ), np.float32),
        cases=np.zeros((0, ), np.int64),
        stats=stats)


def _to_numpy(x, name: str) -> np.ndarray:
    if x is None:
        raise ValueError(f'{name} must not be None')
    if hasattr(x, 'detach'):  # torch.Tensor, without importing torch
        x = x.detach().cpu()
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()  # fp16 / bf16 (AMP teacher): numpy has no bf16
        x = x.numpy()
    return np.asarray(x)


def _check_mask(sem_mask, ignore_index: int) -> np.ndarray:
    """(H, W) or (1, H, W) integer-valued array -> (H, W) integer array."""
    mask = _to_numpy(sem_mask, 'sem_mask')
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2:
        raise ValueError('sem_mask must have shape (H, W) or (1, H, W), got '
                         f'{tuple(mask.shape)}')
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        if not np.issubdtype(mask.dtype, np.floating):
            raise ValueError(f'sem_mask has unsupported dtype {mask.dtype}')
        if mask.size and not (np.all(np.isfinite(mask))
                              and np.all(mask == np.round(mask))):
            raise ValueError('sem_mask must hold integer class indices; got '
                             'non-integer or non-finite floats')
        mask = mask.astype(np.int64)
    if np.issubdtype(mask.dtype, np.signedinteger) and mask.size:
        invalid = (mask < 0) & (mask != ignore_index)
        if invalid.any():
            raise ValueError('sem_mask holds negative class indices '
                             f'{np.unique(mask[invalid])[:5]}')
    return mask


def _present_values(mask: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer mask (bincount when small)."""
    if mask.size == 0:
        return np.zeros((0, ), np.int64)
    if mask.dtype in (np.uint8, np.uint16) or (mask.min() >= 0
                                               and mask.max() < 65536):
        return np.nonzero(np.bincount(mask.ravel().astype(np.intp,
                                                          copy=False)))[0]
    return np.unique(mask)


def mask_to_reference_boxes(
        sem_mask,
        ignore_index: int = 255,
        background_index: int = 0,
        connectivity: int = 8) -> Tuple[np.ndarray, np.ndarray]:
    """Circumscribed rectangles of every class's connected components
    (Algorithm 1, lines 1-6).

    Pixels equal to ``ignore_index`` belong to no class (they separate
    components like background does) and pixels equal to ``background_index``
    are background. References are ordered by class index, then by
    ``(y1, x1, y2, x2)`` so that the order does not depend on the labelling
    algorithm.

    Args:
        sem_mask (np.ndarray | Tensor): (H, W) or (1, H, W) class indices.
        ignore_index (int): ignored pixel value. Defaults to 255.
        background_index (int): background value. Defaults to 0.
        connectivity (int): 4 or 8. Defaults to 8.

    Returns:
        tuple: boxes (K, 4) float64 xyxy (x2/y2 exclusive) and classes (K,)
        int64 semantic indices.
    """
    return _reference_boxes(
        _check_mask(sem_mask, ignore_index), ignore_index, background_index,
        connectivity)


def _reference_boxes(mask, ignore_index, background_index, connectivity):
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    boxes, classes = [], []
    for j in _present_values(mask):
        if j in (ignore_index, background_index):
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats(
            (mask == j).view(np.uint8), connectivity=connectivity)
        b = stats[1:n, :4].astype(np.float64)  # left, top, width, height
        b[:, 2:] += b[:, :2]
        if n > 2:
            b = b[np.lexsort((b[:, 2], b[:, 3], b[:, 0], b[:, 1]))]
        boxes.append(b)
        classes.append(np.full((len(b), ), j, np.int64))
    if not boxes:
        return np.zeros((0, 4)), np.zeros((0, ), np.int64)
    return np.concatenate(boxes), np.concatenate(classes)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU matrix (n, m) of xyxy boxes, in float64.

    mmdet's numpy ``bbox_overlaps`` computes in float32; here the IoU decides
    thresholds (``<= 0.6``, ``>= 0.8``) and the ``argmax`` of line 24, where
    float32 rounding turns near-ties into ties and changes which prediction
    is matched, so the few lines are written out in float64.
    """
    b1 = np.asarray(boxes1, np.float64).reshape(-1, 4)
    b2 = np.asarray(boxes2, np.float64).reshape(-1, 4)
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    iw = np.minimum(b1[:, None, 2], b2[None, :, 2]) - np.maximum(
        b1[:, None, 0], b2[None, :, 0])
    ih = np.minimum(b1[:, None, 3], b2[None, :, 3]) - np.maximum(
        b1[:, None, 1], b2[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = area1[:, None] + area2[None, :] - inter
    return inter / np.maximum(union, 1e-6)


def touch_and_crop(refs: np.ndarray, preds: np.ndarray,
                   touch_ratio: float) -> Tuple[np.ndarray, np.ndarray]:
    """``touch`` and ``crop`` of Algorithm 1 (lines 13-14, 33-34) for all
    reference / prediction pairs at once.

    A side of a predicted box touches the same side of the reference box when
    their distance is ``<= touch_ratio`` times the reference box's width (left,
    right) or height (top, bottom); ``touch`` holds when at least two sides
    touch. ``crop`` takes the touching sides from the reference box and the
    other sides from the predicted box.

    Args:
        refs (np.ndarray): (K, 4) reference boxes.
        preds (np.ndarray): (N, 4) predicted boxes.
        touch_ratio (float): 0.1 in the paper.

    Returns:
        tuple: touch (K, N) bool (also False where the crop is empty) and
        crops (K, N, 4) float64.
    """
    refs = refs.astype(np.float64)
    preds = preds.astype(np.float64)
    wh = np.stack([refs[:, 2] - refs[:, 0], refs[:, 3] - refs[:, 1]], 1)
    tol = touch_ratio * wh[:, [0, 1, 0, 1]]  # (K, 4): x1 y1 x2 y2
    sides = np.abs(refs[:, None, :] - preds[None, :, :]) <= tol[:, None, :]
    crops = np.where(sides, refs[:, None, :], preds[None, :, :])
    valid = (crops[..., 2] > crops[..., 0]) & (crops[..., 3] > crops[..., 1])
    return (sides.sum(-1) >= 2) & valid, crops


def _adjacency(boxes: np.ndarray, ratio: float) -> np.ndarray:
    """(n, n) bool: boxes grown by ``ratio`` of their own width/height plus
    one pixel on every side overlap (positive area); diagonal False."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    g = np.stack([boxes[:, 0] - ratio * w - 1, boxes[:, 1] - ratio * h - 1,
                  boxes[:, 2] + ratio * w + 1, boxes[:, 3] + ratio * h + 1],
                 1)
    ix = np.minimum(g[:, None, 2], g[None, :, 2]) - np.maximum(
        g[:, None, 0], g[None, :, 0])
    iy = np.minimum(g[:, None, 3], g[None, :, 3]) - np.maximum(
        g[:, None, 1], g[None, :, 1])
    adj = (ix > 0) & (iy > 0)
    np.fill_diagonal(adj, False)
    return adj


def _pack(sets: np.ndarray) -> np.ndarray:
    """(m, n) bool -> (m, W) int64 words of 62 bits; the subset's canonical
    integer ``sum(2**i)`` is ``sum(words[:, w] << 62 w)``."""
    n = sets.shape[1]
    words = np.zeros((len(sets), max(1, -(-n // 62))), np.int64)
    for w in range(words.shape[1]):
        chunk = sets[:, 62 * w:62 * (w + 1)].astype(np.int64)
        words[:, w] = chunk @ (np.int64(1) << np.arange(
            chunk.shape[1], dtype=np.int64))
    return words


def _unique_colex(sets: np.ndarray) -> np.ndarray:
    """Distinct rows of (m, n) bool ``sets`` sorted by their canonical
    integer ``sum(2**i for members i)`` (any n)."""
    if len(sets) == 0:
        return sets
    words = _pack(sets)
    order = np.lexsort(words.T)  # last word (most significant) is primary
    w = words[order]
    new = np.ones(len(w), bool)
    new[1:] = np.any(w[1:] != w[:-1], 1)
    return sets[order[new]]


def merge_subsets(boxes: np.ndarray,
                  max_merge_components: int = 8,
                  max_merge_subsets: int = 1024,
                  adjacency_ratio: float = 0.2) -> Tuple[np.ndarray, Dict]:
    """Subsets of one category's leftover boxes to merge (Algorithm 1,
    line 22: ``powerset`` restricted to ``|p| > 1``).

    * ``n <= max_merge_components``: the exact power set, as in the paper
      (``2**n - n - 1`` subsets).
    * otherwise (bounded strategy; the paper's power set would be exponential):
      only subsets that are *connected* in the adjacency graph of the boxes
      (two boxes are adjacent when, each grown by ``adjacency_ratio`` of its
      width/height plus 1 px per side, they overlap), enumerated by size
      (pairs, then triples grown from the pairs, ...) and, within a size, in
      the canonical order below, keeping at most ``max_merge_subsets`` in all.
      Fragments of one object are close to each other, so merging distant,
      unconnected components is what is given up.

    Canonical order (both regimes): by size, then by the integer
    ``sum(2**i for i in subset)``; it fixes which subsets survive the cap and
    the insertion order into the shortlist (NMS tie-breaking).

    Args:
        boxes (np.ndarray): (n, 4) boxes of one category.
        max_merge_components (int): largest n with the exact power set.
        max_merge_subsets (int): cap of the bounded strategy.
        adjacency_ratio (float): growth of boxes for the adjacency graph.

    Returns:
        tuple: (m, n) bool membership matrix (each row has >= 2 members) and
        a dict ``{'bounded': bool, 'truncated': bool}``.
    """
    n = len(boxes)
    info = {'bounded': False, 'truncated': False}
    if n < 2:
        return np.zeros((0, n), bool), info
    if n <= max_merge_components:
        codes = np.arange(1 << n, dtype=np.int64)
        sets = ((codes[:, None] >> np.arange(n)) & 1).astype(bool)
        size = sets.sum(1)
        order = np.lexsort((codes, size))
        order = order[size[order] >= 2]
        return sets[order], info
    info['bounded'] = True
    adj = _adjacency(boxes, adjacency_ratio)
    level = np.eye(n, dtype=bool)
    out, count = [], 0
    while True:
        # boxes adjacent to a member and not members; every row of a level
        # has the same number of members, so (m, size, n) without a matmul
        members = np.nonzero(level)[1].reshape(len(level), -1)
        frontier = adj[members].any(1) & ~level
        rows, cols = np.nonzero(frontier)
        if len(rows) == 0:
            break
        grown = level[rows].copy()
        grown[np.arange(len(rows)), cols] = True
        level = _unique_colex(grown)
        if count + len(level) > max_merge_subsets:
            level = level[:max_merge_subsets - count]
            info['truncated'] = True
        if len(level) == 0:
            break
        out.append(level)
        count += len(level)
    if not out:
        return np.zeros((0, n), bool), info
    return np.concatenate(out), info


def merged_boxes(boxes: np.ndarray,
                 subsets: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``unique(merge(p))`` of Algorithm 1, line 22.

    Args:
        boxes (np.ndarray): (n, 4) boxes.
        subsets (np.ndarray): (m, n) bool membership.

    Returns:
        tuple: unique merged boxes (U, 4) in order of first occurrence among
        ``subsets`` and their members (U, n) bool: the union of all subsets
        that give that merged box (for the exact power set this is every box
        of the category inside the merged box).
    """
    if len(subsets) == 0:
        return np.zeros((0, 4)), np.zeros((0, len(boxes)), bool)
    inf = np.inf
    mb = np.stack([
        np.where(subsets, boxes[None, :, 0], inf).min(1),
        np.where(subsets, boxes[None, :, 1], inf).min(1),
        np.where(subsets, boxes[None, :, 2], -inf).max(1),
        np.where(subsets, boxes[None, :, 3], -inf).max(1)
    ], 1)
    # Group equal rows (stable sort: the first row of a group is its first
    # occurrence), then order the groups by first occurrence.
    order = np.lexsort(mb.T[::-1])
    srt = mb[order]
    new = np.ones(len(srt), bool)
    new[1:] = np.any(srt[1:] != srt[:-1], 1)
    group = np.cumsum(new) - 1
    first = order[new]
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(len(first))
    inverse = np.empty(len(mb), np.int64)
    inverse[order] = rank[group]
    members = np.zeros((len(first), len(boxes)), np.int64)
    np.add.at(members, inverse, subsets.astype(np.int64))
    return mb[np.sort(first)], members > 0


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                    iou_thr: float, dense_limit: int = 256) -> np.ndarray:
    """Greedy NMS per label, deterministic on ties (Algorithm 1, line 36).

    Boxes are visited by score (descending) and, among equal scores, by index
    (insertion order into the shortlist); a box is suppressed by a kept box
    of the same label with IoU > ``iou_thr`` (``mmcv.ops.nms``'s rule). It
    runs on the float64 IoU of :func:`box_iou`, so the IoU test agrees with
    the rest of the algorithm, and without mmcv's torch round trip, which
    cost more than the whole refinement on small shortlists.

    Bounded cost: the boxes are split by label first (boxes of different
    labels never interact), and a label with more than ``dense_limit`` boxes
    compares each kept box with the remaining ones only (memory linear in
    the number of boxes) instead of building its IoU matrix. The IoU values,
    and so the kept boxes, are the same either way.

    Returns:
        np.ndarray: kept indices, ordered by (score desc, index).
    """
    n = len(boxes)
    order = np.lexsort((np.arange(n), -np.asarray(scores)))
    if n <= 1:
        return order.astype(np.int64)
    kept = np.zeros(n, bool)
    for lab in np.unique(labels):
        idx = order[labels[order] == lab]  # this label, in visiting order
        kept[idx[_greedy_nms(boxes[idx], iou_thr, dense_limit)]] = True
    return order[kept[order]].astype(np.int64)


def _greedy_nms(boxes: np.ndarray, iou_thr: float,
                dense_limit: int) -> np.ndarray:
    """Greedy NMS of boxes given in visiting order; kept positions."""
    n = len(boxes)
    if n <= dense_limit:
        over = box_iou(boxes, boxes) > iou_thr
        suppressed = np.zeros(n, bool)
        keep = []
        for i in range(n):
            if not suppressed[i]:
                keep.append(i)
                suppressed |= over[i]
        return np.array(keep, np.int64)
    alive = np.ones(n, bool)
    keep = []
    for i in range(n):
        if not alive[i]:
            continue
        keep.append(i)
        rest = i + 1 + np.nonzero(alive[i + 1:])[0]
        if len(rest):
            alive[rest[box_iou(boxes[i], boxes[rest])[0] > iou_thr]] = False
    return np.array(keep, np.int64)


def _best_match(boxes: np.ndarray, preds: np.ndarray,
                chunk_pairs: int) -> Tuple[np.ndarray, np.ndarray]:
    """For each box the prediction of maximum IoU (ties: lowest index) and
    that IoU, in row blocks of at most ``chunk_pairs`` pairs."""
    step = max(1, chunk_pairs // max(1, len(preds)))
    best = np.zeros(len(boxes), np.int64)
    best_iou = np.zeros(len(boxes))
    for r0 in range(0, len(boxes), step):
        iou = box_iou(boxes[r0:r0 + step], preds)
        best[r0:r0 + step] = np.argmax(iou, 1)
        best_iou[r0:r0 + step] = iou[np.arange(len(iou)), best[r0:r0 + step]]
    return best, best_iou


def _log_skip(message: str) -> None:
    from mmengine.logging import print_log
    print_log(message, logger='current', level=logging.WARNING)


def _clean_predictions(pred_boxes, pred_scores, num_classes, height, width,
                       stats) -> Tuple[np.ndarray, np.ndarray]:
    """Validate shapes; clip boxes to the image; drop non-finite, inverted
    or empty boxes; set non-finite scores to 0. Counts go into ``stats``."""
    boxes = _to_numpy(pred_boxes, 'pred_boxes').astype(np.float64)
    scores = _to_numpy(pred_scores, 'pred_scores').astype(np.float64)
    if boxes.size == 0 and scores.size == 0:
        if num_classes is None:
            num_classes = scores.shape[1] if scores.ndim == 2 else 0
        return np.zeros((0, 4)), np.zeros((0, num_classes))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError('pred_boxes must have shape (N, 4), got '
                         f'{tuple(boxes.shape)}')
    if scores.ndim != 2:
        raise ValueError(
            'pred_scores must have shape (N, num_classes) (per-class sigmoid '
            f'scores), got {tuple(scores.shape)}; build it from (label, '
            'score) pairs with pseudo_boxes.scores_from_labels')
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f'pred_boxes has {boxes.shape[0]} rows but '
                         f'pred_scores has {scores.shape[0]}')
    if num_classes is not None and scores.shape[1] != num_classes:
        raise ValueError(f'pred_scores has {scores.shape[1]} columns, '
                         f'expected num_classes={num_classes}')
    bad_scores = ~np.isfinite(scores)
    stats['n_nan_scores'] = int(bad_scores.sum())
    scores = np.where(bad_scores, 0.0, scores)
    finite = np.all(np.isfinite(boxes), 1)
    clipped = np.clip(boxes, 0, np.array([width, height, width, height],
                                         np.float64))
    stats['n_clipped_boxes'] = int(
        np.sum(finite & np.any(clipped != boxes, 1)))
    valid = finite & (clipped[:, 2] > clipped[:, 0]) & (
        clipped[:, 3] > clipped[:, 1])
    stats['n_invalid_boxes'] = int((~valid).sum())
    return clipped[valid], scores[valid]


def _leftover_result(refs, labels_of, leftover_score, stats) -> M4BResult:
    """Every reference as a leftover box (line 37 only)."""
    return M4BResult(
        boxes=refs.astype(np.float32),
        labels=labels_of.astype(np.int64),
        scores=np.full(len(refs), leftover_score, np.float32),
        cases=np.full(len(refs), CASE_LEFTOVER, np.int64),
        stats=stats)


def _pair_cases(refs, labels_of, boxes, scores, chunk_pairs, stats, *,
                split_score_thr, split_iou_thr, touch_ratio, split_bonus,
                add_score_thr, add_iou_thr, score_cap, min_overlap_iou):
    """Cases A (lines 9-18) and C (lines 28-35) of Algorithm 1 over every
    (reference, prediction) pair, in blocks of references of at most
    ``chunk_pairs`` pairs: the (K, N) and (K, N, 4) arrays are never whole.

    Returns:
        tuple: case A and case C shortlist entries, each ``(boxes (n, 4),
        scores (n,), labels (n,))`` in ``np.nonzero`` order over (reference,
        prediction); ``leftover`` (K,) bool (not split); ``matched`` (K,)
        bool (a prediction with score > ``split_score_thr`` and IoU >
        ``split_iou_thr``, for ``merge_unmatched_only``).
    """
    K, N = len(refs), len(boxes)
    step = max(1, chunk_pairs // max(1, N))
    split_out = ([], [], [])
    add_out = ([], [], [])
    leftover = np.ones(K, bool)
    matched = np.zeros(K, bool)
    for r0 in range(0, K, step):
        block = slice(r0, min(K, r0 + step))
        b_refs, b_labels = refs[block], labels_of[block]
        stats['max_pair_block'] = max(stats['max_pair_block'],
                                      len(b_refs) * N)
        # (k, N) class-j score of every prediction for every reference
        ref_scores = scores[:, b_labels].T if N else np.zeros((len(b_refs),
                                                                0))
        ious = box_iou(b_refs, boxes)
        touch, crops = touch_and_crop(b_refs, boxes, touch_ratio)
        overlaps = ious > min_overlap_iou

        split = (ref_scores > split_score_thr) & (ious <= split_iou_thr) & \
            overlaps & touch
        r, k = np.nonzero(split)
        split_out[0].append(crops[r, k])
        split_out[1].append(np.minimum(score_cap,
                                       ref_scores[r, k] + split_bonus))
        split_out[2].append(b_labels[r])
        leftover[block] = ~split.any(1)
        matched[block] = ((ref_scores > split_score_thr) &
                          (ious > split_iou_thr)).any(1)

        good = ref_scores > add_score_thr
        keep_ref = good & (ious >= add_iou_thr)
        crop_ref = good & ~keep_ref & overlaps & touch
        r, k = np.nonzero(keep_ref | crop_ref)
        add_out[0].append(np.where(keep_ref[r, k][:, None], b_refs[r],
                                   crops[r, k]))
        add_out[1].append(ref_scores[r, k])
        add_out[2].append(b_labels[r])

    def cat(parts):
        return (np.concatenate(parts[0]).reshape(-1, 4),
                np.concatenate(parts[1]), np.concatenate(parts[2]))

    return cat(split_out), cat(add_out), leftover, matched


def refine_boxes_from_mask(sem_mask,
                           pred_boxes,
                           pred_scores,
                           *,
                           num_classes: Optional[int] = None,
                           ignore_index: int = 255,
                           background_index: int = 0,
                           split_score_thr: float = 0.4,
                           split_iou_thr: float = 0.6,
                           touch_ratio: float = 0.1,
                           split_bonus: float = 0.1,
                           merge_score_thr: float = 0.1,
                           merge_bonus: float = 0.4,
                           add_score_thr: float = 0.5,
                           add_iou_thr: float = 0.8,
                           nms_iou_thr: float = 0.4,
                           score_cap: float = 0.9,
                           min_overlap_iou: float = 0.0,
                           merge_iou_thr: float = 0.0,
                           merge_unmatched_only: bool = False,
                           class_agnostic_nms: bool = False,
                           leftover_score: float = 1.0,
                           dedupe_leftover: bool = True,
                           max_merge_components: int = 8,
                           max_merge_subsets: int = 1024,
                           merge_adjacency_ratio: float = 0.2,
                           connectivity: int = 8,
                           max_references: int = 2048,
                           max_predictions: int = 8192,
                           chunk_pairs: int = 1 << 18) -> M4BResult:
    """Mask-for-Box matching and refining (BoMBo, Algorithm 1).

    References are the circumscribed rectangles of each class's connected
    components (lines 1-6, :func:`mask_to_reference_boxes`). Then, for every
    reference ``(L, j)`` and prediction ``k`` with class-``j`` score ``c``:

    * A. splitting (lines 9-18): ``c > split_score_thr`` (0.4) and
      ``IoU <= split_iou_thr`` (0.6) and ``touch`` -> shortlist
      ``(crop(L, L_k), min(score_cap, c + split_bonus))``; the reference
      leaves ``leftover``.
    * B. merging (lines 20-27): per class, the unique merged boxes of subsets
      (size > 1) of the leftover references (:func:`merge_subsets`); each is
      matched to the prediction of maximum IoU among *all* predictions; if
      that prediction's class-``j`` score ``> merge_score_thr`` (0.1) ->
      shortlist ``(merged, min(score_cap, c + merge_bonus))`` and its members
      leave ``leftover``.
    * C. adding (lines 29-35): ``c > add_score_thr`` (0.5) and
      ``IoU >= add_iou_thr`` (0.8) -> shortlist ``(L, c)``; else if ``touch``
      -> shortlist ``(crop(L, L_k), c)``.
    * ``refined = NMS(shortlist, nms_iou_thr)`` (line 36), then the leftover
      references are appended (line 37, D).

    Readings of the pseudo-code (line numbers of Algorithm 1):

    * L11, 25, 30: strict ``>`` on scores; L12 ``<=`` and L31 ``>=`` on IoU,
      as printed. ``touch`` uses ``<=`` on the side distance.
    * L14, L34: ``L <- crop(L, L_k)`` is read as a new box; the reference is
      not overwritten for the next predictions (otherwise the second
      instance of a multi-instance reference could never be split off, which
      is the purpose of the splitting case).
    * L12, L33 (``min_overlap_iou``, default 0) and L24 (``merge_iou_thr``,
      default 0): a prediction must overlap the reference (IoU > 0) to split
      or crop it, and the max-IoU prediction of a merged box must overlap
      it. Section 3.2 says
      predicted boxes not overlapping a reference box are removed; without
      it, a box adjacent to a reference can "touch" two of its sides and
      a crop outside the reference would be shortlisted, and a merged box
      overlapping nothing would be matched to prediction 0 by ``argmax``.
      Set both to -1 for the literal pseudo-code. Beyond the paper,
      ``merge_iou_thr=0.5`` asks the merged box to be *matched* in the
      usual detection sense (section 3.2: unmatched references "are merged
      before being re-matched"), and ``merge_unmatched_only=True`` keeps
      out of the merge the references that case A found matched as a whole
      (a prediction of their class with score > ``split_score_thr`` and
      IoU > ``split_iou_thr``), which the text calls "matched" but the
      pseudo-code leaves in ``leftover``. Both are off by default (paper);
      ``docs/mask_for_box.md`` measures them.
    * A crop with zero width/height counts as "not touching" (L13, 33).
    * L18: the reference leaves ``leftover`` once, if at least one
      prediction split it (removal is idempotent).
    * L22: ``B~`` is computed once per class from the leftover of cases A
      (before any merge of that class is accepted) and every merged box in
      it is evaluated; L27 ``leftover -= b~`` removes the *members* of the
      accepted merged box (the merged box itself is never in leftover).
    * L24: the printed ``argmax over b_k in B~`` and ``c_k^j`` (L25) are read
      as ``k* = argmax_{k in B^} IoU(L, L_k)`` over all predictions (any
      class) and the test is on ``c_{k*}^j``; ties go to the lowest index.
    * L29: case C iterates over *all* references, including split, merged
      and leftover ones, and does not change ``leftover``.
    * L36: NMS is class-aware (``class_agnostic_nms=False``): boxes of
      different classes may overlap (a rider on a horse) and each label is
      certain here, so one never suppresses the other. Ties in score go to
      the earlier shortlist entry (A before B before C; references in order,
      predictions in order).
    * L37: leftover boxes are appended with ``leftover_score`` (the mask
      gives no confidence; 1.0) without NMS; with ``dedupe_leftover`` a
      leftover box equal (same label and coordinates) to a kept refined box
      is not appended twice (e.g. a reference also kept by case C).

    Bounded cost: the power set of line 22 is exact for up to
    ``max_merge_components`` leftover boxes of one class; beyond, the bounded
    strategy of :func:`merge_subsets` is used (``stats['merge_bounded']``,
    ``stats['merge_truncated']``). The (references x predictions) arrays of
    cases A and C are built ``chunk_pairs`` pairs at a time
    (``stats['max_pair_block']``: the largest block) and the NMS runs per
    class without a shortlist-wide IoU matrix (:func:`class_aware_nms`), so
    memory is linear in the predictions and the shortlist; none of this
    changes a result. Caps, which do (both far above real masks and dense
    teacher outputs: VOC/COCO masks have tens of components, the dense
    teacher keeps at most 1,000 boxes per FPN level): a mask with more than
    ``max_references`` connected components (noise, a broken annotation) is
    not refined: its circumscribed rectangles are returned as leftovers,
    ``stats['skipped_too_many_references'] = True``, with a logged warning;
    more than ``max_predictions`` predictions keeps the ``max_predictions``
    of highest best-class score (in their order),
    ``stats['n_predictions_over_cap']`` counts the others, also logged.

    Bad input: an empty mask, a mask of only ignore/background or no
    predictions give defined results (references become leftovers); NaN/inf
    scores count as 0 (``stats['n_nan_scores']``); predicted boxes are
    clipped to the image (``stats['n_clipped_boxes']``) and non-finite,
    inverted or empty ones are dropped (``stats['n_invalid_boxes']``);
    wrong shapes or mask classes beyond ``num_classes`` raise ValueError.

    Args:
        sem_mask (np.ndarray | Tensor): (H, W) or (1, H, W) semantic mask,
            ``background_index`` background, ``ignore_index`` ignored,
            class ``j`` = detection label ``j - 1`` (with background 0).
        pred_boxes (np.ndarray | Tensor): (N, 4) xyxy predicted boxes in the
            mask's pixel frame.
        pred_scores (np.ndarray | Tensor): (N, num_classes) per-class sigmoid
            scores (column = detection label).
        num_classes (int, optional): checked against ``pred_scores``;
            needed only to validate an empty prediction set.
        split_score_thr, split_iou_thr, touch_ratio, split_bonus,
        merge_score_thr, merge_bonus, add_score_thr, add_iou_thr, nms_iou_thr,
        score_cap: the paper's 0.4, 0.6, 0.1, 0.1, 0.1, 0.4, 0.5, 0.8, 0.4,
            0.9.
        min_overlap_iou (float): see above. Defaults to 0.
        merge_iou_thr (float): see above. Defaults to 0.
        merge_unmatched_only (bool): see above. Defaults to False.
        class_agnostic_nms (bool): Defaults to False.
        leftover_score (float): score of leftover boxes. Defaults to 1.0.
        dedupe_leftover (bool): Defaults to True.
        max_merge_components (int): exact power set up to this many leftover
            boxes per class. Defaults to 8.
        max_merge_subsets (int): cap of the bounded strategy. Defaults to
            1024.
        merge_adjacency_ratio (float): box growth defining adjacency in the
            bounded strategy. Defaults to 0.2.
        connectivity (int): 4 or 8. Defaults to 8.
        max_references (int): components beyond which the image is not
            refined (see above). Defaults to 2048.
        max_predictions (int): predictions kept at most, by best score.
            Defaults to 8192.
        chunk_pairs (int): reference-prediction pairs per block. Defaults
            to 2**18.

    Returns:
        M4BResult: refined boxes (shortlist after NMS, by score) followed by
        the leftover references.
    """
    stats = {
        'n_references': 0, 'n_predictions': 0, 'n_nan_scores': 0,
        'n_clipped_boxes': 0, 'n_invalid_boxes': 0, 'n_merge_subsets': 0,
        'merge_bounded': False, 'merge_truncated': False, 'n_shortlist': 0,
        'n_leftover_deduped': 0, 'n_predictions_over_cap': 0,
        'skipped_too_many_references': False, 'max_pair_block': 0
    }
    mask = _check_mask(sem_mask, ignore_index)
    height, width = mask.shape
    boxes, scores = _clean_predictions(pred_boxes, pred_scores, num_classes,
                                       height, width, stats)
    stats['n_predictions'] = len(boxes)
    refs, ref_cls = _reference_boxes(mask, ignore_index, background_index,
                                     connectivity)
    stats['n_references'] = len(refs)
    if len(refs) == 0:
        return _empty_result(stats)
    labels_of = ref_cls - 1 if background_index == 0 else ref_cls
    n_cls = scores.shape[1] if num_classes is None else num_classes
    if n_cls > 0 and (
            labels_of.max() >= n_cls or labels_of.min() < 0):
        raise ValueError(
            f'sem_mask holds classes {np.unique(ref_cls)} but pred_scores has '
            f'{n_cls} columns (detection labels 0..{n_cls - 1})')

    if len(refs) > max_references:
        stats['skipped_too_many_references'] = True
        _log_skip(f'Mask-for-Box: {len(refs)} connected components > '
                  f'max_references={max_references}; the mask boxes are used '
                  'unrefined for this image')
        return _leftover_result(refs, labels_of, leftover_score, stats)
    if len(boxes) > max_predictions:
        top = np.argsort(-scores.max(1), kind='stable')[:max_predictions]
        top = np.sort(top)
        stats['n_predictions_over_cap'] = len(boxes) - max_predictions
        _log_skip(f'Mask-for-Box: {len(boxes)} predictions > max_predictions='
                  f'{max_predictions}; the {stats["n_predictions_over_cap"]} '
                  'of lowest score are dropped')
        boxes, scores = boxes[top], scores[top]

    sl_boxes, sl_scores, sl_labels, sl_cases = [], [], [], []
    # Cases A (lines 9-18) and C (lines 28-35) look at every (reference,
    # prediction) pair: done in row blocks, in order (np.nonzero order).
    split_parts, add_parts, leftover, matched = _pair_cases(
        refs, labels_of, boxes, scores, chunk_pairs, stats,
        split_score_thr=split_score_thr, split_iou_thr=split_iou_thr,
        touch_ratio=touch_ratio, split_bonus=split_bonus,
        add_score_thr=add_score_thr, add_iou_thr=add_iou_thr,
        score_cap=score_cap, min_overlap_iou=min_overlap_iou)

    # A. Splitting case (lines 9-18).
    sl_boxes.append(split_parts[0])
    sl_scores.append(split_parts[1])
    sl_labels.append(split_parts[2])
    sl_cases.append(np.full(len(split_parts[2]), CASE_SPLIT))

    # B. Merging case (lines 19-27).
    candidates = leftover.copy()
    if merge_unmatched_only:  # not matched as a whole in case A
        candidates &= ~matched
    for j in np.unique(ref_cls[candidates]):
        idx = np.nonzero(candidates & (ref_cls == j))[0]
        subsets, info = merge_subsets(refs[idx], max_merge_components,
                                      max_merge_subsets, merge_adjacency_ratio)
        stats['n_merge_subsets'] += len(subsets)
        stats['merge_bounded'] |= info['bounded']
        stats['merge_truncated'] |= info['truncated']
        if len(subsets) == 0 or len(boxes) == 0:
            continue
        merged, members = merged_boxes(refs[idx], subsets)
        best, best_iou = _best_match(merged, boxes, chunk_pairs)
        label = labels_of[idx[0]]
        best_score = scores[best, label]
        ok = (best_score > merge_score_thr) & (best_iou > merge_iou_thr)
        sl_boxes.append(merged[ok])
        sl_scores.append(np.minimum(score_cap, best_score[ok] + merge_bonus))
        sl_labels.append(np.full(int(ok.sum()), label))
        sl_cases.append(np.full(int(ok.sum()), CASE_MERGE))
        leftover[idx[members[ok].any(0)]] = False

    # C. Adding well-predicted boxes (lines 28-35).
    sl_boxes.append(add_parts[0])
    sl_scores.append(add_parts[1])
    sl_labels.append(add_parts[2])
    sl_cases.append(np.full(len(add_parts[2]), CASE_ADD))

    sl_boxes = np.concatenate(sl_boxes).reshape(-1, 4)
    sl_scores = np.concatenate(sl_scores).astype(np.float64)
    sl_labels = np.concatenate(sl_labels).astype(np.int64)
    sl_cases = np.concatenate(sl_cases).astype(np.int64)
    stats['n_shortlist'] = len(sl_boxes)

    # Line 36: NMS over the shortlist.
    nms_labels = np.zeros_like(sl_labels) if class_agnostic_nms else sl_labels
    keep = class_aware_nms(sl_boxes, sl_scores, nms_labels, nms_iou_thr)
    out_boxes = sl_boxes[keep]
    out_labels = sl_labels[keep]

    # Line 37 (D): leftover references appended.
    lo = np.nonzero(leftover)[0]
    if dedupe_leftover and len(lo) and len(keep):
        # same label and coordinates as a kept box (hashing, not an
        # (L, M, 4) comparison; 0.0 == -0.0 and hash alike, as with ==)
        kept_rows = set(map(tuple, np.column_stack(
            [out_labels, out_boxes]).tolist()))
        dup = np.array([row in kept_rows for row in map(tuple, np.column_stack(
            [labels_of[lo], refs[lo]]).tolist())], bool)
        stats['n_leftover_deduped'] = int(dup.sum())
        lo = lo[~dup]
    return M4BResult(
        boxes=np.concatenate([out_boxes, refs[lo]]).astype(np.float32),
        labels=np.concatenate([out_labels, labels_of[lo]]).astype(np.int64),
        scores=np.concatenate(
            [sl_scores[keep],
             np.full(len(lo), leftover_score)]).astype(np.float32),
        cases=np.concatenate([sl_cases[keep],
                              np.full(len(lo), CASE_LEFTOVER)]).astype(
                                  np.int64),
        stats=stats)
