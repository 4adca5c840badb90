# Copyright (c) bombo contributors.
"""Pseudo-boxes for segmentation-annotated images (BoMBo, section 3.2 and
Table 3): Mask-for-Box refinement of the teacher's predictions, the raw
circumscribed rectangles of the mask ("GT Masks" rows of Tables 1 and 3), and
the unbiased-teacher baseline (Liu et al., ICLR 2021: thresholded teacher
predictions used directly as targets).

The functions take mmengine ``InstanceData`` and tensors and return
``InstanceData(bboxes, labels, scores, cases)`` on the device of their inputs;
:class:`MaskForBoxRefiner` wraps them for configs (``TASK_UTILS``).
"""
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor

from .mask_for_box import (CASE_MASK, CASE_TEACHER, mask_to_reference_boxes,
                           refine_boxes_from_mask)

MODES = ('m4b', 'mask_boxes', 'unbiased_teacher')


def scores_from_labels(labels: Tensor, scores: Tensor,
                       num_classes: int) -> Tensor:
    """Per-class score matrix from one (label, score) pair per box.

    mmdet's ``RetinaHead.predict`` returns, after its multi-class NMS, one
    label and one score per box (a location may appear once per class).
    Algorithm 1 wants the sigmoid score vector of every box: the matrix holds
    the box's score in its label's column and 0 elsewhere, i.e. the classes
    the teacher's NMS dropped count as "not predicted". Pass the raw
    (N, num_classes) scores instead where the detector has them.

    Args:
        labels (Tensor): (N, ) int labels in ``[0, num_classes)``.
        scores (Tensor): (N, ) scores.
        num_classes (int): number of detection classes.

    Returns:
        Tensor: (N, num_classes) scores, same device and dtype as ``scores``.
    """
    labels = torch.as_tensor(labels)
    scores = torch.as_tensor(scores)
    if labels.dim() != 1 or scores.shape != labels.shape:
        raise ValueError('labels and scores must both have shape (N, ), got '
                         f'{tuple(labels.shape)} and {tuple(scores.shape)}')
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'labels must lie in [0, {num_classes}), got '
                         f'{labels.min().item()}..{labels.max().item()}')
    out = scores.new_zeros((len(scores), num_classes))
    out[torch.arange(len(scores), device=scores.device), labels.long()] = \
        scores
    return out


def score_matrix(pred_instances: InstanceData, num_classes: int) -> Tensor:
    """(N, num_classes) scores of ``pred_instances``: its ``scores`` if they
    are already 2-D, else built with :func:`scores_from_labels`."""
    scores = pred_instances.scores
    if scores.dim() == 2:
        if scores.shape[1] != num_classes:
            raise ValueError(f'pred_instances.scores has {scores.shape[1]} '
                             f'columns, expected {num_classes}')
        return scores
    return scores_from_labels(pred_instances.labels, scores, num_classes)


def _instances(boxes, labels, scores, cases, device) -> InstanceData:
    out = InstanceData()
    out.bboxes = torch.as_tensor(
        np.asarray(boxes, np.float32).reshape(-1, 4), device=device)
    out.labels = torch.as_tensor(
        np.asarray(labels, np.int64), device=device)
    out.scores = torch.as_tensor(
        np.asarray(scores, np.float32), device=device)
    out.cases = torch.as_tensor(np.asarray(cases, np.int64), device=device)
    return out


def _sem_seg_of(item) -> Tensor:
    """A (1, H, W) / (H, W) tensor, or a data sample holding gt_sem_seg."""
    if hasattr(item, 'gt_sem_seg'):
        return item.gt_sem_seg.sem_seg
    return item


def m4b_pseudo_instances(pred_instances: InstanceData, sem_seg: Tensor,
                         num_classes: int, **cfg) -> InstanceData:
    """Mask-for-Box refined pseudo-boxes of one image (Algorithm 1).

    Args:
        pred_instances (InstanceData): teacher predictions with ``bboxes``
            (N, 4) in the mask's pixel frame and ``scores`` (N, num_classes)
            or ``scores`` (N, ) + ``labels`` (N, ).
        sem_seg (Tensor): (1, H, W) or (H, W) ground-truth mask (255 ignore,
            0 background, class c = label c - 1).
        num_classes (int): detection classes.
        **cfg: thresholds of :func:`refine_boxes_from_mask`.

    Returns:
        InstanceData: bboxes (M, 4), labels (M, ), scores (M, ), cases (M, )
        (codes of ``mask_for_box.CASE_NAMES``), on ``sem_seg``'s device.
    """
    res = refine_boxes_from_mask(
        sem_seg, pred_instances.bboxes,
        score_matrix(pred_instances, num_classes),
        num_classes=num_classes, **cfg)
    return _instances(res.boxes, res.labels, res.scores, res.cases,
                      sem_seg.device)


