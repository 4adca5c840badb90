"""Task-Guided Multi-Annotation Triplet Loss (TG-MATL), paper 001 Sec. II-C.

The paper's equations are garbled in the available text; this is the
reconstruction used here (checked against the authors' description and their
public code, github.com/GatorSense/Task-Guided-MATL, ``matl/awir_utilities.py``
``compute_per_sample_metric`` and ``matl/awir_custom_losses.py``
``compute_selection_mask_tf``; no code copied):

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
  with a different label).

Reference modes. Where the paper and the authors' public code differ, both
are available; every default is the paper's reading, which is also what this
module computed before the options existed (existing configs unchanged):

=====================  ==========================  ===========================
option                 paper (default)             public code
=====================  ==========================  ===========================
``relevance_features`` ``'shape'``: Eq. (5) on the ``'xcycwh'``: on the box
                       box features of Sec. II-B / centre and size divided
                       III, ``[w, h, w*h,          by the image size,
                       1 - min(w/h, h/w)]`` ("the  ``(xc/W, yc/H, w/W,
                       area and symmetric          h/H)``, then min-max over
                       squareness features are     the set it scores
                       derived from the box
                       annotations")
``mask_negatives``     ``False``: Eq. (14) masks   ``True``: unselected
                       anchors and positives only; samples are dropped from
                       negatives are "sampled      the batch
                       according to the multi-     (``tf.boolean_mask``) before
                       annotation strategy", i.e.  the MATL loss, so they are
                       any other-label sample      not negatives either
``random_mode``        ``'random'``: Eq. (11), a   ``'next'``: the next
                       uniform draw without        ``r_c`` ranked samples
                       replacement from ``R_c``    after ``T_c``
                                                   (deterministic, "next
                                                   percent, no randomness")
=====================  ==========================  ===========================

``relevance_features`` only chooses how the scores passed to the loss are
computed (:func:`relevance_box_features`, :class:`TGMATLRelevance`;
``MATLEmbeddingHead`` reads it from the loss, ``tools/embedding_probe.py``
has ``--tg-relevance``); the loss itself takes the scores. All three
public-code choices together (``relevance_features='xcycwh',
mask_negatives=True, random_mode='next'``) are the reference's
``keras_batch_all_triplet_double_loss_top_random``.

The selection is applied within each training batch (as the reference does);
the relevance scores use the training-set normalisation and MI (for
``'shape'`` the embedding head takes them from the fitted
:class:`BoxLabeler`; for ``'xcycwh'`` from the same file's ``relevance``
entry, fitted on the training set by ``tools/fit_box_labels.py``, or on
each batch when the file lacks it, see
:mod:`bombo.models.heads.matl_embedding_head`).

Degenerate batches: a class with a single sample keeps it (k_c >= 1) but it
has no positive; with no valid triplet the loss is 0; NaN embeddings raise.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

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


RELEVANCE_FEATURES = ('shape', 'xcycwh')
ArrayLike = Union[np.ndarray, Tensor]


def relevance_box_features(boxes: ArrayLike, mode: str = 'shape',
                           image_sizes: Optional[ArrayLike] = None
                           ) -> ArrayLike:
    """Raw (not yet min-max normalised) box features of TG-MATL Eq. (5).

    Args:
        boxes (ndarray | Tensor): (N, 4) xyxy boxes in image pixels.
        mode (str): ``'shape'`` (paper, default): ``[w, h, w*h,
            1 - min(w/h, h/w)]`` (:func:`box_features`); ``'xcycwh'``
            (public code): ``[xc / W, yc / H, w / W, h / H]``.
        image_sizes (ndarray | Tensor, optional): (N, 2) ``(H, W)`` of each
            box's image, for ``'xcycwh'``. None: pixel units (the same after
            min-max normalisation when all images share one size, as the
            reference's 300x300 tiles do).

    Returns:
        Same type as ``boxes``: (N, 4).
    """
    from bombo.models.task_modules.box_labels import box_features
    if mode not in RELEVANCE_FEATURES:
        raise ValueError(f'relevance_features must be one of '
                         f'{RELEVANCE_FEATURES}, got {mode!r}')
    if mode == 'shape':
        return box_features(boxes)
    torch_in = isinstance(boxes, Tensor)
    b = boxes.float() if torch_in else np.asarray(
        boxes, dtype=np.float64).reshape(-1, 4)
    cat = torch.stack if torch_in else np.stack
    feats = cat([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                 b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    if image_sizes is None:
        return feats
    if torch_in:
        hw = torch.as_tensor(image_sizes, dtype=feats.dtype,
                             device=feats.device).reshape(-1, 2)
    else:
        hw = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    if len(hw) != len(feats):
        raise ValueError(f'{len(hw)} image sizes for {len(feats)} boxes')
    if not bool((hw > 0).all()):
        raise ValueError('image sizes must be positive')
    w_img, h_img = hw[:, 1], hw[:, 0]
    return feats / cat([w_img, h_img, w_img, h_img], 1)


class TGMATLRelevance:
    """Fitted TG-MATL Eq. (5): per-feature min/max and MI of a training set.

    ``fit`` then ``score`` on the same boxes is the reference's
    ``compute_per_sample_metric`` (min-max and MI fitted on the set scored),
    seeded; scoring other boxes clips their normalised features to [0, 1].
    For ``'shape'`` the figures equal
    :meth:`BoxLabeler.relevance` of a labeler fitted on the same boxes with
    the same seed.

    Args:
        feat_min, feat_max, mutual_info (Sequence[float]): (4, ) each.
        mode (str): ``'shape'`` or ``'xcycwh'``.
    """

    def __init__(self, feat_min: Sequence[float], feat_max: Sequence[float],
                 mutual_info: Sequence[float], mode: str = 'shape') -> None:
        if mode not in RELEVANCE_FEATURES:
            raise ValueError(f'relevance_features must be one of '
                             f'{RELEVANCE_FEATURES}, got {mode!r}')
        self.feat_min = np.asarray(feat_min, dtype=np.float64)
        self.feat_max = np.asarray(feat_max, dtype=np.float64)
        self.mutual_info = np.asarray(mutual_info, dtype=np.float64)
        self.mode = mode

    @classmethod
    def fit(cls, boxes: np.ndarray, class_labels: np.ndarray,
            mode: str = 'shape', image_sizes: Optional[np.ndarray] = None,
            seed: int = 0) -> 'TGMATLRelevance':
        """Fit min/max and MI on (N, 4) xyxy ``boxes`` and their labels."""
        from sklearn.preprocessing import MinMaxScaler
        feats = relevance_box_features(boxes, mode, image_sizes)
        if len(feats) < 2:
            raise ValueError('TG-MATL relevance needs at least two boxes')
        if len(class_labels) != len(feats):
            raise ValueError(f'{len(class_labels)} labels for {len(feats)} '
                             'boxes')
        scaler = MinMaxScaler().fit(feats)
        _, mi = tg_matl_relevance(scaler.transform(feats), class_labels, seed)
        return cls(scaler.data_min_, scaler.data_max_, mi, mode)

    def normalise(self, feats: ArrayLike) -> ArrayLike:
        """Min-max with the fitted range, clipped to [0, 1]."""
        span = np.where(self.feat_max - self.feat_min > 0,
                        self.feat_max - self.feat_min, 1.0)
        if isinstance(feats, Tensor):
            lo = feats.new_tensor(self.feat_min)
            return ((feats - lo) / feats.new_tensor(span)).clamp(0.0, 1.0)
        return np.clip((feats - self.feat_min) / span, 0.0, 1.0)

    def score(self, boxes: ArrayLike,
              image_sizes: Optional[ArrayLike] = None) -> ArrayLike:
        """Relevance s_i (Eq. (5)) of (N, 4) xyxy boxes, numpy or torch."""
        normed = self.normalise(relevance_box_features(boxes, self.mode,
                                                       image_sizes))
        mi = (normed.new_tensor(self.mutual_info) if isinstance(
            normed, Tensor) else self.mutual_info)
        return (normed * mi).sum(1)

    def to_dict(self) -> Dict:
        return dict(mode=self.mode, feat_min=self.feat_min.tolist(),
                    feat_max=self.feat_max.tolist(),
                    mutual_info=self.mutual_info.tolist())


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
        random_mode (str): 'random' (paper Eq. (11), default) or 'next'
            (the next-ranked samples, deterministic; the public code's).
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
            public code's behaviour: unselected samples dropped from the
            batch). Default False (Eq. (14) as written).
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
        random_mode (str): ``'random'`` (paper Eq. (11), default) or
            ``'next'`` (public code: the next-ranked samples).
        mask_negatives (bool): restrict negatives to the selection (public
            code). Default False (paper Eq. (14)).
        relevance_features (str): how the caller computes the scores of
            Eq. (5) (:func:`relevance_box_features`): ``'shape'`` (paper,
            default) or ``'xcycwh'`` (public code). Read by
            ``MATLEmbeddingHead`` and ``tools/embedding_probe.py``; the loss
            itself takes the scores.
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
                 loss_weight: float = 1.0,
                 relevance_features: str = 'shape') -> None:
        super().__init__()
        if random_mode not in ('random', 'next'):
            raise ValueError("random_mode must be 'random' or 'next', got "
                             f'{random_mode!r}')
        if relevance_features not in RELEVANCE_FEATURES:
            raise ValueError(f'relevance_features must be one of '
                             f'{RELEVANCE_FEATURES}, got '
                             f'{relevance_features!r}')
        self.relevance_features = relevance_features
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
