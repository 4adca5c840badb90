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
        teacher_boxes (str): what the teacher gives Algorithm 1: ``'nms'``
            (default: the final detections, one label per box) or
            ``'dense'`` (every box of the dense head above
            ``teacher_score_thr`` with its per-class sigmoid score vector:
            the literal reading of the paper's Algorithm 1). The default was
            chosen by measurement (docs/mask_for_box.md, "Teacher input"):
            on the same teacher, post-NMS input gives Algorithm 1 higher
            recall at IoU 0.75 (0.590 vs 0.566 on the demo model; 0.388 vs
            0.368 on a weak one) and fewer spurious merges (41 vs 67), and
            trained better over 3 seeds (mAP 0.8 vs 0.6, paired p = 0.02);
            dense input lets a lower-scored neighbouring anchor take over a
            correct box through case A's bonus. The unbiased teacher always
            uses the final detections.
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
                 teacher_boxes: str = 'nms',
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
        (in the input frame, like the masks).

        Algorithm 1 runs on the host (NumPy, image by image: its control
        flow depends on the data); the teacher's predictions and the masks
        go there in one transfer each for the whole batch, and the
        pseudo-boxes come back in one."""
        device = inputs.device
        preds = None
        if self.needs_teacher:
            preds = _to_host(self.teacher_predictions(
                detector.get_teacher(), inputs, samples,
                feats=detector.teacher_features(inputs)))
        masks = None
        if self.refiner.mode != 'unbiased_teacher':
            maps = [s.gt_sem_seg.sem_seg for s in samples]
            masks = list(torch.stack(maps).cpu()) if len(
                {m.shape for m in maps}) == 1 else [m.cpu() for m in maps]
        pseudo = _to_device(self.refiner(preds, masks), device)
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
        losses = head_loss(detector.bbox_head, detector.det_feats(x), pseudo,
                           cls='C' in self.loss_mode,
                           reg='L' in self.loss_mode)
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


def _tower_is_pure(convs) -> bool:
    """No module with running statistics (BN) in a head's conv tower:
    skipping it then changes nothing but the time."""
    return not any(getattr(m, 'track_running_stats', False)
                   for m in convs.modules())


def head_loss(head, feats, samples: SampleList, cls: bool = True,
              reg: bool = True) -> Dict[str, Tensor]:
    """``head.loss(feats, samples)`` running only the branches whose loss
    is used: with ``loss_mode='L'`` (the paper's best) a RetinaHead's
    classification tower (its stacked convs and ``retina_cls``) is not run
    on the segmentation images, with ``'C'`` its regression tower is not.

    The skipped branch's output is replaced by zeros without gradient:
    mmdet's ``AnchorHead.loss_by_feat`` reads it only for its own loss (the
    anchors, targets and the average factor come from the feature sizes and
    the boxes), so the kept loss is the same value with the same gradient,
    and the skipped loss, which L_M4B drops, has no graph. Heads of another
    type, or with batch norm in the tower to skip (running statistics),
    run whole.
    """
    from mmdet.models.dense_heads import RetinaHead
    from mmdet.models.utils import unpack_gt_instances
    if (cls and reg) or type(head) is not RetinaHead or not _tower_is_pure(
            head.cls_convs if reg else head.reg_convs):
        return head.loss(feats, samples)
    cls_scores, bbox_preds = [], []
    num_priors = head.num_base_priors
    for x in feats:
        if cls:
            f = x
            for conv in head.cls_convs:
                f = conv(f)
            cls_scores.append(head.retina_cls(f))
        else:
            f = x
            for conv in head.reg_convs:
                f = conv(f)
            bbox_preds.append(head.retina_reg(f))
        out = (cls_scores if cls else bbox_preds)[-1]
        size = (x.shape[0], num_priors * (
            head.bbox_coder.encode_size if cls else head.cls_out_channels),
            *x.shape[-2:])
        (bbox_preds if cls else cls_scores).append(
            out.new_zeros(size).detach())
    gt, ignore, metas = unpack_gt_instances(samples)
    return head.loss_by_feat(cls_scores, bbox_preds, gt, metas, ignore)


def _to_host(preds):
    """Per-image ``InstanceData`` moved to the CPU in one transfer per
    field for the whole batch."""
    if not preds or all(p.bboxes.device.type == 'cpu' for p in preds):
        return preds
    counts = [len(p) for p in preds]
    out = [InstanceData() for _ in preds]
    for key in preds[0].keys():
        values = torch.cat([getattr(p, key) for p in preds]).cpu()
        for o, v in zip(out, values.split(counts)):
            setattr(o, key, v)
    return out


def _to_device(insts, device):
    """Pseudo-box ``InstanceData`` (CPU) moved to ``device``, one transfer
    per field for the whole batch."""
    if device.type == 'cpu' or not insts:
        return insts
    counts = [len(i) for i in insts]
    out = [InstanceData() for _ in insts]
    for key in insts[0].keys():
        values = torch.cat([getattr(i, key) for i in insts]).to(device)
        for o, v in zip(out, values.split(counts)):
            setattr(o, key, v)
    return out


def _weighted(value, weight: float):
    if isinstance(value, (list, tuple)):
        return [v * weight for v in value]
    return value * weight
