"""Task-Guided Multi-Annotation Triplet Loss (TG-MATL), paper 001 Sec. II-C.

The paper's equations are garbled in the available text; this is the
reconstruction used here (checked against the authors' description and their
public code's behaviour, no code copied):

* Eq. (5), per-sample relevance. With ``X`` (N, F) the min-max normalised box
  features over the training set (``x_if`` in [0, 1]) and
  ``I_f = MI(X[:, f]; y)`` the mutual information of feature f with the class
  labels (``sklearn.feature_selection.mutual_info_classif``)::

      s_i = sum_f x_if * I_f

* Eqs. (6)-(12), per-class selection. For each class c with index set
  ``C_c = {i : y_i = c}`` (``n_c = |C_c|``)::

      k_c   = max(1, floor(rho_top * n_c))                          (7)
      T_c   = the k_c indices of C_c with the largest s_i            (8)
      R_c   = C_c \\ T_c                                             (9)
      r_c   = min(floor(rho_rand * n_c), |R_c|)                     (10)
      U_c   ~ uniform subset of R_c of size r_c, without replacement (11)
      S_c   = T_c  U  U_c                                            (12)

  (the floor and the ``max(1, .)`` follow the reference implementation; ties
  in ``s`` are broken by index, stable sort).
* Eq. (13): ``m_i = 1`` iff ``i`` is in some ``S_c``.
* Eq. (14): ``L_TG = L_MATL`` over the triplets whose anchor and positive are
  selected (``m_a = m_p = 1``); negatives follow the MATL strategy (any sample
  with a different label). This reads Eq. (14) literally. The authors' public
  code instead drops unselected samples from the batch altogether (negatives
  masked too): ``mask_negatives=True`` reproduces that.

The selection is applied within each training batch (as the reference does);
the relevance scores use the training-set normalisation and MI, which the
embedding head takes from the fitted :class:`BoxLabeler`.

Degenerate batches: a class with a single sample keeps it (k_c >= 1) but it
has no positive; with no valid triplet the loss is 0; NaN embeddings raise.
"""
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from mmdet.registry import MODELS
from .matl import matl_loss
from .precision import fp32_loss


