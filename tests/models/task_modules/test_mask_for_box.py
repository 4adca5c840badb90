"""Tests of Mask-for-Box (BoMBo Algorithm 1): hand-built cases with expected
boxes worked out by hand, bad inputs, and equivalence with the independent
Python-loop reference of ``benchmarks/m4b_reference.py`` on random cases."""
import sys
from pathlib import Path

import numpy as np
import pytest

from bombo.models.task_modules.mask_for_box import (
    CASE_ADD, CASE_LEFTOVER, CASE_MERGE, CASE_SPLIT, mask_to_reference_boxes,
    merge_subsets, merged_boxes, refine_boxes_from_mask, touch_and_crop)

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'benchmarks'))
from m4b_reference import reference_refine  # noqa: E402


def _scores(*rows):
    return np.array(rows, dtype=np.float64)


def _assert_result(res, boxes, labels, scores, cases):
    np.testing.assert_allclose(res.boxes, np.array(boxes, np.float32).reshape(
        -1, 4), atol=1e-5)
    assert res.labels.tolist() == labels
    np.testing.assert_allclose(res.scores, scores, atol=1e-6)
    assert res.cases.tolist() == cases


# ----------------------------------------------------------------- pieces
def test_reference_boxes_convention_and_ignore():
    mask = np.zeros((20, 30), np.uint8)
    mask[2:5, 3:7] = 1  # rows 2..4, cols 3..6 -> [3, 2, 7, 5]
    mask[10:12, 20:30] = 2  # -> [20, 10, 30, 12]
    mask[2:5, 7] = 255  # ignore pixels are not class 1
    mask[2:5, 8:10] = 1  # separate component -> [8, 2, 10, 5]
    mask[15, 0] = 1  # diagonal neighbours: one component with 8-conn.
    mask[16, 1] = 1
    boxes, cls = mask_to_reference_boxes(mask)
    assert cls.tolist() == [1, 1, 1, 2]
    np.testing.assert_array_equal(
        boxes, [[3, 2, 7, 5], [8, 2, 10, 5], [0, 15, 2, 17],
                [20, 10, 30, 12]])
    boxes4, _ = mask_to_reference_boxes(mask, connectivity=4)
    assert len(boxes4) == 5


def test_touch_and_crop():
    ref = np.array([[10., 10., 50., 40.]])  # w 40 (tol 4), h 30 (tol 3)
    preds = np.array([[11., 9., 29., 41.],   # left, top, bottom touch
                      [20., 20., 30., 30.],  # no side touches
                      [10., 40., 50., 70.],  # left, right touch (adjacent)
                      [13., 13., 47., 37.]])  # tol is inclusive: all 4 touch
    touch, crops = touch_and_crop(ref, preds, 0.1)
    assert touch.tolist() == [[True, False, True, True]]
    np.testing.assert_array_equal(crops[0, 0], [10, 10, 29, 40])
    np.testing.assert_array_equal(crops[0, 2], [10, 40, 50, 70])
    np.testing.assert_array_equal(crops[0, 3], [10, 10, 50, 40])


def test_merge_subsets_exact_and_bounded():
    boxes = np.array([[0, 0, 10, 10], [12, 0, 22, 10], [24, 0, 34, 10],
                      [60, 0, 70, 10]], float)
    sets, info = merge_subsets(boxes, max_merge_components=4)
    codes = [int(sum(1 << i for i in np.nonzero(s)[0])) for s in sets]
    assert codes == [3, 5, 6, 9, 10, 12, 7, 11, 13, 14, 15]
    assert not info['bounded']
    # Bounded: boxes grown by 0.2 * 10 + 1 = 3 px; 0-1 and 1-2 adjacent.
    sets, info = merge_subsets(boxes, max_merge_components=2)
    codes = [int(sum(1 << i for i in np.nonzero(s)[0])) for s in sets]
    assert codes == [3, 6, 7] and info == {'bounded': True,
                                           'truncated': False}
    sets, info = merge_subsets(boxes, max_merge_components=2,
                               max_merge_subsets=2)
    codes = [int(sum(1 << i for i in np.nonzero(s)[0])) for s in sets]
    assert codes == [3, 6] and info['truncated']


