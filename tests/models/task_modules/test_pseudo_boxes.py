"""Tests of the pseudo-box helpers around Mask-for-Box (BoMBo section 3.2):
score matrices from (label, score) pairs, the three modes of
``MaskForBoxRefiner`` and its registration."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from bombo.models.task_modules.mask_for_box import (CASE_ADD, CASE_LEFTOVER,
                                                    CASE_MASK, CASE_SPLIT,
                                                    CASE_TEACHER)
from bombo.models.task_modules.pseudo_boxes import (
    MaskForBoxRefiner, m4b_pseudo_instances, mask_box_instances,
    score_matrix, scores_from_labels, unbiased_teacher_instances)


def _split_case():
    """The split case of test_mask_for_box, as mmdet-style predictions."""
    sem = torch.zeros((1, 60, 60), dtype=torch.long)
    sem[0, 10:40, 10:50] = 1
    sem[0, 50:55, 0:5] = 3  # a class-3 blob nobody predicts
    pred = InstanceData(
        bboxes=torch.tensor([[11., 9., 29., 41.], [31., 10., 49., 40.],
                             [0., 0., 5., 5.]]),
        scores=torch.tensor([0.8, 0.7, 0.95]),
        labels=torch.tensor([0, 0, 1]))
    return pred, sem


def test_scores_from_labels():
    out = scores_from_labels(torch.tensor([2, 0, 2]),
                             torch.tensor([0.5, 0.25, 0.75]), 3)
    assert torch.equal(out, torch.tensor([[0., 0., 0.5], [0.25, 0., 0.],
                                          [0., 0., 0.75]]))
    assert scores_from_labels(torch.zeros(0, dtype=torch.long),
                              torch.zeros(0), 4).shape == (0, 4)
    with pytest.raises(ValueError, match='labels must lie'):
        scores_from_labels(torch.tensor([3]), torch.tensor([0.5]), 3)
    with pytest.raises(ValueError, match='shape'):
        scores_from_labels(torch.tensor([0, 1]), torch.tensor([0.5]), 3)


def test_score_matrix_accepts_raw_multiclass_scores():
    raw = torch.tensor([[0.1, 0.6, 0.2]])
    pred = InstanceData(bboxes=torch.zeros(1, 4), scores=raw)
    assert score_matrix(pred, 3) is raw
    with pytest.raises(ValueError, match='columns'):
        score_matrix(pred, 4)


def test_m4b_pseudo_instances():
    pred, sem = _split_case()
    out = m4b_pseudo_instances(pred, sem, 3)
    assert torch.allclose(out.bboxes, torch.tensor([[10., 10., 29., 40.],
                                                    [31., 10., 50., 40.],
                                                    [0., 50., 5., 55.]]))
    assert out.labels.tolist() == [0, 0, 2]
    assert torch.allclose(out.scores, torch.tensor([0.9, 0.8, 1.0]))
    assert out.cases.tolist() == [CASE_SPLIT, CASE_SPLIT, CASE_LEFTOVER]
    assert out.bboxes.dtype == torch.float32 and out.labels.dtype == \
        torch.long and out.bboxes.device == sem.device


def test_mask_boxes_and_unbiased_teacher():
    pred, sem = _split_case()
    out = mask_box_instances(sem)
    assert out.bboxes.tolist() == [[10., 10., 50., 40.], [0., 50., 5., 55.]]
    assert out.labels.tolist() == [0, 2]
    assert out.cases.tolist() == [CASE_MASK, CASE_MASK]
    ut = unbiased_teacher_instances(pred, 0.85)
    assert ut.bboxes.tolist() == [[0., 0., 5., 5.]]
    assert ut.labels.tolist() == [1] and ut.cases.tolist() == [CASE_TEACHER]
    raw = InstanceData(bboxes=pred.bboxes,
                       scores=torch.tensor([[0.8, 0.9, 0.], [0.1, 0., 0.],
                                            [float('nan'), 0., 0.72]]))
    ut = unbiased_teacher_instances(raw, 0.7)
    assert ut.labels.tolist() == [0, 1, 2]
    assert torch.allclose(ut.scores, torch.tensor([0.8, 0.9, 0.72]))
    assert torch.equal(ut.bboxes, pred.bboxes[[0, 0, 2]])


def test_refiner_modes_and_registry():
    from mmdet.registry import TASK_UTILS
    pred, sem = _split_case()
    sample = type('S', (), {})()
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    refiner = TASK_UTILS.build(
        dict(type='MaskForBoxRefiner', mode='m4b', num_classes=3,
             split_score_thr=0.75))
    out = refiner([pred], [sample])[0]
    # The second prediction (0.7) no longer splits; case C crops it (0.7).
    assert out.cases.tolist() == [CASE_SPLIT, CASE_ADD, CASE_LEFTOVER]
    assert out.bboxes[1].tolist() == [31., 10., 50., 40.]
    assert np.isclose(out.scores[1].item(), 0.7)
    out = MaskForBoxRefiner('mask_boxes')(None, [sem])[0]
    assert out.cases.tolist() == [CASE_MASK, CASE_MASK]
    out = MaskForBoxRefiner('unbiased_teacher', score_thr=0.5)([pred],
                                                               [sem])[0]
    assert out.labels.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match='mode'):
        MaskForBoxRefiner('boxes')
    with pytest.raises(ValueError, match='num_classes'):
        MaskForBoxRefiner('m4b')
    with pytest.raises(TypeError):
        MaskForBoxRefiner('m4b', num_classes=3, split_thr=0.3)
    with pytest.raises(ValueError, match='one teacher prediction'):
        MaskForBoxRefiner('m4b', num_classes=3)([pred, pred], [sem])


def test_refiner_keeps_add_case_and_nan_scores():
    sem = torch.zeros((1, 32, 32), dtype=torch.long)
    sem[0, 4:20, 4:20] = 2
    pred = InstanceData(bboxes=torch.tensor([[4., 4., 20., 19.]]),
                        scores=torch.tensor([[0., 0.6, float('nan')]]))
    out = MaskForBoxRefiner('m4b', num_classes=3)([pred], [sem])[0]
    assert out.bboxes.tolist() == [[4., 4., 20., 20.]]
    assert out.cases.tolist() == [CASE_ADD]
    assert np.isclose(out.scores.item(), 0.6)
