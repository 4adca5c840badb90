"""Density-Aware Adaptive Line margin loss (DAAL), paper 002.

The paper (as available) gives no equations and no code. What it states:
each class is represented by an "elastic" line segment built from the class
centroid and the intra-class variance; the loss has an intra-class
compactness part and an inter-class separation part balanced by
hyper-parameters; it is meant to keep the intra-class density (sub-clusters,
spread) rather than collapse each class to a point, while keeping classes
apart by a margin.

The formulation below is **our reading** of that description (every symbol
choice is ours; DAAL paper, "Method" section, no equation numbers exist).
For every class c present in the batch, with ``n_c >= 2`` samples ``x_i``:

* centroid ``mu_c = mean_i x_i``;
* direction ``u_c``: the first principal axis of the class (top right
  singular vector of the centred samples) - the line follows the class's main
  spread (our reading of "line ... based on intra-class variance");
* half-length ``l_c = kappa * sigma_c``, ``sigma_c`` the standard deviation
  of the class's projections on ``u_c`` (the "elastic", density-aware
  length: a spread-out class gets a long line, a dense one a short line);
* segment ``S_c = {mu_c + t u_c : |t| <= l_c}`` and point-to-segment
  distance ``d(x, S_c) = || x - mu_c - t u_c ||`` with
  ``t = clip((x - mu_c).u_c, -l_c, l_c)``.

Then, over the anchors A (samples of a class with n_c >= 2 in a batch with at
least two classes)::

    L_intra = mean_{i in A} d(x_i, S_{y_i})
    L_inter = mean_{i in A} max(0, m + d(x_i, S_{y_i})
                                   - min_{c != y_i} d(x_i, S_c))
    L_DAAL  = L_inter + lambda_intra * L_intra

``L_intra`` pulls a sample to its class *line*, not its centre, so spread
along the principal axis is not penalised (density preserved); ``L_inter`` is
a margin between the own line and the nearest foreign line. Gradients flow
through the embeddings and the centroids; ``u_c`` and ``l_c`` are treated as
constants of the batch (detached), so the loss cannot shrink by stretching
the line.

Degenerate batches (documented behaviour): fewer than two classes -> 0;
classes with one sample have no line (a point segment at the sample, used
only as a foreign segment), so a batch with one sample per class -> 0;
a class whose samples coincide has ``l_c = 0`` and a zero direction (its
segment is its centroid); NaN embeddings raise ``ValueError``.
"""
from typing import Dict

import torch
import torch.nn as nn
from torch import Tensor

from mmdet.registry import MODELS
from .precision import fp32_loss
from .triplet import check_embeddings


@fp32_loss
def class_line_segments(embeddings: Tensor, labels: Tensor,
                        kappa: float = 1.0):
    """Per-class centroid, unit direction and half-length (see module doc).

    Args:
        embeddings (Tensor): (B, D).
        labels (Tensor): (B, ).
        kappa (float): half-length in standard deviations.

    Returns:
        tuple: ``classes`` (K, ), ``counts`` (K, ), ``centroids`` (K, D)
        (differentiable), ``directions`` (K, D) and ``half_lengths`` (K, )
        (detached), ``inverse`` (B, ) the class index of each sample.
    """
    classes, inverse, counts = torch.unique(labels, return_inverse=True,
                                            return_counts=True)
    k, d = classes.numel(), embeddings.size(1)
    onehot = torch.zeros(k, embeddings.size(0), dtype=embeddings.dtype,
                         device=embeddings.device)
    onehot[inverse, torch.arange(labels.numel(), device=labels.device)] = 1.0
    centroids = onehot @ embeddings / counts[:, None].to(embeddings.dtype)
    directions = embeddings.new_zeros(k, d)
    half_lengths = embeddings.new_zeros(k)
    with torch.no_grad():
        for j in range(k):
            members = embeddings[inverse == j]
            if members.size(0) < 2:
                continue
            centred = members - members.mean(0, keepdim=True)
            vh = torch.linalg.svd(centred, full_matrices=False).Vh
            proj = centred @ vh[0]
            sigma = proj.pow(2).mean().sqrt()
            if sigma > 0:
                directions[j] = vh[0]
                half_lengths[j] = kappa * sigma
    return classes, counts, centroids, directions, half_lengths, inverse