def test_merged_boxes_unique_and_members():
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [5, 0, 15, 10]],
                     float)
    sets, _ = merge_subsets(boxes)
    merged, members = merged_boxes(boxes, sets)
    np.testing.assert_array_equal(
        merged, [[0, 0, 30, 10], [0, 0, 15, 10], [5, 0, 30, 10]])
    assert members.tolist() == [[True, True, True], [True, False, True],
                                [False, True, True]]


# ------------------------------------------------------- the four cases
def test_split_two_touching_instances():
    # Two class-1 instances [10,10,30,40] and [30,10,50,40] touch: one
    # component, reference [10,10,50,40].
    mask = np.zeros((60, 60), np.uint8)
    mask[10:40, 10:50] = 1
    boxes = np.array([[11, 9, 29, 41], [31, 10, 49, 40]], float)
    scores = _scores([0.8, 0, 0], [0.7, 0, 0])
    res = refine_boxes_from_mask(mask, boxes, scores)
    # A: IoU 540/1236 and 540/1200 <= 0.6, touching -> crops with
    # min(0.9, c + 0.1); C: the same crops with c, removed by NMS; the
    # reference was split, so no leftover.
    _assert_result(res, [[10, 10, 29, 40], [31, 10, 50, 40]], [0, 0],
                   [0.9, 0.8], [CASE_SPLIT, CASE_SPLIT])
    assert res.stats['n_shortlist'] == 4


def test_merge_fragmented_instance():
    # A class-1 object cut in two by a class-2 bar.
    mask = np.zeros((50, 50), np.uint8)
    mask[10:40, 10:20] = 1
    mask[10:40, 30:40] = 1
    mask[10:40, 20:30] = 2
    boxes = np.array([[10, 10, 40, 40], [20, 10, 30, 40]], float)
    scores = _scores([0.3, 0, 0], [0, 0.9, 0])
    res = refine_boxes_from_mask(mask, boxes, scores)
    # B: merge([10,10,20,40], [30,10,40,40]) = [10,10,40,40], best IoU
    # prediction 0 with class-1 score 0.3 > 0.1 -> min(0.9, 0.7).
    # C: the bar's reference is kept with 0.9 (IoU 1); it is also a leftover
    # (never split/merged) but equal to the kept box, so not appended twice.
    _assert_result(res, [[20, 10, 30, 40], [10, 10, 40, 40]], [1, 0],
                   [0.9, 0.7], [CASE_ADD, CASE_MERGE])
    res = refine_boxes_from_mask(mask, boxes, scores, dedupe_leftover=False)
    _assert_result(res, [[20, 10, 30, 40], [10, 10, 40, 40],
                         [20, 10, 30, 40]], [1, 0, 1], [0.9, 0.7, 1.0],
                   [CASE_ADD, CASE_MERGE, CASE_LEFTOVER])


def test_merge_uses_argmax_over_all_predictions():
    # Line 24: the max-IoU prediction (class 3, IoU 1) decides, not the
    # lower-IoU class-1 prediction: no merge, both fragments are leftovers.
    mask = np.zeros((50, 50), np.uint8)
    mask[10:40, 10:20] = 1
    mask[10:40, 30:40] = 1
    boxes = np.array([[10, 10, 40, 40], [12, 10, 38, 40]], float)
    scores = _scores([0, 0, 0.9], [0.3, 0, 0])
    res = refine_boxes_from_mask(mask, boxes, scores)
    _assert_result(res, [[10, 10, 20, 40], [30, 10, 40, 40]], [0, 0],
                   [1, 1], [CASE_LEFTOVER, CASE_LEFTOVER])


def test_merge_of_separate_instances_and_options_beyond_the_paper():
    # Two well-predicted class-1 instances 5 px apart.
    mask = np.zeros((40, 60), np.uint8)
    mask[5:25, 5:25] = 1
    mask[5:25, 30:50] = 1
    boxes = np.array([[5, 5, 25, 25], [30, 5, 50, 25]], float)
    scores = _scores([0.8, 0, 0], [0.7, 0, 0])
    # Paper: both stay leftover after A (IoU 1 > 0.6), their merge
    # [5,5,50,25] has max IoU 400/900 with prediction 0 (tie, lowest index),
    # score 0.8 > 0.1 -> 0.9; it suppresses both case-C boxes (IoU 0.44).
    res = refine_boxes_from_mask(mask, boxes, scores)
    _assert_result(res, [[5, 5, 50, 25]], [0], [0.9], [CASE_MERGE])
    expected = ([[5, 5, 25, 25], [30, 5, 50, 25]], [0, 0], [0.8, 0.7],
                [CASE_ADD, CASE_ADD])
    # The merged box is not "matched" at IoU 0.5 ...
    _assert_result(refine_boxes_from_mask(mask, boxes, scores,
                                          merge_iou_thr=0.5), *expected)
    # ... and both references were matched as a whole in case A.
    _assert_result(refine_boxes_from_mask(mask, boxes, scores,
                                          merge_unmatched_only=True),
                   *expected)


