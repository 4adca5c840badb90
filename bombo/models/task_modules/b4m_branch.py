"""Box-for-Mask training branch: L_B4M of Eq. 1 (BoMBo paper, Sec. 3.3)."""
from typing import Dict, Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor, nn

from .memory_bank import ClassMemoryBank, segmentation_keys
from .teacher import eval_mode


def stack_maps(samples: SampleList, key: str) -> Tensor:
    """(B, H, W) long maps of ``key`` (``gt_sem_seg`` / ``gt_box_mask``)."""
    missing = [s.metainfo.get('img_path', '?') for s in samples
               if key not in s]
    if missing:
        hint = ('LoadPseudoMask' if key == 'gt_sem_seg' else
                'GenerateBoxMask')
        raise KeyError(f'Box-for-Mask needs {key} on detection-annotated '
                       f'images (add {hint} to their pipeline); missing for '
                       f'{missing[:3]}')
    return torch.stack([getattr(s, key).sem_seg[0] for s in samples]).long()


@MODELS.register_module()
class BoxForMaskBranch(nn.Module):
    """Trains the semantic head on detection-annotated images from their
    boxes: ``L_B4M = L_S + L_alpha + L_object`` (BoMBo Sec. 3.3), each term
    switchable so that every row of the paper's Table 4 is a config.

    * ``L_S`` (Eq. 2): cross-entropy of the predicted mask ``M`` against the
      coarse GrabCut pseudo-mask ``M^c`` (``gt_sem_seg`` of the detection
      images, loaded from the offline cache by ``LoadPseudoMask``).
    * ``L_alpha`` (Eq. 3): MSE between the semantic head's attention map
      ``alpha`` (``SemanticFPNHead(with_attention=True)``), upsampled to the
      input size, and the one-hot box-shaped mask ``M^b`` (``gt_box_mask``,
      from ``GenerateBoxMask``).
    * ``L_object`` (Eq. 4): triplet loss between the box queries of this
      batch (unit mean of the features ``z`` over the box pixels predicted as
      the box's class) and keys of earlier annotated batches kept in a
      per-class FIFO memory bank. Keys come from segmentation-annotated
      images: per connected component of the ground-truth mask, the unit
      mean of the teacher's (EMA) features ``z`` (:meth:`update_bank`). The
      detector computes the detection sub-batch's losses before it pushes
      the keys of the segmentation sub-batch, so queries only ever meet keys
      of earlier batches, as the paper says.

    Args:
        num_classes (int): object classes (background excluded).
        feat_dim (int): channels of ``z`` (the semantic head's
            ``feat_channels``).
        use_seg (bool): add L_S. Default True.
        use_attention (bool): add L_alpha (needs the attention branch).
        use_object (bool): add L_object.
        loss_seg (dict): the L_S loss (mmdet ``CrossEntropyLoss``, ignore
            255, averaged over the labelled pixels: Eq. 2).
        loss_attention (dict): the L_alpha loss (``AttentionMSELoss``).
        loss_object (dict): the L_object loss (``ObjectTripletLoss``,
            margin gamma = 0.1).
        bank_size (int): keys kept per class. Default 64.
        key_mode (str): ``'component'`` (one key per connected component of
            a class) or ``'class'`` (one per class region).
        teacher_keys (bool): keys from the teacher's features (default, as
            the paper: "The EMA network is also used for the B4M triplet
            loss"); False takes the student's features of the L_seg pass,
            detached (for runs without a teacher; no extra pass).
    """

    def __init__(self,
                 num_classes: int,
                 feat_dim: int,
                 use_seg: bool = True,
                 use_attention: bool = True,
                 use_object: bool = True,
                 loss_seg: dict = dict(type='CrossEntropyLoss',
                                       use_sigmoid=False, ignore_index=255,
                                       avg_non_ignore=True, loss_weight=1.0),
                 loss_attention: dict = dict(type='AttentionMSELoss',
                                             loss_weight=1.0),
                 loss_object: dict = dict(type='ObjectTripletLoss',
                                          margin=0.1, loss_weight=1.0),
                 bank_size: int = 64,
                 key_mode: str = 'component',
                 teacher_keys: bool = True):
        super().__init__()
        if not (use_seg or use_attention or use_object):
            raise ValueError('BoxForMaskBranch with every loss disabled: '
                             'remove the branch instead')
        self.use_seg, self.use_attention = use_seg, use_attention
        self.use_object = use_object
        self.loss_seg = MODELS.build(loss_seg) if use_seg else None
        self.loss_attention = MODELS.build(loss_attention) \
            if use_attention else None
        self.loss_object = MODELS.build(loss_object) if use_object else None
        self.bank = ClassMemoryBank(num_classes, feat_dim, bank_size) \
            if use_object else None
        self.key_mode = key_mode
        self.teacher_keys = teacher_keys

    @torch.no_grad()
    def update_bank(self, detector, inputs: Tensor, samples: SampleList,
                    student_feats: Optional[Tensor] = None) -> None:
        """Push keys of the segmentation-annotated ``samples`` (Eq. 4).

        With ``teacher_keys`` (default, the paper: "The EMA network is also
        used for the B4M triplet loss") the keys are the teacher's ``z``: its
        neck features of ``inputs`` are the ones M4B uses too (computed once
        per step, :meth:`PartialMultiTaskDetector.teacher_features`) and of
        its semantic head only the part up to ``z`` runs (no logits, no
        attention), in inference mode. Without, they are the student's
        ``z`` of the same images, ``student_feats``, which the detector has
        already computed for L_seg (detached here; no extra pass).
        """
        if not self.use_object:
            return
        if self.teacher_keys:
            teacher = detector.get_teacher()
            feats = detector.teacher_features(inputs)
            with eval_mode(teacher):
                z = teacher.seg_head.forward_feats(teacher.seg_feats(feats))
        else:
            if student_feats is None:
                raise ValueError('teacher_keys=False takes the keys from the '
                                 "student's semantic-head features: pass "
                                 'student_feats')
            z = student_feats.detach()
        keys, labels = segmentation_keys(z.float(),
                                         stack_maps(samples, 'gt_sem_seg'),
                                         mode=self.key_mode)
        # always: under DDP the push is a collective (the bank gathers the
        # keys of every rank), so a rank without keys still takes part
        self.bank.push(keys, labels)

    def loss(self, detector, x: Tuple[Tensor], inputs: Tensor,
             samples: SampleList) -> Dict[str, Tensor]:
        """L_B4M on the detection-annotated ``samples`` (before λ)."""
        head = detector.seg_head
        outs = head(detector.seg_feats(x))
        size = inputs.shape[-2:]
        losses = {}
        if self.use_seg:
            target = stack_maps(samples, 'gt_sem_seg')
            preds = head.upsample(outs['seg_preds'], target.shape[-2:])
            losses['loss_b4m_seg'] = self.loss_seg(preds, target)
        if self.use_attention:
            if 'attention' not in outs:
                raise ValueError('L_alpha needs the attention branch: set '
                                 'model.seg_head.with_attention=True')
            box_mask = stack_maps(samples, 'gt_box_mask')
            alpha = head.upsample(outs['attention'], box_mask.shape[-2:])
            losses['loss_b4m_attention'] = self.loss_attention(alpha,
                                                               box_mask)
        if self.use_object:
            keys, key_labels = self.bank.all_keys()
            out = self.loss_object(
                outs['feats'], outs['seg_preds'],
                [s.gt_instances.bboxes for s in samples],
                [s.gt_instances.labels for s in samples],
                keys, key_labels, input_size=tuple(size))
            out['loss_b4m_object'] = out.pop(self.loss_object.loss_name)
            losses.update(out)
        return losses
