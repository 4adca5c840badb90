"""Triplet margin loss on a pairwise distance matrix, with batch-all and
batch-hard mining, in O(B^2) memory.

Equation: the standard triplet loss, TG-MATL (paper 001) Eq. (1), MATL
(paper 000) Sec. II:

    l(a, p, n) = max(0, d(f_a, f_p) - d(f_a, f_n) + alpha)

with ``y_a == y_p``, ``a != p`` and ``y_a != y_n``.

Following pytorch-metric-learning's split, *which* triplets count (the
"miner") is separate from the margin loss itself:

* batch-all (every valid triplet, Schroff et al. / the MATL reference code)
  is described by two pair masks (:func:`triplet_pair_masks`) and never
  materialises a triplet list or a (B, B, B) tensor: for each anchor the
  negatives' distances are sorted once and every positive counts its active
  negatives with a binary search (``torch.searchsorted``), so value, counts and
  gradient are exact in O(B^2) memory and O(B^2 log B) time.
* batch-hard (hardest positive and hardest negative per anchor, Hermans et
  al.) is a miner returning at most B index triplets
  (:func:`batch_hard_triplet_miner`), scored by
  :func:`triplet_margin_loss_from_indices`.

Reductions (a choice, ``reduction``):

* ``'mean_positive'``: sum over the triplets with positive loss divided by
  their number. This is the MATL / TG-MATL reference convention (average over
  "positive triplets") and pytorch-metric-learning's ``AvgNonZeroReducer``.
  Default for batch-all.
* ``'mean'``: average over all valid triplets (batch-all) or all valid
  anchors (batch-hard; default there, as in the batch-hard reference).
* ``'sum'``.

Degenerate batches: no valid triplet (one class only, one sample per class,
empty batch) or no triplet with positive loss gives a loss of exactly 0 that
still carries a (zero) gradient to the embeddings. Non-finite embeddings raise
``ValueError``: a NaN loss is never returned.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmdet.registry import MODELS
from .precision import fp32_loss

REDUCTIONS = ('mean_positive', 'mean', 'sum')


def check_embeddings(embeddings: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` on malformed or non-finite input.

    Args:
        embeddings (Tensor): (B, D) embeddings.
        labels (Tensor): (B, ) integer labels.
    """
    if embeddings.dim() != 2:
        raise ValueError('embeddings must be (B, D), got '
                         f'{tuple(embeddings.shape)}')
    if labels.dim() != 1 or labels.numel() != embeddings.size(0):
        raise ValueError(f'labels must be (B,) with B={embeddings.size(0)}, '
                         f'got {tuple(labels.shape)}')
    if labels.is_floating_point():
        raise ValueError('labels must be integers')
    if embeddings.numel() and not bool(torch.isfinite(embeddings).all()):
        raise ValueError('non-finite (NaN/inf) embeddings passed to a triplet '
                         'loss; the upstream network has diverged')


@fp32_loss
def pairwise_distances(embeddings: Tensor, squared: bool = False) -> Tensor:
    """Euclidean distance matrix with a gradient that is finite at 0.

    Args:
        embeddings (Tensor): (B, D).
        squared (bool): return squared distances.

    Returns:
        Tensor: (B, B), exactly 0 on the diagonal.
    """
    dot = embeddings @ embeddings.t()
    sq_norm = dot.diagonal()
    d2 = (sq_norm[:, None] - 2.0 * dot + sq_norm[None, :]).clamp_min(0.0)
    eye = torch.eye(d2.size(0), dtype=torch.bool, device=d2.device)
    d2 = d2.masked_fill(eye, 0.0)
    if squared:
        return d2
    zero = d2 == 0
    # sqrt has an infinite derivative at 0: shift the zeros, then put them back
    return torch.sqrt(d2 + zero.to(d2.dtype) * 1e-16) * (~zero).to(d2.dtype)