def test_keep_well_predicted_drop_other_class_keep_leftover():
    mask = np.zeros((64, 64), np.uint8)
    mask[5:25, 5:25] = 1  # reference [5,5,25,25]
    mask[40:60, 40:60] = 3  # reference [40,40,60,60], no prediction
    boxes = np.array([[5, 5, 24, 25],     # IoU 0.95 with the class-1 ref
                      [30, 5, 50, 25],    # class 2: not in the mask
                      [40, 5, 60, 25]],   # class 1, overlaps no class-1 ref
                     float)
    scores = _scores([0.85, 0, 0], [0, 0.95, 0], [0.9, 0, 0])
    res = refine_boxes_from_mask(mask, boxes, scores)
    _assert_result(res, [[5, 5, 25, 25], [40, 40, 60, 60]], [0, 2],
                   [0.85, 1.0], [CASE_ADD, CASE_LEFTOVER])
    assert res.stats['n_leftover_deduped'] == 1


def test_add_case_crops_between_split_and_keep_iou():
    # IoU in (0.6, 0.8): not split (line 12), cropped by case C (line 33).
    mask = np.zeros((64, 64), np.uint8)
    mask[5:25, 5:25] = 1
    boxes = np.array([[-10, 5, 24, 25]], float)  # clipped to [0,5,24,25]
    res = refine_boxes_from_mask(mask, boxes, _scores([0.85, 0, 0]))
    # IoU 380/500 = 0.76; top/right/bottom touch, left from the prediction.
    _assert_result(res, [[0, 5, 25, 25], [5, 5, 25, 25]], [0, 0],
                   [0.85, 1.0], [CASE_ADD, CASE_LEFTOVER])
    assert res.stats['n_clipped_boxes'] == 1


def test_overlap_requirement_versus_literal_pseudo_code():
    # A prediction adjacent to the reference "touches" its left and right
    # sides with IoU 0.
    mask = np.zeros((80, 60), np.uint8)
    mask[10:40, 10:50] = 1
    boxes = np.array([[10, 40, 50, 70]], float)
    scores = _scores([0.8, 0, 0])
    res = refine_boxes_from_mask(mask, boxes, scores)
    _assert_result(res, [[10, 10, 50, 40]], [0], [1.0], [CASE_LEFTOVER])
    res = refine_boxes_from_mask(mask, boxes, scores, min_overlap_iou=-1)
    _assert_result(res, [[10, 40, 50, 70]], [0], [0.9], [CASE_SPLIT])


def test_nms_is_class_aware():
    mask = np.zeros((50, 50), np.uint8)
    mask[10:40, 10:40] = 1
    mask[12:38, 20:30] = 2  # a hole in class 1, which stays one component
    boxes = np.array([[10, 10, 40, 40], [20, 12, 30, 38]], float)
    res = refine_boxes_from_mask(mask, boxes, _scores([0.3, 0, 0],
                                                      [0, 0.9, 0]))
    # Class 1: score 0.3 neither splits nor adds -> leftover. Class 2: kept
    # by case C with 0.9 (IoU 1); its leftover copy is deduplicated.
    _assert_result(res, [[20, 12, 30, 38], [10, 10, 40, 40]], [1, 0],
                   [0.9, 1.0], [CASE_ADD, CASE_LEFTOVER])
    # Both kept by case C; they overlap with IoU 260/900 = 0.29. A
    # class-aware NMS at 0.2 keeps both, a class-agnostic one suppresses
    # the class-1 box, whose reference then comes back as a leftover.
    scores = _scores([0.6, 0, 0], [0, 0.9, 0])
    res = refine_boxes_from_mask(mask, boxes, scores, nms_iou_thr=0.2)
    _assert_result(res, [[20, 12, 30, 38], [10, 10, 40, 40]], [1, 0],
                   [0.9, 0.6], [CASE_ADD, CASE_ADD])
    res = refine_boxes_from_mask(mask, boxes, scores, nms_iou_thr=0.2,
                                 class_agnostic_nms=True)
    _assert_result(res, [[20, 12, 30, 38], [10, 10, 40, 40]], [1, 0],
                   [0.9, 1.0], [CASE_ADD, CASE_LEFTOVER])


