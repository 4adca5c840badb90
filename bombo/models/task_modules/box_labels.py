"""MATL "box labels": discrete labels from box geometry (paper 000, Sec. II-B;
TG-MATL paper 001, Sec. II-B "a discrete geometric label ... constructed
using a predefined discretization scheme over the box feature space").

Pipeline (fitted once on the training annotations, saved, then applied to
every box):

1. box features ``[width, height, area, symmetric squareness]`` with
   symmetric squareness ``1 - min(w/h, h/w)`` (0 for a square, -> 1 for a
   thin box), the four features of the MATL / TG-MATL reference;
2. min-max normalisation with the training set's per-feature min and max
   (``sklearn.preprocessing.MinMaxScaler``); applied boxes are clipped to
   [0, 1], as the reference does for held-out boxes;
3. K-means (K = 3 by default, the paper's elbow choice; seeded) on the
   normalised features (``sklearn.cluster.KMeans``); a box's label is its
   nearest centre;
4. optionally, for TG-MATL, the mutual information of each normalised feature
   with the class label (``sklearn.feature_selection.mutual_info_classif``),
   stored with the fit so that relevance scores (TG-MATL Eq. (5)) can be
   computed for any box at training time.

The fit is saved as JSON (no pickle): numbers only, safe to load.
Application (:meth:`BoxLabeler.features`, :meth:`BoxLabeler.predict`,
:meth:`BoxLabeler.relevance`) works on numpy arrays and on torch tensors on
any device, so the embedding head labels boxes without leaving the GPU.
"""
import json
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]
FEATURE_NAMES = ('width', 'height', 'area', 'symmetric_squareness')
EPS = 1e-12


def box_features(boxes: ArrayLike) -> ArrayLike:
    """Raw box features (MATL Sec. II-B).

    Args:
        boxes (ndarray | Tensor): (N, 4) boxes ``x1, y1, x2, y2``.

    Returns:
        Same type as ``boxes``: (N, 4) ``[w, h, w*h, 1 - min(w/h, h/w)]``
        (``min(w/h, h/w) = min(w, h) / max(w, h)``); degenerate boxes (w or
        h = 0) get squareness 1.
    """
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.float()
        w = (boxes[:, 2] - boxes[:, 0]).clamp_min(0)
        h = (boxes[:, 3] - boxes[:, 1]).clamp_min(0)
        big = torch.maximum(w, h)
        ratio = torch.where(big > 0, torch.minimum(w, h) / big.clamp_min(EPS),
                            torch.zeros_like(big))
        return torch.stack([w, h, w * h, 1.0 - ratio], dim=1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 0)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    big = np.maximum(w, h)
    ratio = np.where(big > 0, np.minimum(w, h) / np.maximum(big, EPS), 0.0)
    return np.stack([w, h, w * h, 1.0 - ratio], axis=1)