@fp32_loss
def point_segment_distances(x: Tensor, centroids: Tensor, directions: Tensor,
                            half_lengths: Tensor) -> Tensor:
    """Distances from points to segments ``mu + t u, |t| <= l``.

    Args:
        x (Tensor): (B, D).
        centroids, directions (Tensor): (K, D); directions unit or zero.
        half_lengths (Tensor): (K, ).

    Returns:
        Tensor: (B, K).
    """
    diff = x[:, None, :] - centroids[None]                        # (B, K, D)
    t = (diff * directions[None]).sum(-1)                          # (B, K)
    t = torch.maximum(torch.minimum(t, half_lengths[None]),
                      -half_lengths[None])
    resid = diff - t[..., None] * directions[None]
    sq = resid.pow(2).sum(-1)
    zero = sq == 0
    return torch.sqrt(sq + zero.to(sq.dtype) * 1e-16) * (~zero).to(sq.dtype)


@fp32_loss
def daal_loss(embeddings: Tensor, labels: Tensor, margin: float = 0.5,
              kappa: float = 1.0, intra_weight: float = 1.0,
              return_parts: bool = False):
    """DAAL (paper 002; formulation = our reading, see module docstring).

    Args:
        embeddings (Tensor): (B, D).
        labels (Tensor): (B, ) class labels.
        margin (float): m, between own line and nearest foreign line.
        kappa (float): line half-length in standard deviations.
        intra_weight (float): lambda_intra.
        return_parts (bool): also return ``dict(loss_inter, loss_intra)``.

    Returns:
        Tensor or tuple[Tensor, dict]: scalar loss.
    """
    check_embeddings(embeddings, labels)
    zero = embeddings.sum() * 0.0
    parts: Dict[str, Tensor] = dict(loss_inter=zero, loss_intra=zero)
    if torch.unique(labels).numel() < 2:
        return (zero, parts) if return_parts else zero
    classes, counts, mu, u, half, inverse = class_line_segments(
        embeddings, labels, kappa)
    anchors = counts[inverse] >= 2
    if not bool(anchors.any()):
        return (zero, parts) if return_parts else zero
    dist = point_segment_distances(embeddings, mu, u, half)        # (B, K)
    own = dist.gather(1, inverse[:, None])[:, 0]
    foreign = dist.masked_fill(
        torch.nn.functional.one_hot(inverse, classes.numel()).bool(),
        float('inf')).min(1).values
    loss_intra = own[anchors].mean()
    loss_inter = (margin + own - foreign).clamp_min(0.0)[anchors].mean()
    loss = loss_inter + intra_weight * loss_intra
    if return_parts:
        return loss, dict(loss_inter=loss_inter, loss_intra=loss_intra)
    return loss


@MODELS.register_module()
class DAALLoss(nn.Module):
    """Density-Aware Adaptive Line margin loss (paper 002; our formulation,
    see :mod:`bombo.models.losses.daal`).

    Args:
        margin (float): m. Default 0.5.
        kappa (float): line half-length in standard deviations. Default 1.
        intra_weight (float): lambda_intra. Default 1.
        loss_weight (float): multiplier.
    """

    def __init__(self, margin: float = 0.5, kappa: float = 1.0,
                 intra_weight: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.margin, self.kappa = margin, kappa
        self.intra_weight = intra_weight
        self.loss_weight = loss_weight

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Args:
            embeddings (Tensor): (B, D).
            labels (Tensor): (B, ).
        """
        return self.loss_weight * daal_loss(embeddings, labels, self.margin,
                                            self.kappa, self.intra_weight)