# ------------------------------------------------------------ bad input
def test_bad_inputs_defined_results():
    no_boxes, no_scores = np.zeros((0, 4)), np.zeros((0, 3))
    assert len(refine_boxes_from_mask(np.zeros((0, 0)), no_boxes,
                                      no_scores)) == 0
    boxes = np.array([[0, 0, 10, 10]], float)
    res = refine_boxes_from_mask(np.full((20, 20), 255), boxes,
                                 _scores([0.9, 0, 0]))
    assert len(res) == 0 and res.boxes.shape == (0, 4)
    mask = np.zeros((20, 20), np.int64)
    mask[2:6, 3:9] = 2
    res = refine_boxes_from_mask(mask, no_boxes, no_scores)
    _assert_result(res, [[3, 2, 9, 6]], [1], [1.0], [CASE_LEFTOVER])
    # NaN scores count as 0; NaN / outside boxes are dropped.
    res = refine_boxes_from_mask(
        mask, np.array([[3, 2, 9, 6], [np.nan, 0, 5, 5], [30, 30, 40, 40]]),
        _scores([0, np.nan, 0], [0, 0.9, 0], [0, 0.9, 0]))
    _assert_result(res, [[3, 2, 9, 6]], [1], [1.0], [CASE_LEFTOVER])
    assert res.stats['n_nan_scores'] == 1
    assert res.stats['n_invalid_boxes'] == 2
    # Torch tensors and (1, H, W) masks are accepted.
    torch = pytest.importorskip('torch')
    res = refine_boxes_from_mask(
        torch.from_numpy(mask)[None], torch.tensor([[3., 2., 9., 6.]]),
        torch.tensor([[0., 0.7, 0.]]))
    _assert_result(res, [[3, 2, 9, 6]], [1], [0.7], [CASE_ADD])


@pytest.mark.parametrize('boxes,scores,mask,match', [
    (np.zeros((2, 5)), np.zeros((2, 3)), np.zeros((5, 5)), r'\(N, 4\)'),
    (np.zeros((2, 4)), np.zeros((2, )), np.zeros((5, 5)), 'per-class'),
    (np.zeros((2, 4)), np.zeros((3, 3)), np.zeros((5, 5)), 'rows'),
    (np.zeros((2, 4)), np.zeros((2, 3)), np.zeros((2, 5, 5)), 'shape'),
    (np.zeros((2, 4)), np.zeros((2, 3)), np.full((5, 5), 4), 'classes'),
    (np.zeros((2, 4)), np.zeros((2, 3)), np.full((5, 5), -3), 'negative'),
    (np.zeros((2, 4)), np.zeros((2, 3)), np.full((5, 5), 0.5), 'integer'),
])
def test_bad_shapes_raise_value_error(boxes, scores, mask, match):
    with pytest.raises(ValueError, match=match):
        refine_boxes_from_mask(mask, boxes, scores)