def mask_box_instances(sem_seg: Tensor, ignore_index: int = 255,
                       background_index: int = 0,
                       connectivity: int = 8) -> InstanceData:
    """Circumscribed rectangles of the mask's connected components, no
    refinement (the "GT Masks" rows of the paper's Tables 1 and 3);
    scores 1, case ``mask``."""
    boxes, classes = mask_to_reference_boxes(sem_seg, ignore_index,
                                             background_index, connectivity)
    labels = classes - 1 if background_index == 0 else classes
    return _instances(boxes, labels, np.ones(len(boxes)),
                      np.full(len(boxes), CASE_MASK), sem_seg.device)


def unbiased_teacher_instances(pred_instances: InstanceData,
                               score_thr: float = 0.7) -> InstanceData:
    """Teacher predictions above ``score_thr`` used directly as pseudo-boxes
    (Unbiased Teacher, Liu et al. 2021, whose confidence threshold is 0.7;
    the "U-Teacher" rows of the paper's Table 3). With 2-D scores every
    (box, class) pair above the threshold is a pseudo-box; NaN scores never
    pass."""
    bboxes = pred_instances.bboxes
    scores = pred_instances.scores
    if scores.dim() == 2:
        idx, labels = torch.nonzero(scores > score_thr, as_tuple=True)
        keep_scores = scores[idx, labels]
    else:
        idx = torch.nonzero(scores > score_thr, as_tuple=True)[0]
        labels = pred_instances.labels[idx]
        keep_scores = scores[idx]
    out = InstanceData()
    out.bboxes = bboxes[idx].float()
    out.labels = labels.long()
    out.scores = keep_scores.float()
    out.cases = torch.full((len(idx), ), CASE_TEACHER, dtype=torch.long,
                           device=bboxes.device)
    return out


@TASK_UTILS.register_module()
class MaskForBoxRefiner:
    """Builds pseudo-boxes for segmentation-annotated images (BoMBo,
    section 3.2, Algorithm 1; baselines of Tables 1 and 3).

    Args:
        mode (str): ``'m4b'`` (Algorithm 1 on the teacher's predictions and
            the mask), ``'mask_boxes'`` (circumscribed rectangles of the
            mask's connected components) or ``'unbiased_teacher'``
            (predictions with score > ``score_thr``).
        num_classes (int): detection classes (needed by ``'m4b'`` to build
            per-class score vectors).
        score_thr (float): threshold of ``'unbiased_teacher'``. Defaults to
            0.7.
        **thresholds: keyword arguments of ``refine_boxes_from_mask``
            (``ignore_index``, ``split_score_thr``, ...).

    Call with a list of teacher ``InstanceData`` (one per image; ignored by
    ``'mask_boxes'``, may be None there) and a list of (1, H, W) masks or of
    data samples carrying ``gt_sem_seg``; returns a list of
    ``InstanceData(bboxes, labels, scores, cases)``.
    """

    def __init__(self, mode: str = 'm4b', num_classes: Optional[int] = None,
                 score_thr: float = 0.7, **thresholds) -> None:
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if mode == 'm4b' and num_classes is None:
            raise ValueError("mode='m4b' needs num_classes")
        self.mode = mode
        self.num_classes = num_classes
        self.score_thr = score_thr
        self.thresholds = thresholds
        # Fail at build time, not at the first training iteration.
        refine_boxes_from_mask(
            np.zeros((1, 1), np.int64), np.zeros((0, 4)),
            np.zeros((0, num_classes or 1)), **thresholds)

    def __call__(self,
                 pred_instances: Optional[Sequence[InstanceData]],
                 sem_segs: Sequence[Union[Tensor, object]]
                 ) -> List[InstanceData]:
        if self.mode == 'unbiased_teacher':
            return [
                unbiased_teacher_instances(p, self.score_thr)
                for p in pred_instances
            ]
        masks = [_sem_seg_of(s) for s in sem_segs]
        if self.mode == 'mask_boxes':
            keys = ('ignore_index', 'background_index', 'connectivity')
            kw = {k: v for k, v in self.thresholds.items() if k in keys}
            return [mask_box_instances(m, **kw) for m in masks]
        if pred_instances is None or len(pred_instances) != len(masks):
            raise ValueError('m4b needs one teacher prediction per mask')
        return [
            m4b_pseudo_instances(p, m, self.num_classes, **self.thresholds)
            for p, m in zip(pred_instances, masks)
        ]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mode={self.mode!r}, '
                f'num_classes={self.num_classes}, '
                f'score_thr={self.score_thr}, {self.thresholds})')