def triplet_pair_masks(labels: Tensor,
                       anchor_mask: Optional[Tensor] = None,
                       positive_mask: Optional[Tensor] = None,
                       negative_mask: Optional[Tensor] = None
                       ) -> Tuple[Tensor, Tensor]:
    """The all-triplets miner, as two pair masks.

    Triplet (a, p, n) is valid iff ``pos[a, p] and neg[a, n]``.

    Args:
        labels (Tensor): (B, ) integer labels.
        anchor_mask, positive_mask, negative_mask (Tensor, optional): (B, )
            bool; samples allowed in each role (e.g. the TG-MATL selection).

    Returns:
        tuple[Tensor, Tensor]: ``pos`` (B, B) bool, same label and a != p;
        ``neg`` (B, B) bool, different label.
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.numel(), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    if anchor_mask is not None:
        pos = pos & anchor_mask[:, None]
        neg = neg & anchor_mask[:, None]
    if positive_mask is not None:
        pos = pos & positive_mask[None, :]
    if negative_mask is not None:
        neg = neg & negative_mask[None, :]
    return pos, neg


@torch.no_grad()
def _batch_all_counts(dist: Tensor, pos: Tensor, neg: Tensor,
                      margin: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-pair active-triplet counts, by sorting instead of enumerating.

    Args:
        dist (Tensor): (B, B) distances (no grad needed).
        pos, neg (Tensor): (B, B) bool pair masks.
        margin (float): the triplet margin.

    Returns:
        tuple: ``w_pos`` (B, B): for each (a, p), the number of negatives n
        with ``d_ap - d_an + margin > 0``; ``w_neg`` (B, B): for each (a, n),
        the number of positives p with the same property; ``num_valid`` (0-dim
        int64), the number of valid triplets.
    """
    inf = torch.tensor(float('inf'), dtype=dist.dtype, device=dist.device)
    # thresholds: a triplet is active iff d_an < d_ap + margin
    thr = dist + margin
    neg_sorted = torch.where(neg, dist, inf).sort(dim=1).values
    # number of (finite) negatives strictly below each positive's threshold
    w_pos = torch.searchsorted(neg_sorted, thr.contiguous(), right=False)
    w_pos = torch.where(pos, w_pos, torch.zeros_like(w_pos))
    # number of positive thresholds strictly above each negative distance
    thr_sorted = torch.where(pos, thr, -inf).sort(dim=1).values
    n_le = torch.searchsorted(thr_sorted, dist.contiguous(), right=True)
    w_neg = torch.where(neg, dist.size(1) - n_le, torch.zeros_like(n_le))
    num_valid = (pos.sum(1) * neg.sum(1)).sum()
    return w_pos, w_neg, num_valid


@fp32_loss
def batch_all_triplet_loss_from_distances(
        dist: Tensor, pos: Tensor, neg: Tensor, margin: float = 0.1,
        reduction: str = 'mean_positive') -> Tuple[Tensor, Dict[str, Tensor]]:
    """Batch-all triplet margin loss on a distance matrix (see module doc).

    The loss is ``sum_{active (a,p,n)} (d_ap - d_an + margin)``, rewritten
    exactly as ``sum_{a,p} w_pos[a,p] d_ap - sum_{a,n} w_neg[a,n] d_an +
    margin * N_active`` where the integer weights come from a no-grad sort.
    Its value and gradient equal those of the explicit triple sum.

    Args:
        dist (Tensor): (B, B) distances, differentiable.
        pos, neg (Tensor): (B, B) bool pair masks
            (:func:`triplet_pair_masks`).
        margin (float): alpha in Eq. (1).
        reduction (str): 'mean_positive' | 'mean' | 'sum'.

    Returns:
        tuple[Tensor, dict]: scalar loss; stats ``num_triplets`` (valid) and
        ``num_positive`` (with loss > 0), 0-dim int64 tensors.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}')
    if dist.numel() == 0:
        zero = torch.zeros((), dtype=torch.long, device=dist.device)
        return dist.sum() * 0.0, dict(num_triplets=zero, num_positive=zero)
    w_pos, w_neg, num_valid = _batch_all_counts(dist.detach(), pos, neg,
                                                margin)
    num_active = w_pos.sum()
    weights = (w_pos - w_neg).to(dist.dtype)
    total = (weights * dist).sum() + margin * num_active.to(dist.dtype)
    if reduction == 'mean_positive':
        total = total / num_active.clamp_min(1).to(dist.dtype)
    elif reduction == 'mean':
        total = total / num_valid.clamp_min(1).to(dist.dtype)
    return total, dict(num_triplets=num_valid, num_positive=num_active)


@fp32_loss
def batch_all_triplet_loss(embeddings: Tensor,
                           labels: Tensor,
                           margin: float = 0.1,
                           squared: bool = False,
                           reduction: str = 'mean_positive',
                           anchor_mask: Optional[Tensor] = None,
                           positive_mask: Optional[Tensor] = None,
                           negative_mask: Optional[Tensor] = None,
                           return_stats: bool = False):
    """Batch-all triplet margin loss (TG-MATL Eq. (1), all valid triplets).

    Args:
        embeddings (Tensor): (B, D).
        labels (Tensor): (B, ) integer labels.
        margin (float): alpha. Default 0.1 (the TG-MATL reference runs).
        squared (bool): squared Euclidean distances.
        reduction (str): 'mean_positive' (reference) | 'mean' | 'sum'.
        anchor_mask, positive_mask, negative_mask (Tensor, optional): (B, )
            bool role masks.
        return_stats (bool): also return the triplet counts.

    Returns:
        Tensor or tuple[Tensor, dict]: scalar loss (0 when no triplet is
        valid or active).
    """
    check_embeddings(embeddings, labels)
    dist = pairwise_distances(embeddings, squared=squared)
    pos, neg = triplet_pair_masks(labels, anchor_mask, positive_mask,
                                  negative_mask)
    loss, stats = batch_all_triplet_loss_from_distances(
        dist, pos, neg, margin, reduction)
    return (loss, stats) if return_stats else loss


@torch.no_grad()
def batch_hard_triplet_miner(dist: Tensor, pos: Tensor,
                             neg: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Batch-hard miner: for each anchor the farthest positive and the nearest
    negative (Hermans et al. 2017; the "hard" CLTL setting of TG-MATL).

    Args:
        dist (Tensor): (B, B) distances.
        pos, neg (Tensor): (B, B) bool pair masks.

    Returns:
        tuple[Tensor, Tensor, Tensor]: anchor, positive, negative indices
        (T, ) for the T anchors having at least one positive and one negative.
    """
    if dist.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=dist.device)
        return empty, empty, empty
    inf = torch.tensor(float('inf'), dtype=dist.dtype, device=dist.device)
    hardest_pos = torch.where(pos, dist, -inf).argmax(dim=1)
    hardest_neg = torch.where(neg, dist, inf).argmin(dim=1)
    anchors = torch.nonzero(pos.any(1) & neg.any(1), as_tuple=True)[0]
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


