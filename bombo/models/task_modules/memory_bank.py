"""Per-class memory bank of object keys for the B4M object triplet loss
(BoMBo, Sec. 3.3, Eq. 4), and the function that makes keys from
segmentation-annotated images.

Class indices here are *detection* labels ``0..C-1`` (``gt_instances.labels``);
semantic index ``j`` (``1..C``, 0 = background) is class ``j - 1``.
"""
from typing import Tuple

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class ClassMemoryBank(nn.Module):
    """FIFO queue of embeddings per class (keys of BoMBo's Eq. 4).

    The queues are buffers: they are saved in checkpoints (``state_dict``)
    and follow ``.to(device)``.

    Under DDP (``torch.distributed`` initialised, world size > 1) with
    ``gather=True`` (default), :meth:`push` is a collective: the keys of
    every rank are gathered (``mmengine.dist.all_gather``, counts first, so
    ranks may push different numbers of keys, zero included) and queued in
    rank order on every rank, so all ranks hold the same bank, the bank of
    one process that saw the whole global batch. Every rank must therefore
    call :meth:`push` at the same points, with zero keys if it has none.
    Not distributed, it is a plain local push.

    Args:
        num_classes (int): number of classes ``C`` (labels ``0..C-1``).
        dim (int): embedding dimension ``D``.
        size_per_class (int): queue length per class; pushing more evicts
            the oldest keys.
        gather (bool): gather the pushed keys across ranks.
    """

    def __init__(self, num_classes: int, dim: int, size_per_class: int,
                 gather: bool = True):
        super().__init__()
        if num_classes < 1 or dim < 1 or size_per_class < 1:
            raise ValueError('num_classes, dim and size_per_class must be '
                             'positive')
        self.num_classes = num_classes
        self.dim = dim
        self.size_per_class = size_per_class
        self.gather = gather
        self.register_buffer('keys',
                             torch.zeros(num_classes, size_per_class, dim))
        # next write position and number of valid keys, per class
        self.register_buffer('ptr', torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer('count',
                             torch.zeros(num_classes, dtype=torch.long))

    @torch.no_grad()
    def push(self, embeddings: Tensor, labels: Tensor) -> None:
        """Append keys; the oldest of a full class queue are evicted.

        With ``gather`` under DDP, a collective: the keys of all ranks are
        pushed, rank 0's first (see the class docstring).

        Args:
            embeddings (Tensor): ``(K, D)``; stored detached. ``K`` may be 0.
            labels (Tensor): ``(K,)`` class indices ``0..C-1``, in the order
                the keys are to be queued.
        """
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f'expected (K, {self.dim}) embeddings, got '
                             f'{tuple(embeddings.shape)}')
        labels = labels.reshape(-1).long()
        if labels.numel() != embeddings.shape[0]:
            raise ValueError('one label per embedding expected')
        if labels.numel() and (labels.min() < 0
                               or labels.max() >= self.num_classes):
            raise ValueError(f'labels must be in 0..{self.num_classes - 1}')
        embeddings = embeddings.detach().to(self.keys)
        if self.gather:
            embeddings, labels = gather_keys(embeddings,
                                             labels.to(self.keys.device))
        for c in labels.unique().tolist():
            new = embeddings[labels == c][-self.size_per_class:]
            n = new.shape[0]
            idx = (self.ptr[c] + torch.arange(n, device=self.keys.device)
                   ) % self.size_per_class
            self.keys[c, idx] = new
            self.ptr[c] = (self.ptr[c] + n) % self.size_per_class
            self.count[c] = torch.clamp(self.count[c] + n,
                                        max=self.size_per_class)

    def get(self, cls: int) -> Tensor:
        """Keys of one class, oldest first.

        Returns:
            Tensor: ``(n, D)``, ``n <= size_per_class`` (0 if empty).
        """
        n = int(self.count[cls])
        if n < self.size_per_class:
            return self.keys[cls, :n]
        return torch.roll(self.keys[cls], -int(self.ptr[cls]), dims=0)

    def all_keys(self) -> Tuple[Tensor, Tensor]:
        """All stored keys and their classes.

        Returns:
            tuple: ``(keys (K, D), labels (K,))``.
        """
        keys = [self.get(c) for c in range(self.num_classes)]
        labels = [torch.full((k.shape[0], ), c, dtype=torch.long,
                             device=self.keys.device)
                  for c, k in enumerate(keys)]
        return torch.cat(keys), torch.cat(labels)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, dim={self.dim}, '
                f'size_per_class={self.size_per_class}, gather={self.gather}')


