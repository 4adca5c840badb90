"""Teacher predictions for the pseudo-label branches (M4B, B4M).

The teacher is the EMA of the student (``TeacherEMAHook``) or a pre-trained
copy (``model.teacher=dict(checkpoint=...)``); see
``PartialMultiTaskDetector.get_teacher``. It sees the same input images as the
student (no separate augmentation) and runs without gradient, in eval mode.
"""
from typing import List, Optional

import torch
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


class eval_mode:
    """Context: module in eval mode and no gradient; restores the mode."""

    def __init__(self, module: torch.nn.Module):
        self.module = module

    def __enter__(self):
        self.was_training = self.module.training
        self.module.eval()
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()
        return self.module

    def __exit__(self, *exc):
        self.no_grad.__exit__(*exc)
        self.module.train(self.was_training)
        return False


@torch.no_grad()
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
    results = []
    for i, sample in enumerate(samples):
        boxes, scores = [], []
        for lvl, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            s = cls[i].permute(1, 2, 0).reshape(-1, num_classes).sigmoid()
            d = reg[i].permute(1, 2, 0).reshape(-1, head.bbox_coder.encode_size)
            best = s.max(1).values
            keep = torch.nonzero(best > score_thr).squeeze(1)
            if len(keep) > topk:
                keep = keep[best[keep].topk(topk).indices]
            b = head.bbox_coder.decode(priors[lvl][keep], d[keep],
                                       max_shape=sample.img_shape)
            boxes.append(b if torch.is_tensor(b) else b.tensor)
            scores.append(s[keep])
        res = InstanceData()
        res.bboxes = torch.cat(boxes)
        res.scores = torch.cat(scores)
        results.append(res)
    return results


@torch.no_grad()
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
        return teacher.bbox_head.predict_by_feat(
            *outs, batch_img_metas=metas, cfg=cfg, rescale=False)
