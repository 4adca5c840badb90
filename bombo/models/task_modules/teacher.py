"""Teacher predictions for the pseudo-label branches (M4B, B4M).

The teacher is the EMA of the student (``TeacherEMAHook``) or a pre-trained
copy (``model.teacher=dict(checkpoint=...)``); see
``PartialMultiTaskDetector.get_teacher``. It sees the same input images as the
student (no separate augmentation) and runs without gradient, in eval mode.
"""
from typing import List, Optional, Tuple

import torch
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


class eval_mode:
    """Context: ``module`` in eval mode, no autograd; restores the mode.

    By default the block runs under ``torch.inference_mode()`` (no version
    counters, no view tracking: the cheapest way to run the teacher); its
    results are *inference tensors*: they may be read anywhere (and copied
    into buffers) but not modified in place or saved for backward outside
    inference mode. ``inference=False`` gives ``torch.no_grad()`` instead.

    Autocast is left as it is: when the student trains under AMP
    (mmengine's ``AmpOptimWrapper`` wraps the whole forward pass in
    ``torch.autocast``), the teacher runs in the same reduced precision.
    """

    def __init__(self, module: torch.nn.Module, inference: bool = True):
        self.module = module
        self.inference = inference

    def __enter__(self):
        self.was_training = self.module.training
        if self.was_training:
            self.module.eval()
        self.grad_mode = torch.inference_mode() if self.inference else \
            torch.no_grad()
        self.grad_mode.__enter__()
        return self.module

    def __exit__(self, *exc):
        self.grad_mode.__exit__(*exc)
        if self.was_training:
            self.module.train(True)
        return False


def _select(best: Tensor, score_thr: float, topk: int) -> Tuple[Tensor,
                                                                Tensor]:
    """Per image (row of ``best``, (B, N)), the positions kept by
    :func:`dense_predictions`: those with ``best > score_thr`` in increasing
    position order, or, when more than ``topk`` pass, the ``topk`` best of
    them by decreasing score (``torch.topk`` over the passing positions,
    which are gathered first in increasing order, as a per-image
    ``best[nonzero(best > thr)].topk(topk)`` sees them).

    Returns:
        tuple: ``index`` (B, k) long positions and ``valid`` (B, k) bool,
        ``k = min(topk, N)``; row ``b``'s kept positions are
        ``index[b][valid[b]]``, in order.
    """
    b, n = best.shape
    k = min(topk, n)
    passed = best > score_thr
    # passing positions first, in increasing order (stable sort on ~passed)
    order = torch.sort((~passed).to(torch.uint8), dim=1, stable=True)[1]
    count = passed.sum(1, keepdim=True)
    cols = torch.arange(n, device=best.device)[None]
    vals = torch.where(cols < count, best.gather(1, order),
                       best.new_tensor(float('-inf')))
    top = vals.topk(k, dim=1).indices  # by decreasing score
    many = count > topk  # (B, 1)
    # few: the first k gathered positions (increasing); many: the top-k
    pick = torch.where(many, top, cols[:, :k].expand(b, k))
    index = order.gather(1, pick)
    valid = (cols[:, :k] < count) | many
    return index, valid