@fp32_loss
def triplet_margin_loss_from_indices(dist: Tensor, anchors: Tensor,
                                     positives: Tensor, negatives: Tensor,
                                     margin: float = 0.1,
                                     reduction: str = 'mean'
                                     ) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Triplet margin loss (Eq. (1)) on an explicit list of triplets.

    Args:
        dist (Tensor): (B, B) distances.
        anchors, positives, negatives (Tensor): (T, ) indices.
        margin (float): alpha.
        reduction (str): 'mean_positive' | 'mean' | 'sum'.

    Returns:
        tuple[Tensor, dict]: scalar loss and counts.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}')
    losses = (dist[anchors, positives] - dist[anchors, negatives] +
              margin).clamp_min(0.0)
    num_active = (losses > 0).sum()
    total = losses.sum() + dist.sum() * 0.0  # keep the graph when T == 0
    if reduction == 'mean_positive':
        total = total / num_active.clamp_min(1).to(dist.dtype)
    elif reduction == 'mean':
        total = total / max(anchors.numel(), 1)
    return total, dict(num_triplets=torch.tensor(anchors.numel()),
                       num_positive=num_active)


@fp32_loss
def batch_hard_triplet_loss(embeddings: Tensor,
                            labels: Tensor,
                            margin: float = 0.1,
                            squared: bool = False,
                            reduction: str = 'mean',
                            anchor_mask: Optional[Tensor] = None,
                            positive_mask: Optional[Tensor] = None,
                            negative_mask: Optional[Tensor] = None,
                            return_stats: bool = False):
    """Batch-hard triplet margin loss (TG-MATL Eq. (1) on hard triplets).

    Anchors without a positive or without a negative are not counted
    (the TF reference would score them against a distance of 0).

    Args: as :func:`batch_all_triplet_loss`; ``reduction`` defaults to
        'mean' over valid anchors.
    """
    check_embeddings(embeddings, labels)
    dist = pairwise_distances(embeddings, squared=squared)
    pos, neg = triplet_pair_masks(labels, anchor_mask, positive_mask,
                                  negative_mask)
    a, p, n = batch_hard_triplet_miner(dist, pos, neg)
    loss, stats = triplet_margin_loss_from_indices(dist, a, p, n, margin,
                                                   reduction)
    return (loss, stats) if return_stats else loss


def triplet_loss(embeddings: Tensor, labels: Tensor, mining: str = 'all',
                 **kwargs):
    """Dispatch to batch-all (``mining='all'``) or batch-hard (``'hard'``)."""
    if mining == 'all':
        return batch_all_triplet_loss(embeddings, labels, **kwargs)
    if mining == 'hard':
        return batch_hard_triplet_loss(embeddings, labels, **kwargs)
    raise ValueError(f"mining must be 'all' or 'hard', got {mining!r}")


@MODELS.register_module()
class TripletMarginLoss(nn.Module):
    """Triplet margin loss with batch-all or batch-hard mining (TG-MATL Eq. 1;
    the class-label triplet loss "CLTL" of MATL / TG-MATL).

    Args:
        margin (float): alpha. Default 0.1.
        mining (str): 'all' (every valid triplet) or 'hard'.
        squared (bool): squared Euclidean distances.
        reduction (str, optional): 'mean_positive' | 'mean' | 'sum'; default
            'mean_positive' for 'all' and 'mean' for 'hard'.
        loss_weight (float): multiplier.
    """

    def __init__(self, margin: float = 0.1, mining: str = 'all',
                 squared: bool = False, reduction: Optional[str] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if mining not in ('all', 'hard'):
            raise ValueError(f"mining must be 'all' or 'hard', got {mining!r}")
        self.margin, self.mining, self.squared = margin, mining, squared
        self.reduction = reduction or ('mean_positive' if mining == 'all'
                                       else 'mean')
        self.loss_weight = loss_weight

    def forward(self, embeddings: Tensor, labels: Tensor,
                sample_mask: Optional[Tensor] = None) -> Tensor:
        """Args:
            embeddings (Tensor): (B, D).
            labels (Tensor): (B, ).
            sample_mask (Tensor, optional): (B, ) bool; restricts anchors and
                positives.
        """
        loss = triplet_loss(embeddings, labels, mining=self.mining,
                            margin=self.margin, squared=self.squared,
                            reduction=self.reduction,
                            anchor_mask=sample_mask,
                            positive_mask=sample_mask)
        return self.loss_weight * loss