def tg_matl_relevance(normed_box_features: np.ndarray,
                      class_labels: np.ndarray,
                      seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Per-sample relevance, TG-MATL Eq. (5), fitted on a set of samples.

    Args:
        normed_box_features (ndarray): (N, F) min-max normalised features.
        class_labels (ndarray): (N, ) class labels.
        seed (int): seed of the MI estimator.

    Returns:
        tuple[ndarray, ndarray]: relevance (N, ) and MI per feature (F, ).
    """
    from bombo.models.task_modules.box_labels import fit_mutual_info
    x = np.asarray(normed_box_features, dtype=np.float64)
    mi = fit_mutual_info(x, np.asarray(class_labels), seed=seed)
    return (x * mi).sum(1), mi


def tg_matl_selection_mask(scores: Tensor,
                           labels: Tensor,
                           top_percent: float = 0.3,
                           random_percent: float = 0.1,
                           random_mode: str = 'random',
                           generator: Optional[torch.Generator] = None
                           ) -> Tensor:
    """Selection mask of TG-MATL, Eqs. (6)-(13) (see the module docstring).

    Args:
        scores (Tensor): (B, ) relevance s_i.
        labels (Tensor): (B, ) class labels.
        top_percent (float): rho_top in [0, 1]. Default 0.3 (reference).
        random_percent (float): rho_rand in [0, 1]. Default 0.1.
        random_mode (str): 'random' (Eq. (11)) or 'next' (the next-ranked
            samples, deterministic; the reference code's variant).
        generator (torch.Generator, optional): for Eq. (11), on CPU.

    Returns:
        Tensor: (B, ) bool mask.
    """
    if not (0 <= top_percent <= 1 and 0 <= random_percent <= 1):
        raise ValueError('top_percent and random_percent must be in [0, 1]')
    if random_mode not in ('random', 'next'):
        raise ValueError("random_mode must be 'random' or 'next'")
    if scores.shape != labels.shape or scores.dim() != 1:
        raise ValueError('scores and labels must both be (B,)')
    if not bool(torch.isfinite(scores).all()):
        raise ValueError('non-finite relevance scores')
    mask = torch.zeros_like(labels, dtype=torch.bool)
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c, as_tuple=True)[0]
        n = idx.numel()
        order = torch.sort(scores[idx], descending=True, stable=True).indices
        ranked = idx[order]
        k_top = max(1, int(np.floor(top_percent * n + 1e-9)))
        rest = ranked[k_top:]
        k_rand = min(int(np.floor(random_percent * n + 1e-9)), rest.numel())
        mask[ranked[:k_top]] = True
        if k_rand > 0:
            if random_mode == 'next':
                mask[rest[:k_rand]] = True
            else:
                perm = torch.randperm(rest.numel(), generator=generator)
                mask[rest[perm[:k_rand].to(rest.device)]] = True
    return mask


@fp32_loss
def tg_matl_loss(embeddings: Tensor,
                 class_labels: Tensor,
                 box_labels: Tensor,
                 scores: Tensor,
                 box_weight: float = 0.5,
                 margin: float = 0.1,
                 top_percent: float = 0.3,
                 random_percent: float = 0.1,
                 random_mode: str = 'random',
                 mask_negatives: bool = False,
                 squared: bool = False,
                 mining: str = 'all',
                 reduction: Optional[str] = None,
                 generator: Optional[torch.Generator] = None,
                 return_mask: bool = False):
    """TG-MATL, Eq. (14): MATL on the triplets with selected anchor and
    positive.

    Args:
        embeddings (Tensor): (B, D).
        class_labels, box_labels (Tensor): (B, ).
        scores (Tensor): (B, ) relevance s_i (Eq. (5)).
        box_weight (float): lambda of Eq. (4). Default 0.5 (TG-MATL).
        margin (float): triplet margin.
        top_percent, random_percent, random_mode, generator: selection
            (:func:`tg_matl_selection_mask`).
        mask_negatives (bool): also restrict negatives to the selection (the
            public code's behaviour). Default False (Eq. (14) as written).
        squared, mining, reduction: as :func:`matl_loss`.
        return_mask (bool): also return the selection mask.
    """
    mask = tg_matl_selection_mask(scores, class_labels, top_percent,
                                  random_percent, random_mode, generator)
    loss = matl_loss(embeddings, class_labels, box_labels, box_weight, margin,
                     squared, mining, reduction, anchor_mask=mask,
                     positive_mask=mask,
                     negative_mask=mask if mask_negatives else None)
    return (loss, mask) if return_mask else loss


@MODELS.register_module()
class TGMATLLoss(nn.Module):
    """Task-Guided MATL (paper 001, Eqs. (5)-(14)).

    Args:
        box_weight (float): lambda. Default 0.5.
        margin (float): triplet margin. Default 0.1.
        top_percent (float): Default 0.3.
        random_percent (float): Default 0.1.
        random_mode (str): 'random' or 'next'.
        mask_negatives (bool): restrict negatives to the selection.
        mining (str): 'all' or 'hard'.
        squared (bool): squared distances.
        reduction (str, optional): per-term reduction.
        seed (int, optional): seeds a private CPU generator for Eq. (11);
            None uses torch's global RNG.
        loss_weight (float): multiplier.
    """

    def __init__(self, box_weight: float = 0.5, margin: float = 0.1,
                 top_percent: float = 0.3, random_percent: float = 0.1,
                 random_mode: str = 'random', mask_negatives: bool = False,
                 mining: str = 'all', squared: bool = False,
                 reduction: Optional[str] = None, seed: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.box_weight, self.margin = box_weight, margin
        self.top_percent, self.random_percent = top_percent, random_percent
        self.random_mode, self.mask_negatives = random_mode, mask_negatives
        self.mining, self.squared, self.reduction = mining, squared, reduction
        self.loss_weight = loss_weight
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(seed)

    def forward(self, embeddings: Tensor, class_labels: Tensor,
                box_labels: Tensor, scores: Tensor) -> Tensor:
        """Args:
            embeddings (Tensor): (B, D).
            class_labels, box_labels, scores (Tensor): (B, ).
        """
        return self.loss_weight * tg_matl_loss(
            embeddings, class_labels, box_labels, scores, self.box_weight,
            self.margin, self.top_percent, self.random_percent,
            self.random_mode, self.mask_negatives, self.squared, self.mining,
            self.reduction, self.generator)
