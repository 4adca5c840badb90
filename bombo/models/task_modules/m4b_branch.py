"""Mask-for-Box training branch: L_M4B of Eq. 1 (BoMBo paper, Sec. 3.2)."""
import copy
from typing import Dict, Optional, Tuple

import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmengine.structures import InstanceData
from torch import Tensor, nn

from .teacher import dense_predictions, nms_predictions

LOSS_MODES = ('L', 'C', 'LC')


@MODELS.register_module()
class MaskForBoxBranch(nn.Module):
    """Trains the detection head on segmentation-annotated images with
    pseudo-boxes made from their masks (``L_M4B`` in Eq. 1).

    For every segmentation-annotated image the ``refiner``
    (``MaskForBoxRefiner``) turns the ground-truth mask (and, for the
    ``'m4b'`` and ``'unbiased_teacher'`` modes, the teacher's predictions on
    the same input image, without gradient) into pseudo-boxes; the detection
    head's own losses are then computed against them:

    * ``loss_mode='L'`` (default, the paper's best, Table 1): the
      localisation loss only (``loss_m4b_bbox``);
    * ``'C'``: the classification loss only (``loss_m4b_cls``);
    * ``'LC'``: both.

    Args:
        refiner (dict): a ``MaskForBoxRefiner`` config (``TASK_UTILS``):
            ``mode='m4b'`` (Algorithm 1), ``'mask_boxes'`` (the "GT Masks"
            rows: circumscribed rectangles only) or ``'unbiased_teacher'``.
        loss_mode (str): ``'L'``, ``'C'`` or ``'LC'``.
        loss_weight (float): weight of L_M4B. Default 1.
        teacher_boxes (str): what the teacher gives Algorithm 1: ``'dense'``
            (default; every box of the dense head with its per-class sigmoid
            score vector, as the paper's Algorithm 1 takes them) or ``'nms'``
            (final detections, one label per box). The unbiased teacher
            always uses the final detections.
        teacher_score_thr (float): lowest score kept from the teacher
            (dense) — Algorithm 1 uses nothing below 0.1.
        teacher_topk (int): boxes kept per FPN level (dense).
        teacher_test_cfg (dict, optional): NMS settings of the ``'nms'``
            predictions (default: the head's ``test_cfg``).
    """

    def __init__(self,
                 refiner: dict,
                 loss_mode: str = 'L',
                 loss_weight: float = 1.0,
                 teacher_boxes: str = 'dense',
                 teacher_score_thr: float = 0.1,
                 teacher_topk: int = 1000,
                 teacher_test_cfg: Optional[dict] = None):
        super().__init__()
        if loss_mode not in LOSS_MODES:
            raise ValueError(f'loss_mode must be one of {LOSS_MODES}, got '
                             f'{loss_mode!r}')
        if teacher_boxes not in ('dense', 'nms'):
            raise ValueError("teacher_boxes must be 'dense' or 'nms'")
        self.refiner = TASK_UTILS.build(refiner)
        self.loss_mode = loss_mode
        self.loss_weight = loss_weight
        self.teacher_boxes = teacher_boxes
        self.teacher_score_thr = teacher_score_thr
        self.teacher_topk = teacher_topk
        self.teacher_test_cfg = teacher_test_cfg

    @property
    def needs_teacher(self) -> bool:
        return self.refiner.mode in ('m4b', 'unbiased_teacher')

    def teacher_predictions(self, teacher, inputs: Tensor,
                            samples: SampleList, feats=None):
        if self.refiner.mode == 'unbiased_teacher' or \
                self.teacher_boxes == 'nms':
            return nms_predictions(teacher, inputs, samples,
                                   self.teacher_test_cfg, feats=feats)
        return dense_predictions(teacher, inputs, samples,
                                 self.teacher_score_thr, self.teacher_topk,
                                 feats=feats)

    def pseudo_samples(self, detector, inputs: Tensor,
                       samples: SampleList) -> SampleList:
        """Copies of ``samples`` whose ``gt_instances`` are the pseudo-boxes
        (in the input frame, like the masks)."""
        preds = None
        if self.needs_teacher:
            preds = self.teacher_predictions(
                detector.get_teacher(), inputs, samples,
                feats=detector.teacher_features(inputs))
        pseudo = self.refiner(preds, samples)
        out = []
        for sample, inst in zip(samples, pseudo):
            new = copy.copy(sample)  # shallow: images/masks are not copied
            gt = InstanceData()
            gt.bboxes = inst.bboxes.float()
            gt.labels = inst.labels.long()
            new.gt_instances = gt
            ignored = InstanceData()
            ignored.bboxes = gt.bboxes.new_zeros((0, 4))
            ignored.labels = gt.labels.new_zeros((0, ))
            new.ignored_instances = ignored
            new.pseudo_instances = inst
            out.append(new)
        return out

    def loss(self, detector, x: Tuple[Tensor], inputs: Tensor,
             samples: SampleList) -> Dict[str, Tensor]:
        """L_M4B on the segmentation-annotated ``samples`` whose neck
        features are ``x``."""
        pseudo = self.pseudo_samples(detector, inputs, samples)
        losses = detector.bbox_head.loss(detector.det_feats(x), pseudo)
        out = {}
        if 'L' in self.loss_mode:
            out['loss_m4b_bbox'] = _weighted(losses['loss_bbox'],
                                             self.loss_weight)
        if 'C' in self.loss_mode:
            out['loss_m4b_cls'] = _weighted(losses['loss_cls'],
                                            self.loss_weight)
        num = torch.tensor(
            float(sum(len(s.gt_instances) for s in pseudo)) / len(pseudo),
            device=inputs.device)
        out['m4b_boxes_per_img'] = num  # logged, not optimised
        return out


def _weighted(value, weight: float):
    if isinstance(value, (list, tuple)):
        return [v * weight for v in value]
    return value * weight
