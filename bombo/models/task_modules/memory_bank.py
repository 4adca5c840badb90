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
        self._enqueue(embeddings, labels)

    def _enqueue(self, embeddings: Tensor, labels: Tensor) -> None:
        """Queue keys for all classes at once (no loop over classes, no
        host synchronisation): key ``k`` of class ``c``, the ``r``-th of its
        class in this push, is kept if it is among the class's last
        ``size_per_class`` and written at ``ptr[c] + r'`` (mod size), ``r'``
        its rank among the kept ones, which is what a per-class FIFO push of
        the kept keys in order does."""
        if labels.numel() == 0:
            return
        size = self.size_per_class
        labels = labels.to(self.keys.device)
        onehot = F.one_hot(labels, self.num_classes)  # (K, C)
        rank = onehot.cumsum(0).gather(1, labels[:, None])[:, 0] - 1
        n_cls = onehot.sum(0)  # (C,)
        skip = (n_cls - size).clamp_min(0)  # oldest new keys not kept
        keep = rank >= skip[labels]
        lab = labels[keep]
        pos = (self.ptr[lab] + rank[keep] - skip[lab]) % size
        self.keys[lab, pos] = embeddings[keep]
        n = n_cls.clamp_max(size)
        self.ptr.copy_((self.ptr + n) % size)
        self.count.copy_((self.count + n).clamp_max(size))

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
        """All stored keys and their classes: class by class, each class's
        keys oldest first (one host synchronisation, for the count).

        Returns:
            tuple: ``(keys (K, D), labels (K,))``.
        """
        size = self.size_per_class
        j = torch.arange(size, device=self.keys.device)[None]  # (1, S)
        full = (self.count == size)[:, None]
        # a full queue starts at ptr (its oldest key); a partial one at 0
        slot = torch.where(full, (j + self.ptr[:, None]) % size, j)
        valid = j < self.count[:, None]  # (C, S)
        keys = self.keys.gather(
            1, slot[..., None].expand(-1, -1, self.dim))[valid]
        labels = torch.arange(self.num_classes, device=self.keys.device)[
            :, None].expand(-1, size)[valid]
        return keys, labels

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

    The whole batch is done at once (:func:`_object_weights`; one transfer
    of the masks to the host, one batched matrix product); keys come image
    by image, class by class (increasing), component by component, as a
    per-image loop gives them.

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
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    if gt_sem_seg.ndim == 4:
        gt_sem_seg = gt_sem_seg[:, 0]
    b, d, h, w = feats.shape
    empty = (feats.new_zeros((0, d)),
             torch.zeros(0, dtype=torch.long, device=feats.device))
    seg = gt_sem_seg.detach().cpu().numpy()  # one transfer for the batch
    weights, image, rank, classes = _object_weights(
        seg, (h, w), mode, ignore_index, min_pixels, connectivity)
    if not len(classes):
        return empty
    image = torch.from_numpy(image).to(feats.device)
    rank = torch.from_numpy(rank).to(feats.device)
    flat = feats.flatten(2).transpose(1, 2)  # (B, h*w, D)
    if isinstance(weights, np.ndarray):  # dense (B, Kmax, h*w)
        weights = torch.from_numpy(weights).to(feats)
        # per image: (Kmax, h*w) @ (h*w, D), the weighted sums of objects
        sums = torch.bmm(weights, flat)[image, rank]
        den = weights.sum(2)[image, rank]
    else:  # sparse (object, cell, weight) triplets: many objects
        obj, cell, wt = (torch.from_numpy(a).to(feats.device)
                         for a in weights)
        wt = wt.to(feats.dtype)
        sums = feats.new_zeros((len(classes), d)).index_add_(
            0, obj, wt[:, None] * flat[image[obj], cell])
        den = feats.new_zeros(len(classes)).index_add_(0, obj, wt)
    mean = sums / den[:, None].clamp_min(1e-12)
    keys = F.normalize(mean, dim=1)
    return keys, torch.from_numpy(classes).to(feats.device)


#: largest dense weight array (B x Kmax x h x w entries) of
#: :func:`segmentation_keys`; beyond it the weights are sparse triplets
DENSE_WEIGHTS_MAX = 1 << 24