@torch.no_grad()
def gather_keys(embeddings: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
    """Keys and labels of every rank, concatenated in rank order (a
    collective under DDP; the inputs unchanged when not distributed).

    Ranks may hold different numbers of keys: the counts are gathered first
    and every rank pads to the largest (``all_gather`` needs equal shapes).

    Args:
        embeddings (Tensor): ``(K, D)`` keys of this rank.
        labels (Tensor): ``(K,)`` their labels.

    Returns:
        tuple: ``(keys (sum K, D), labels (sum K,))``.
    """
    from mmengine.dist import all_gather, get_world_size, is_distributed
    if not is_distributed() or get_world_size() < 2:
        return embeddings, labels
    count = torch.tensor([embeddings.shape[0]], device=embeddings.device)
    counts = [int(c) for c in all_gather(count)]
    if max(counts) == 0:
        return embeddings, labels
    pad = max(counts) - embeddings.shape[0]
    keys = all_gather(F.pad(embeddings, (0, 0, 0, pad)))
    labs = all_gather(F.pad(labels, (0, pad)))
    return (torch.cat([k[:n] for k, n in zip(keys, counts)]),
            torch.cat([lab[:n] for lab, n in zip(labs, counts)]))


@torch.no_grad()
def segmentation_keys(feats: Tensor,
                      gt_sem_seg: Tensor,
                      mode: str = 'component',
                      ignore_index: int = 255,
                      min_pixels: int = 1,
                      connectivity: int = 8) -> Tuple[Tensor, Tensor]:
    """Object keys from segmentation-annotated images (BoMBo, Eq. 4 keys).

    The paper takes keys from annotated batches; in a segmentation-annotated
    image an *object* of class ``j`` is taken to be a connected component of
    class ``j`` in the ground-truth mask (``mode='component'``, default: the
    counterpart of a box query, one object each) or the whole region of
    class ``j`` (``mode='class'``). Background (0) and ignored pixels give no
    key. A key is the unit-length mean of the (EMA / teacher) features over
    the object's pixels. When the feature map is smaller than the mask, each
    feature cell is weighted by the fraction of its area covered by the
    object (area interpolation of the object mask), so small objects still
    yield a key.

    Args:
        feats (Tensor): ``(B, D, h, w)`` features (e.g. the teacher's input
            to the logit/attention layers).
        gt_sem_seg (Tensor): ``(B, H, W)`` or ``(B, 1, H, W)`` semantic
            masks, 0 background, ``1..C`` classes, ``ignore_index`` ignored.
        mode (str): ``'component'`` or ``'class'``.
        ignore_index (int): ignored label.
        min_pixels (int): objects with fewer mask pixels give no key.
        connectivity (int): 4 or 8, for ``cv2.connectedComponents``.

    Returns:
        tuple: ``(keys (K, D), labels (K,))``, labels are class indices
        ``0..C-1`` (semantic index minus 1).
    """
    if mode not in ('component', 'class'):
        raise ValueError(f"mode must be 'component' or 'class', got {mode}")
    if gt_sem_seg.ndim == 4:
        gt_sem_seg = gt_sem_seg[:, 0]
    b, d, h, w = feats.shape
    keys, labels = [], []
    seg_np = gt_sem_seg.detach().cpu().numpy()
    for i in range(b):
        objects, classes = [], []
        for j in np.unique(seg_np[i]).tolist():
            if j == 0 or j == ignore_index:
                continue
            region = (seg_np[i] == j).astype(np.uint8)
            if mode == 'class':
                comps = [region]
            else:
                n, comp = cv2.connectedComponents(region,
                                                  connectivity=connectivity)
                comps = [(comp == k).astype(np.uint8) for k in range(1, n)]
            for m in comps:
                if m.sum() >= min_pixels:
                    objects.append(m)
                    classes.append(j - 1)
        if not objects:
            continue
        masks = torch.from_numpy(np.stack(objects)).to(feats)[:, None]
        if masks.shape[-2:] != (h, w):
            masks = F.interpolate(masks, size=(h, w), mode='area')
        weights = masks[:, 0].flatten(1)  # (K, h*w)
        mean = weights @ feats[i].flatten(1).t() / weights.sum(
            1, keepdim=True).clamp_min(1e-12)
        keys.append(F.normalize(mean, dim=1))
        labels.append(torch.tensor(classes, dtype=torch.long,
                                   device=feats.device))
    if not keys:
        return feats.new_zeros((0, d)), torch.zeros(
            0, dtype=torch.long, device=feats.device)
    return torch.cat(keys), torch.cat(labels)