# ------------------------------------------- equivalence with the reference
def random_case(rng, size=64, n_obj=6, n_cls=3, n_pred=12):
    mask = np.zeros((size, size), np.uint8)
    inst = []
    for _ in range(rng.integers(1, n_obj + 1)):
        c = int(rng.integers(1, n_cls + 1))
        x1, y1 = rng.integers(0, size - 8, 2)
        w, h = rng.integers(4, 24, 2)
        x2, y2 = min(size, x1 + w), min(size, y1 + h)
        mask[y1:y2, x1:x2] = c
        if rng.random() < 0.3:  # 255 border, sometimes cutting the object
            mask[y1:y2, (x1 + x2) // 2] = 255
        inst.append((x1, y1, x2, y2))
    if rng.random() < 0.3:  # background stripes fragment components
        mask[:, rng.integers(0, size)] = 0
    boxes, scores = [], []
    for _ in range(n_pred):
        if inst and rng.random() < 0.7:
            b = np.array(inst[rng.integers(len(inst))], float)
            b += rng.normal(0, 2.5, 4)
        else:
            xy = rng.uniform(-5, size, 2)
            b = np.concatenate([xy, xy + rng.uniform(2, 30, 2)])
        boxes.append(b)
        s = rng.random(n_cls) * (rng.random(n_cls) < 0.5)
        scores.append(s)
    return mask, np.array(boxes), np.array(scores)


def _compare(mask, boxes, scores, **kw):
    res = refine_boxes_from_mask(mask, boxes, scores, **kw)
    rb, rl, rs, rc = reference_refine(mask, boxes, scores, **kw)
    np.testing.assert_allclose(res.boxes, np.array(rb, float).reshape(-1, 4),
                               atol=1e-4)
    assert res.labels.tolist() == rl
    np.testing.assert_allclose(res.scores, rs, atol=1e-6)
    assert res.cases.tolist() == rc
    return res


@pytest.mark.parametrize('seed', range(40))
def test_equivalence_with_reference(seed):
    rng = np.random.default_rng(seed)
    mask, boxes, scores = random_case(rng)
    kw = {}
    if seed % 4 == 1:  # exercise the bounded merge and its cap
        kw = dict(max_merge_components=2, max_merge_subsets=5)
    if seed % 4 == 2:
        kw = dict(min_overlap_iou=-1, class_agnostic_nms=True)
    if seed % 4 == 3:
        kw = dict(dedupe_leftover=False, connectivity=4, merge_iou_thr=0.3,
                  merge_unmatched_only=True)
    _compare(mask, boxes, scores, **kw)


def test_equivalence_many_components_bounded():
    rng = np.random.default_rng(123)
    mask = np.zeros((96, 96), np.uint8)
    for i in range(6):
        for j in range(5):
            mask[i * 16 + 2:i * 16 + 12, j * 19 + 2:j * 19 + 15] = 1
    inst = np.array([[j * 19 + 2, i * 16 + 2, j * 19 + 15, i * 16 + 12]
                     for i in range(6) for j in range(5)], float)
    boxes = np.concatenate([inst[rng.integers(0, 30, 20)] +
                            rng.normal(0, 6, (20, 4)),
                            rng.uniform(0, 60, (10, 2)) @ np.array(
                                [[1, 0, 1, 0], [0, 1, 0, 1]]) +
                            np.array([0, 0, 30, 20])])
    scores = rng.random((30, 2))
    res = _compare(mask, boxes, scores, max_merge_subsets=40)
    assert res.stats['merge_bounded'] and res.stats['merge_truncated']


# ------------------------------------------------------------ bounded cost
from bench_mask_for_box import noise_case  # noqa: E402

from bombo.models.task_modules import mask_for_box as m4b  # noqa: E402


def _same_result(a, b):
    for key in ('boxes', 'labels', 'scores', 'cases'):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


def test_noise_mask_over_the_cap_is_skipped_counted_and_logged(monkeypatch):
    """3,190 components (64x64 noise, 20 classes) and 4,000 predictions:
    the version without bounds took 8 s and 3.4 GB; now beyond
    ``max_references`` the mask boxes are returned unrefined, with a count
    and a warning."""
    logged = []
    monkeypatch.setattr(m4b, '_log_skip', logged.append)
    mask, boxes, scores = noise_case()
    res = refine_boxes_from_mask(mask, boxes, scores)
    refs, classes = mask_to_reference_boxes(mask)
    assert len(refs) == 3190 > 2048
    assert res.stats['skipped_too_many_references']
    assert res.stats['n_shortlist'] == 0 and res.stats['max_pair_block'] == 0
    np.testing.assert_array_equal(res.boxes, refs.astype(np.float32))
    assert res.labels.tolist() == (classes - 1).tolist()
    assert set(res.cases.tolist()) == {CASE_LEFTOVER}
    assert len(logged) == 1 and '3190 connected components' in logged[0]


def test_noise_mask_refined_in_bounded_blocks():
    """Raised cap: the noise mask is refined with no (references x
    predictions) block above ``chunk_pairs`` pairs, and the blocks change
    nothing (same result as one block)."""
    mask, boxes, scores = noise_case(n_pred=600)
    kw = dict(max_references=4096)
    res = refine_boxes_from_mask(mask, boxes, scores, chunk_pairs=1 << 15,
                                 **kw)
    st = res.stats
    assert not st['skipped_too_many_references']
    assert st['n_references'] == 3190 and st['n_predictions'] == 600
    assert 0 < st['max_pair_block'] <= 1 << 15
    assert st['n_shortlist'] > 1000 and st['merge_truncated']
    one_block = refine_boxes_from_mask(mask, boxes, scores,
                                       chunk_pairs=1 << 40, **kw)
    assert one_block.stats['max_pair_block'] == 3190 * 600
    _same_result(res, one_block)


@pytest.mark.parametrize('seed', range(12))
def test_blocks_of_a_few_pairs_change_nothing(seed):
    rng = np.random.default_rng(1000 + seed)
    mask, boxes, scores = random_case(rng)
    kw = [{}, dict(merge_unmatched_only=True, merge_iou_thr=0.3),
          dict(min_overlap_iou=-1, class_agnostic_nms=True)][seed % 3]
    res = refine_boxes_from_mask(mask, boxes, scores, chunk_pairs=5, **kw)
    assert res.stats['max_pair_block'] <= max(5, len(boxes))
    _same_result(res, refine_boxes_from_mask(mask, boxes, scores, **kw))


def test_prediction_cap_keeps_the_top_scores_in_order(monkeypatch):
    logged = []
    monkeypatch.setattr(m4b, '_log_skip', logged.append)
    rng = np.random.default_rng(7)
    mask, boxes, scores = random_case(rng, n_pred=50)
    res = refine_boxes_from_mask(mask, boxes, scores, max_predictions=20)
    assert res.stats['n_predictions_over_cap'] == 30 and len(logged) == 1
    top = np.sort(np.argsort(-scores.max(1), kind='stable')[:20])
    _same_result(res, refine_boxes_from_mask(mask, boxes[top], scores[top]))
    assert refine_boxes_from_mask(
        mask, boxes, scores).stats['n_predictions_over_cap'] == 0


def _full_matrix_nms(boxes, scores, labels, iou_thr):
    """The NMS as it was: one IoU matrix over the whole shortlist."""
    n = len(boxes)
    order = np.lexsort((np.arange(n), -scores))
    over = (m4b.box_iou(boxes, boxes) > iou_thr) & (
        labels[:, None] == labels[None, :])
    suppressed, keep = np.zeros(n, bool), []
    for i in order:
        if not suppressed[i]:
            keep.append(i)
            suppressed |= over[i]
    return np.array(keep, np.int64)


@pytest.mark.parametrize('seed', range(6))
def test_nms_per_class_and_row_wise_equal_the_full_matrix(seed):
    rng = np.random.default_rng(seed)
    n = 400
    xy = rng.uniform(0, 60, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(2, 25, (n, 2))], 1)
    boxes[7::7] = boxes[6:-1:7]  # exact duplicates
    scores = np.round(rng.random(n), 1)  # many ties
    labels = rng.integers(0, 1 + seed, n)
    ref = _full_matrix_nms(boxes, scores, labels, 0.4)
    for dense_limit in (0, 16, 10**6):
        got = m4b.class_aware_nms(boxes, scores, labels, 0.4,
                                  dense_limit=dense_limit)
        np.testing.assert_array_equal(got, ref)


def test_one_class_with_many_components_stays_bounded():
    """2,000+ same-class leftovers: the bounded merge builds no (n, n) @
    (n, n) product and keeps at most max_merge_subsets subsets."""
    mask, boxes, scores = noise_case(150, 1, 300, fill=0.2)
    res = refine_boxes_from_mask(mask, boxes, scores)
    st = res.stats
    assert st['n_references'] > 1500 and not st['skipped_too_many_references']
    assert st['merge_bounded'] and st['n_merge_subsets'] <= 1024


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_half_precision_teacher_outputs(dtype):
    """A teacher run under AMP gives fp16/bf16 boxes and scores (numpy has
    no bf16): they are read as the fp32 values they hold."""
    import torch
    rng = np.random.default_rng(3)
    mask, boxes, scores = random_case(rng)
    b = torch.as_tensor(boxes).to(getattr(torch, dtype))
    s = torch.as_tensor(scores).to(getattr(torch, dtype))
    _same_result(refine_boxes_from_mask(torch.as_tensor(mask), b, s),
                 refine_boxes_from_mask(mask, b.float().numpy(),
                                        s.float().numpy()))