def _object_weights(seg: np.ndarray, size: Tuple[int, int], mode: str,
                    ignore_index: int, min_pixels: int, connectivity: int):
    """The objects of a batch of masks and their weights on the feature
    grid, for the whole batch at once.

    The only loop is ``cv2.connectedComponents`` on each (image,
    class) pair present (``mode='component'``; none for ``'class'``): the
    labelling itself. The pairs come in image order, classes increasing, and
    within a pair in cv2's label order, the order of the per-image,
    per-class loop. Weights: the fraction of each feature cell covered by
    the object (area interpolation of its mask), counted from the object's
    pixels when the mask is a whole multiple of the feature grid (always
    for the padded batch and a stride-4 ``z``), else from
    ``F.interpolate(mode='area')`` of the objects' masks.

    Returns:
        tuple: ``weights``: dense (B, Kmax, h*w) float32 (zero rows pad
        images with fewer objects) or, beyond :data:`DENSE_WEIGHTS_MAX`
        entries, ``(object, cell, weight)`` triplets; ``image`` (K,) and
        ``rank`` (K,) int64 (the row of object k in the dense weights),
        ``classes`` (K,) int64 (semantic index - 1); objects in image,
        class, component order.
    """
    b, height, width = seg.shape
    h, w = size
    if seg.size and seg.min() < 0:
        raise ValueError('gt_sem_seg holds negative labels')
    top = int(seg.max()) + 1 if seg.size else 1
    none = (np.zeros((b, 0, h * w), np.float32), np.zeros(0, np.int64),
            np.zeros(0, np.int64), np.zeros(0, np.int64))
    # object pixels of the batch and their (image, class) pair code
    pix = np.flatnonzero((seg != 0) & (seg != ignore_index))
    if not len(pix):
        return none
    pair_code = (pix // (height * width)) * top + seg.ravel()[pix]
    present = np.bincount(pair_code, minlength=b * top) > 0
    pairs = np.flatnonzero(present)  # image-major, class increasing
    tile_img, tile_cls = pairs // top, pairs % top
    tile_of = np.full(b * top, -1, np.int64)
    tile_of[pairs] = np.arange(len(pairs))
    pix_tile = tile_of[pair_code]
    if mode == 'class':  # one object per pair
        pix_obj = pix_tile
        area = np.bincount(pix_tile, minlength=len(pairs))
        obj_tile = np.arange(len(pairs))
    else:
        labels = np.zeros((len(pairs), height, width), np.int32)
        first = np.zeros(len(pairs) + 1, np.int64)  # first object per tile
        small = seg.astype(np.uint8) if top <= 256 else seg
        for t, (i, c) in enumerate(zip(tile_img, tile_cls)):
            n, labels[t] = cv2.connectedComponents(
                (small[i] == c).view(np.uint8), connectivity=connectivity,
                ltype=cv2.CV_32S)
            first[t + 1] = first[t] + n - 1
        obj_tile = np.repeat(np.arange(len(pairs)), np.diff(first))
        pix_obj = first[pix_tile] + labels.reshape(len(pairs), -1)[
            pix_tile, pix % (height * width)] - 1
        area = np.bincount(pix_obj, minlength=int(first[-1]))
    keep = area >= min_pixels
    if not keep.any():
        return none
    image = tile_img[obj_tile[keep]]
    classes = tile_cls[obj_tile[keep]] - 1
    per_img = np.bincount(image, minlength=b)
    kmax = int(per_img.max())
    rank = np.arange(len(image)) - (np.cumsum(per_img) - per_img)[image]
    # row of every object in the (B * Kmax) weight rows; -1: dropped
    row = np.full(len(area), -1, np.int64)
    row[keep] = image * kmax + rank
    obj_row = row[pix_obj]
    pix, obj_row = pix[obj_row >= 0], obj_row[obj_row >= 0]
    y = (pix // width) % height
    x = pix % width
    out = (image.astype(np.int64), rank.astype(np.int64),
           classes.astype(np.int64))
    if height % h == 0 and width % w == 0:
        sy, sx = height // h, width // w
        code = obj_row * (h * w) + (y // sy) * w + x // sx
        if b * kmax * h * w <= DENSE_WEIGHTS_MAX:
            counts = np.bincount(code, minlength=b * kmax * h * w)
            weights = (counts / (sy * sx)).astype(np.float32)
            return (weights.reshape(b, kmax, h * w), ) + out
        code, counts = np.unique(code, return_counts=True)
        obj = np.arange(len(image))
        obj_of_row = np.zeros(b * kmax, np.int64)
        obj_of_row[image * kmax + rank] = obj
        return ((obj_of_row[code // (h * w)], code % (h * w),
                 (counts / (sy * sx)).astype(np.float32)), ) + out
    # area interpolation of each object's full-size mask, image by image
    # (only when the mask is no whole multiple of the feature grid)
    obj_img = image
    tri = ([], [], [])
    for i in np.unique(obj_img):
        objs = np.flatnonzero(obj_img == i)
        mine = (obj_row // kmax) == i
        masks = np.zeros((len(objs), height * width), np.float32)
        masks[obj_row[mine] % kmax, y[mine] * width + x[mine]] = 1
        wts = F.interpolate(
            torch.from_numpy(masks).view(-1, 1, height, width), size=(h, w),
            mode='area').view(len(objs), -1).numpy()
        r, c = np.nonzero(wts)
        tri[0].append(objs[r])
        tri[1].append(c)
        tri[2].append(wts[r, c])
    return (tuple(np.concatenate(t) for t in tri), ) + out
