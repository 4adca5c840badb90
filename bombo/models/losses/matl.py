"""Multi-Annotation Triplet Loss (MATL).

Paper 000 (MATL, Sec. II-B) and its recap in paper 001 (TG-MATL Eqs. (2)-(4)):

    L_MATL = (1 - lambda) * L_class + lambda * L_box                 (Eq. 4)

where ``L_class`` (Eq. 2) is the triplet loss with triplets drawn from class
labels and ``L_box`` (Eq. 3) the same loss with triplets drawn from the
discrete box labels (:mod:`bombo.models.task_modules.box_labels`). Both terms
share the embeddings and the triplet margin loss of
:mod:`bombo.models.losses.triplet`; only the labels (the "miner") differ.
``lambda`` = 0.25 is MATL's best value; TG-MATL uses 0.5.

Each term is reduced on its own (by default the mean over its triplets with
positive loss, as in the reference), then combined. Degenerate batches: a term
without valid triplets is 0 (e.g. all box labels equal gives
``(1 - lambda) * L_class``); NaN embeddings raise ``ValueError``.
"""
from typing import Optional

import torch.nn as nn
from torch import Tensor

from mmdet.registry import MODELS
from .precision import fp32_loss
from .triplet import triplet_loss


@fp32_loss
def matl_loss(embeddings: Tensor,
              class_labels: Tensor,
              box_labels: Tensor,
              box_weight: float = 0.25,
              margin: float = 0.1,
              squared: bool = False,
              mining: str = 'all',
              reduction: Optional[str] = None,
              anchor_mask: Optional[Tensor] = None,
              positive_mask: Optional[Tensor] = None,
              negative_mask: Optional[Tensor] = None,
              return_parts: bool = False):
    """MATL, Eq. (4) of paper 001 (= MATL's ``L = (1-λ)L_class + λL_box``).

    Args:
        embeddings (Tensor): (B, D).
        class_labels (Tensor): (B, ) class labels.
        box_labels (Tensor): (B, ) discrete box labels.
        box_weight (float): lambda in [0, 1]. Default 0.25 (MATL).
        margin (float): triplet margin alpha.
        squared (bool): squared Euclidean distances.
        mining (str): 'all' (reference) or 'hard' for both terms.
        reduction (str, optional): per-term reduction; default
            'mean_positive' for 'all', 'mean' for 'hard'.
        anchor_mask, positive_mask, negative_mask (Tensor, optional): (B, )
            bool role masks applied to both terms (TG-MATL, Eq. (14)).
        return_parts (bool): also return ``dict(loss_class, loss_box)``.

    Returns:
        Tensor or tuple[Tensor, dict]: scalar loss.
    """
    if not 0.0 <= box_weight <= 1.0:
        raise ValueError(f'box_weight must be in [0, 1], got {box_weight}')
    if box_labels.shape != class_labels.shape:
        raise ValueError('class_labels and box_labels must have the same '
                         'shape')
    reduction = reduction or ('mean_positive' if mining == 'all' else 'mean')
    kwargs = dict(mining=mining, margin=margin, squared=squared,
                  reduction=reduction, anchor_mask=anchor_mask,
                  positive_mask=positive_mask, negative_mask=negative_mask)
    loss_class = triplet_loss(embeddings, class_labels, **kwargs)
    loss_box = triplet_loss(embeddings, box_labels, **kwargs)
    loss = (1.0 - box_weight) * loss_class + box_weight * loss_box
    if return_parts:
        return loss, dict(loss_class=loss_class, loss_box=loss_box)
    return loss


@MODELS.register_module()
class MATLLoss(nn.Module):
    """Multi-Annotation Triplet Loss (paper 000; paper 001 Eq. (4)).

    Args:
        box_weight (float): lambda. Default 0.25.
        margin (float): triplet margin. Default 0.1.
        mining (str): 'all' or 'hard'.
        squared (bool): squared distances.
        reduction (str, optional): per-term reduction.
        loss_weight (float): multiplier.
    """

    def __init__(self, box_weight: float = 0.25, margin: float = 0.1,
                 mining: str = 'all', squared: bool = False,
                 reduction: Optional[str] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.box_weight, self.margin, self.mining = box_weight, margin, mining
        self.squared, self.reduction = squared, reduction
        self.loss_weight = loss_weight

    def forward(self, embeddings: Tensor, class_labels: Tensor,
                box_labels: Tensor,
                sample_mask: Optional[Tensor] = None) -> Tensor:
        """Args:
            embeddings (Tensor): (B, D).
            class_labels, box_labels (Tensor): (B, ).
            sample_mask (Tensor, optional): (B, ) bool anchor/positive mask.
        """
        return self.loss_weight * matl_loss(
            embeddings, class_labels, box_labels, self.box_weight,
            self.margin, self.squared, self.mining, self.reduction,
            anchor_mask=sample_mask, positive_mask=sample_mask)