def dense_predictions(teacher, inputs: Tensor, samples: SampleList,
                      score_thr: float = 0.1, topk: int = 1000,
                      feats: Optional[tuple] = None) -> List[InstanceData]:
    """The teacher's dense head output as Algorithm 1 takes it: every
    predicted box with its full vector of per-class sigmoid scores, before
    NMS (BoMBo supplementary: "N = w x h ... at each FPN scale", "ĉ_k ∈
    R^{n_c} ... output by a sigmoid").

    To bound the cost, boxes whose best class score is at most ``score_thr``
    are dropped (Algorithm 1 never uses a score below its lowest threshold,
    0.1) and at most ``topk`` boxes per level are kept, by best score.
    Boxes are in the input (augmented) image frame, like the masks.
    ``feats``: the teacher's neck features of ``inputs`` if already computed.

    The whole batch is selected and decoded at once (no loop over images or
    levels, one host synchronisation to split the result per image); the
    output is the same as selecting per image and level: per image, level
    after level, the passing boxes in anchor order, or the ``topk`` best in
    decreasing score order when more pass.

    Returns:
        list[InstanceData]: per image, ``bboxes`` (N, 4) and ``scores``
        (N, num_classes).
    """
    head = teacher.bbox_head
    if not getattr(head, 'use_sigmoid_cls', False) or not hasattr(
            head, 'prior_generator'):
        raise TypeError('dense teacher predictions need an anchor-based head '
                        f'with sigmoid scores (e.g. RetinaHead), got '
                        f'{type(head).__name__}; use teacher_boxes="nms"')
    with eval_mode(teacher):
        x = teacher.det_feats(feats if feats is not None else
                              teacher.extract_feat(inputs))
        cls_scores, bbox_preds = head(x)[:2]
        sizes = [c.shape[-2:] for c in cls_scores]
        priors = head.prior_generator.grid_priors(sizes, device=inputs.device)
        num_classes = head.cls_out_channels
        enc = head.bbox_coder.encode_size
        num = len(samples)
        scores, deltas, index, valid, offset = [], [], [], [], 0
        for cls, reg, pri in zip(cls_scores, bbox_preds, priors):
            s = cls.permute(0, 2, 3, 1).reshape(num, -1, num_classes)
            s = s.sigmoid()
            idx, ok = _select(s.max(2).values, score_thr, topk)
            scores.append(s)
            deltas.append(reg.permute(0, 2, 3, 1).reshape(num, -1, enc))
            index.append(idx + offset)
            valid.append(ok)
            offset += s.shape[1]
        scores, deltas = torch.cat(scores, 1), torch.cat(deltas, 1)
        priors = torch.cat(priors)
        img, pos = torch.nonzero(torch.cat(valid, 1), as_tuple=True)
        anchor = torch.cat(index, 1)[img, pos]
        boxes = head.bbox_coder.decode(priors[anchor], deltas[img, anchor])
        boxes = boxes if torch.is_tensor(boxes) else boxes.tensor
        if getattr(head.bbox_coder, 'clip_border', True):
            # the coder's clamp (``max_shape``), to each box's own image
            shapes = boxes.new_tensor([s.img_shape[:2] for s in samples])
            h, w = shapes[img, 0:1], shapes[img, 1:2]
            boxes = torch.cat([boxes[:, 0::2].clamp(min=0).minimum(w),
                               boxes[:, 1::2].clamp(min=0).minimum(h)], 1)
            boxes = boxes[:, [0, 2, 1, 3]]
        sel_scores = scores[img, anchor]
        counts = torch.bincount(img, minlength=num).tolist()
    results = []
    for b, s in zip(boxes.split(counts), sel_scores.split(counts)):
        res = InstanceData()
        res.bboxes = b
        res.scores = s
        results.append(res)
    return results


def nms_predictions(teacher, inputs: Tensor, samples: SampleList,
                    test_cfg: Optional[dict] = None,
                    feats: Optional[tuple] = None) -> List[InstanceData]:
    """The teacher's final detections (after NMS), in the input frame."""
    with eval_mode(teacher):
        x = teacher.det_feats(feats if feats is not None else
                              teacher.extract_feat(inputs))
        outs = teacher.bbox_head(x)
        metas = [s.metainfo for s in samples]
        cfg = None if test_cfg is None else ConfigDict(test_cfg)
        # Decoding and NMS in fp32 outside autocast: the teacher inherits
        # the student's autocast, and mmcv's CPU NMS refuses fp16/bf16.
        outs = tuple([o.float() for o in level] for level in outs)
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            return teacher.bbox_head.predict_by_feat(
                *outs, batch_img_metas=metas, cfg=cfg, rescale=False)