class BoxLabeler:
    """Fitted box-label model: feature min/max, K-means centres and (optional)
    per-feature mutual information with the class.

    Args:
        feat_min (Sequence[float]): (F, ) training minima.
        feat_max (Sequence[float]): (F, ) training maxima.
        centers (Sequence[Sequence[float]]): (K, F) K-means centres in the
            normalised space.
        mutual_info (Sequence[float], optional): (F, ) MI of each feature with
            the class label (TG-MATL Eq. (5)).
        meta (dict, optional): provenance (seed, dataset, inertia, ...).
        relevance (dict, optional): TG-MATL relevance statistics fitted on
            the same training set in other feature spaces, by mode:
            ``{'xcycwh': TGMATLRelevance.to_dict()}`` (written by
            ``tools/fit_box_labels.py`` when the images' sizes are known;
            read by ``MATLEmbeddingHead`` for
            ``TGMATLLoss(relevance_features='xcycwh')``). The ``'shape'``
            statistics are this labeler's own ``feat_min``/``feat_max``/
            ``mutual_info``.
    """

    def __init__(self, feat_min: Sequence[float], feat_max: Sequence[float],
                 centers: Sequence[Sequence[float]],
                 mutual_info: Optional[Sequence[float]] = None,
                 meta: Optional[Dict] = None,
                 relevance: Optional[Dict[str, Dict]] = None) -> None:
        self.feat_min = np.asarray(feat_min, dtype=np.float64)
        self.feat_max = np.asarray(feat_max, dtype=np.float64)
        self.centers = np.asarray(centers, dtype=np.float64)
        self.mutual_info = (None if mutual_info is None else np.asarray(
            mutual_info, dtype=np.float64))
        self.meta = dict(meta or {})
        self.relevance_fits = {k: dict(v)
                               for k, v in (relevance or {}).items()}
        if self.centers.ndim != 2 or \
                self.centers.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f'centers must be (K, {len(FEATURE_NAMES)})')

    @property
    def num_clusters(self) -> int:
        return self.centers.shape[0]

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, boxes: np.ndarray, class_labels: Optional[np.ndarray] = None,
            n_clusters: int = 3, seed: int = 0,
            n_init: int = 10) -> 'BoxLabeler':
        """Fit on the training set's boxes.

        Args:
            boxes (ndarray): (N, 4) xyxy boxes in original image pixels.
            class_labels (ndarray, optional): (N, ) class labels; when given,
                the per-feature mutual information is fitted as well.
            n_clusters (int): K. Default 3 (MATL).
            seed (int): seed of K-means and of the MI estimator.
            n_init (int): K-means restarts.

        Returns:
            BoxLabeler
        """
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import MinMaxScaler
        feats = box_features(boxes)
        if len(feats) < n_clusters:
            raise ValueError(f'{len(feats)} boxes cannot make {n_clusters} '
                             'clusters')
        scaler = MinMaxScaler().fit(feats)
        normed = scaler.transform(feats)
        km = KMeans(n_clusters=n_clusters, random_state=seed,
                    n_init=n_init).fit(normed)
        mi = None
        if class_labels is not None:
            mi = fit_mutual_info(normed, np.asarray(class_labels), seed=seed)
        meta = dict(n_clusters=n_clusters, seed=seed, num_boxes=len(feats),
                    inertia=float(km.inertia_),
                    cluster_sizes=np.bincount(km.labels_,
                                              minlength=n_clusters).tolist(),
                    feature_names=list(FEATURE_NAMES))
        return cls(scaler.data_min_, scaler.data_max_, km.cluster_centers_,
                   mi, meta)

    # ---------------------------------------------------------------- apply
    def _const(self, arr: np.ndarray, like: ArrayLike) -> ArrayLike:
        if isinstance(like, torch.Tensor):
            return torch.as_tensor(arr, dtype=like.dtype, device=like.device)
        return arr

    def features(self, boxes: ArrayLike) -> ArrayLike:
        """Normalised features in [0, 1], (N, 4), numpy or torch like input."""
        feats = box_features(boxes)
        lo = self._const(self.feat_min, feats)
        span = self._const(np.where(self.feat_max - self.feat_min > 0,
                                    self.feat_max - self.feat_min, 1.0), feats)
        normed = (feats - lo) / span
        if isinstance(normed, torch.Tensor):
            return normed.clamp(0.0, 1.0)
        return np.clip(normed, 0.0, 1.0)

    def predict(self, boxes: ArrayLike) -> ArrayLike:
        """Box labels (N, ) int64: index of the nearest K-means centre."""
        normed = self.features(boxes)
        centers = self._const(self.centers, normed)
        if isinstance(normed, torch.Tensor):
            return torch.cdist(normed, centers).argmin(dim=1)
        d = ((normed[:, None, :] - centers[None]) ** 2).sum(-1)
        return d.argmin(axis=1).astype(np.int64)

    def relevance(self, boxes: ArrayLike) -> ArrayLike:
        """TG-MATL per-sample relevance (Eq. (5)) with the stored MI."""
        if self.mutual_info is None:
            raise ValueError('this BoxLabeler was fitted without class '
                             'labels: no mutual information for TG-MATL '
                             'relevance; refit with tools/fit_box_labels.py')
        normed = self.features(boxes)
        return (normed * self._const(self.mutual_info, normed)).sum(1)

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> Dict:
        return dict(
            feature_names=list(FEATURE_NAMES),
            feat_min=self.feat_min.tolist(), feat_max=self.feat_max.tolist(),
            centers=self.centers.tolist(),
            mutual_info=None if self.mutual_info is None else
            self.mutual_info.tolist(),
            meta=self.meta, relevance=self.relevance_fits)

    def save(self, path: str) -> None:
        with open(path, 'w') as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def load(cls, path: str) -> 'BoxLabeler':
        with open(path) as f:
            d = json.load(f)
        if list(d.get('feature_names', [])) != list(FEATURE_NAMES):
            raise ValueError(f'{path}: unexpected feature names '
                             f'{d.get("feature_names")}')
        return cls(d['feat_min'], d['feat_max'], d['centers'],
                   d.get('mutual_info'), d.get('meta'), d.get('relevance'))


def fit_mutual_info(normed_features: np.ndarray, class_labels: np.ndarray,
                    seed: int = 0) -> np.ndarray:
    """MI of each (continuous) feature column with the class label
    (TG-MATL Eq. (15), estimated by ``mutual_info_classif``)."""
    from sklearn.feature_selection import mutual_info_classif
    if len(np.unique(class_labels)) < 2:
        return np.zeros(normed_features.shape[1])
    return mutual_info_classif(normed_features, class_labels,
                               discrete_features=False, random_state=seed)


def elbow_inertias(boxes: np.ndarray, k_values: Sequence[int] = range(1, 9),
                   seed: int = 0, n_init: int = 10) -> List[float]:
    """K-means inertia for each K on the normalised box features (the elbow
    curve MATL uses to choose K)."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import MinMaxScaler
    normed = MinMaxScaler().fit_transform(box_features(boxes))
    return [float(KMeans(n_clusters=k, random_state=seed,
                         n_init=n_init).fit(normed).inertia_)
            for k in k_values]
