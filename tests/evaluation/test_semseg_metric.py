import math

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from bombo.evaluation import SemanticIoUMetric
from bombo.evaluation.semseg_metric import confusion_matrix


def sample(pred, gt):
    return dict(pred_sem_seg=dict(sem_seg=torch.tensor(pred)[None]),
                gt_sem_seg=dict(sem_seg=torch.tensor(gt)[None]))


def test_miou_by_hand():
    metric = SemanticIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b'))
    gt = [[0, 0, 1, 1], [2, 2, 255, 255]]
    pred = [[0, 1, 1, 1], [2, 0, 2, 0]]
    metric.process(None, [sample(pred, gt)])
    # a second image where only background is labelled
    metric.process(None, [sample([[0, 0]], [[0, 255]])])
    out = metric.compute_metrics(metric.results)
    # background: tp=2 (img1) + 1 (img2) = 3, gt=3+... compute by hand:
    # img1 valid pixels: (0,0)->0 ok, (0,1) gt0 pred1, (0,2)(0,3) gt1 pred1,
    # (1,0) gt2 pred2, (1,1) gt2 pred0; img2: gt0 pred0
    # bg: tp=2, gt count=3, pred count=3 -> 2/(3+3-2)=0.5
    # a:  tp=2, gt=2, pred=3 -> 2/3 ; b: tp=1, gt=2, pred=1 -> 1/2
    assert out['IoU_background'] == pytest.approx(0.5)
    assert out['IoU_a'] == pytest.approx(2 / 3)
    assert out['IoU_b'] == pytest.approx(0.5)
    assert out['mIoU'] == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert out['aAcc'] == pytest.approx(5 / 7)


def test_absent_class_is_not_averaged_and_bad_labels_raise():
    metric = SemanticIoUMetric(class_names=('bg', 'a', 'b'))
    metric.process(None, [sample([[0, 1]], [[0, 1]])])
    out = metric.compute_metrics(metric.results)
    assert math.isnan(out['IoU_b']) and out['mIoU'] == 1.0
    with pytest.raises(ValueError, match='outside'):
        confusion_matrix(torch.tensor([0]), torch.tensor([7]), 3)


def test_images_without_semantic_gt_are_skipped():
    metric = SemanticIoUMetric(class_names=('bg', 'a'))
    metric.process(None, [dict(pred_sem_seg=dict(sem_seg=torch.zeros(1, 2, 2)))])
    out = metric.compute_metrics(metric.results)
    assert math.isnan(out['mIoU'])
