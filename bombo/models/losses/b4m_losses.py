"""Box-for-Mask losses (BoMBo, Sec. 3.3): L_B4M = L_S + L_alpha + L_object.

* L_S (Eq. 2), the cross-entropy of the predicted mask M against the coarse
  pseudo-mask M^c, is mmdet's ``CrossEntropyLoss`` and needs no new class::

      loss_pseudo_mask=dict(type='CrossEntropyLoss', use_sigmoid=False,
                            ignore_index=255, avg_non_ignore=True,
                            loss_weight=1.0)

  applied to ``(B, C+1, H, W)`` logits and ``(B, H, W)`` long targets, it is
  ``-1/N sum_i log softmax(M_i)[M^c_i]`` with N the non-ignored pixels of
  the batch (all pixels when nothing is ignored, exactly Eq. 2); a batch
  with every pixel ignored gives 0, not NaN. ``tests/models/losses/
  test_b4m_losses.py`` checks it against Eq. 2 computed by hand.
* L_alpha (Eq. 3): :class:`AttentionMSELoss`.
* L_object (Eq. 4): :class:`ObjectTripletLoss`, with the pure parts
  :func:`box_query_embeddings` (queries) and :func:`sample_bank_triplets`
  (which keys are positives/negatives), kept apart so that the loss does not
  know how its triplets were chosen.

Class conventions: semantic channels ``0..C`` (0 = background); box labels
are detection labels ``0..C-1`` whose semantic channel is ``label + 1``; the
memory bank (:class:`bombo.models.task_modules.memory_bank.ClassMemoryBank`)
is indexed by detection labels.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .precision import autocast_disabled, fp32_loss


class _OneHotSquaredError(torch.autograd.Function):
    """Per pixel ``||onehot(t) - alpha||^2`` without the one-hot.

    ``= sum_c alpha_c^2 - alpha_t^2 + (1 - alpha_t)^2`` in fp32 (fp64 for
    fp64 maps). The sum of squares is a reduction, without a full-size
    temporary; the gradient ``2 g (alpha_c - [c == t])`` is the one
    full-size tensor, in alpha's dtype. For fp16/bf16 maps both are
    computed in fp32 one image at a time (the CPU kernels would otherwise
    make an fp32 copy of the whole input).
    """

    @staticmethod
    def forward(ctx, alpha: Tensor, target: Tensor) -> Tensor:
        # target: (B, 1, H, W) long class of every pixel (ignored ones: any)
        dtype = torch.promote_types(alpha.dtype, torch.float32)
        alpha_t = alpha.gather(1, target)[:, 0].to(dtype)
        if alpha.dtype == dtype:
            norm = torch.linalg.vector_norm(alpha, dim=1)
        else:  # the CPU upcasts a whole half input first: one image a time
            norm = torch.stack([
                torch.linalg.vector_norm(a, dim=0, dtype=dtype) for a in alpha
            ])
        ctx.save_for_backward(alpha, target, alpha_t)
        return norm * norm - alpha_t * alpha_t + (1 - alpha_t)**2

    @staticmethod
    def backward(ctx, grad: Tensor):
        alpha, target, alpha_t = ctx.saved_tensors
        g2 = (2 * grad.to(alpha_t.dtype))[:, None]
        grad_alpha = torch.empty_like(alpha,
                                      memory_format=torch.contiguous_format)
        if alpha.dtype == g2.dtype:
            torch.mul(alpha, g2, out=grad_alpha)
        else:  # mixed dtypes: the CPU casts whole inputs; one image a time
            for i in range(len(alpha)):
                torch.mul(alpha[i], g2[i], out=grad_alpha[i])
        # the target channel: 2 g (alpha_t - 1), written through flat indices
        # (scatter_ along the channels copies a half tensor on the CPU)
        b, c, h, w = alpha.shape
        pixels = torch.arange(h * w, device=alpha.device).view(1, h, w)
        images = torch.arange(b, device=alpha.device).view(b, 1, 1)
        flat = (images * c + target[:, 0]) * (h * w) + pixels
        grad_alpha.view(-1).index_put_(
            (flat.view(-1), ),
            (g2[:, 0] * (alpha_t - 1)).to(alpha.dtype).view(-1))
        return grad_alpha, None


def attention_mse_loss(alpha: Tensor, box_mask: Tensor,
                       ignore_index: int = 255) -> Tensor:
    """Attention loss, BoMBo Eq. 3: ``1/N sum_i ||M^b_i - alpha_i||^2``.

    ``M^b_i`` is the one-hot vector (C+1 entries, background included) of
    pixel i of the box-shaped mask; the squared norm sums over the classes,
    the mean runs over the N non-ignored pixels of the whole batch (every
    pixel when nothing is ignored, which is Eq. 3 exactly; ignored pixels
    are e.g. batch padding). All pixels ignored gives 0 (with a graph).

    The one-hot target is never built: per pixel of target class t,
    ``||M^b_i - alpha_i||^2 = sum_c alpha_c^2 - alpha_t^2 + (1 - alpha_t)^2``
    (the same value and gradient), so no int64 ``(B, H, W, C+1)`` one-hot
    (3 GB on COCO at batch 32, 384 px) and no full-size temporary in the
    forward pass; the backward pass makes one tensor, the gradient. Counts,
    squares and the mean are fp32 for fp16/bf16 maps too (AMP), without an
    fp32 copy of the maps; the loss is fp32.

    Args:
        alpha (Tensor): ``(B, C+1, H, W)`` attention maps.
        box_mask (Tensor): ``(B, H, W)`` or ``(B, 1, H, W)`` integer M^b.
        ignore_index (int): label of ignored pixels.

    Returns:
        Tensor: scalar fp32 loss (fp64 for fp64 maps).
    """
    if box_mask.ndim == 4:
        box_mask = box_mask[:, 0]
    if alpha.ndim != 4 or box_mask.shape != (alpha.shape[0], ) + alpha.shape[
            2:]:
        raise ValueError(f'alpha {tuple(alpha.shape)} and box mask '
                         f'{tuple(box_mask.shape)} do not match: expected '
                         '(B, C+1, H, W) and (B, H, W)')
    box_mask = box_mask.long()
    valid = box_mask != ignore_index
    num_ch = alpha.shape[1]
    if bool(((box_mask < 0) | (box_mask >= num_ch))[valid].any()):
        raise ValueError(f'box mask labels must be in 0..{num_ch - 1} or '
                         f'{ignore_index}')
    target = torch.where(valid, box_mask, 0)[:, None]
    with autocast_disabled([alpha.device.type]):
        sq = _OneHotSquaredError.apply(alpha, target)  # (B, H, W)
    # a non-finite alpha anywhere (ignored pixels too) makes its pixel's
    # sum of squares non-finite: checked on the (B, H, W) map
    if not bool(torch.isfinite(sq).all()):
        raise ValueError('non-finite attention maps passed to the attention '
                         'loss; the network has diverged')
    return (sq * valid).sum() / valid.sum().clamp_min(1)


@MODELS.register_module()
class AttentionMSELoss(nn.Module):
    """Attention loss L_alpha of BoMBo (Eq. 3), see
    :func:`attention_mse_loss`.

    The target is one-hot (entries in {0, 1}), so the attention maps should
    be bounded to [0, 1] by the head (a sigmoid): then the MSE is bounded
    and alpha reads as a per-class soft gate on the logits.

    Scale: with ``normalize='none'`` (default, the literal Eq. 3) the loss
    sums the squared error over the C+1 channels, so it starts near
    ``0.9 * (C+1)`` with the head's sigmoid attention (bias 3, alpha ~ 0.95
    everywhere): 18 on VOC, 73 on COCO, against ~2 for the whole detection
    loss. ``normalize='classes'`` divides by C+1 (a per-channel mean squared
    error, ``1/(N (C+1)) sum_i ||M^b_i - alpha_i||^2``), so the initial value
    is ~0.9 whatever the number of classes; it is Eq. 3 times the constant
    ``1/(C+1)``, i.e. the same loss with ``loss_weight / (C+1)``. The
    measurement behind the default is in docs/box_for_mask.md.

    Args:
        loss_weight (float): weight of the loss.
        ignore_index (int): label of ignored pixels of M^b.
        normalize (str): ``'none'`` (Eq. 3 as written) or ``'classes'``
            (divided by the number of channels C+1).
    """

    NORMALIZE = ('none', 'classes')

    def __init__(self, loss_weight: float = 1.0, ignore_index: int = 255,
                 normalize: str = 'none'):
        super().__init__()
        if normalize not in self.NORMALIZE:
            raise ValueError(f'normalize must be one of {self.NORMALIZE}, '
                             f'got {normalize!r}')
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.normalize = normalize

    def forward(self, alpha: Tensor, box_mask: Tensor) -> Tensor:
        """
        Args:
            alpha (Tensor): ``(B, C+1, H, W)``.
            box_mask (Tensor): ``(B, H, W)`` or ``(B, 1, H, W)``.
        """
        loss = attention_mse_loss(alpha, box_mask, self.ignore_index)
        if self.normalize == 'classes':
            loss = loss / alpha.shape[1]
        return self.loss_weight * loss


def _box_cells(box: Sequence[float], scale_x: float, scale_y: float, h: int,
               w: int) -> Optional[Tuple[int, int, int, int]]:
    """Feature cells ``[r0, r1) x [c0, c1)`` of a box given in input pixels:
    the cells whose centre is inside the scaled box; a box too small to
    contain a centre gets the cell that contains its own centre. ``None``
    if the box is outside the map or not finite."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not np.all(np.isfinite([x1, y1, x2, y2])) or x2 <= x1 or y2 <= y1:
        return None
    x1, x2, y1, y2 = x1 * scale_x, x2 * scale_x, y1 * scale_y, y2 * scale_y
    if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
        return None
    c0, c1 = int(np.ceil(x1 - 0.5)), int(np.ceil(x2 - 0.5))
    r0, r1 = int(np.ceil(y1 - 0.5)), int(np.ceil(y2 - 0.5))
    if c1 <= c0:
        c0 = int(np.floor((x1 + x2) / 2))
        c1 = c0 + 1
    if r1 <= r0:
        r0 = int(np.floor((y1 + y2) / 2))
        r1 = r0 + 1
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, w), min(r1, h)
    if c1 <= c0 or r1 <= r0:
        return None
    return c0, r0, c1, r1


@fp32_loss
def box_query_embeddings(feats: Tensor,
                         logits: Tensor,
                         gt_bboxes: List[Tensor],
                         gt_labels: List[Tensor],
                         input_size: Optional[Tuple[int, int]] = None
                         ) -> Tuple[Tensor, Tensor, Tensor, Dict[str, int]]:
    """Queries of BoMBo's Eq. 4: for each ground-truth box B_k, the
    unit-length mean ``z_k`` of the feature vectors over M_k, the pixels of
    the box whose predicted class ``argmax(M_i)`` is the box's class.

    Pixels are feature cells: when the logits are larger than the features
    they are resized to the feature size (bilinear) before the argmax; boxes
    (in input pixels) are scaled to the feature map and a cell belongs to a
    box if its centre is inside (a box smaller than a cell gets the cell of
    its centre). Boxes with no correctly predicted cell are skipped and
    counted (``no_correct_pixel``); boxes outside the map or degenerate are
    counted as ``empty_box``.

    Args:
        feats (Tensor): ``(B, D, h, w)`` features z (input of the logit and
            attention layers).
        logits (Tensor): ``(B, C+1, H', W')`` predicted mask M.
        gt_bboxes (list[Tensor | HorizontalBoxes]): per image ``(n_i, 4)``
            xyxy boxes in input pixels.
        gt_labels (list[Tensor]): per image ``(n_i,)`` labels ``0..C-1``.
        input_size (tuple[int, int], optional): ``(H, W)`` of the frame of
            the boxes; defaults to the logits' size.

    Returns:
        tuple: ``queries (K, D)`` (differentiable w.r.t. ``feats``),
        ``labels (K,)``, ``img_inds (K,)`` (image of each query) and
        ``counts`` (dict of int: ``boxes``, ``no_correct_pixel``,
        ``empty_box``).
    """
    b, d, h, w = feats.shape
    if len(gt_bboxes) != b or len(gt_labels) != b:
        raise ValueError(f'{b} images but {len(gt_bboxes)} box lists and '
                         f'{len(gt_labels)} label lists')
    if input_size is None:
        input_size = tuple(logits.shape[-2:])
    with torch.no_grad():
        if tuple(logits.shape[-2:]) != (h, w):
            logits = F.interpolate(logits.detach(), size=(h, w),
                                   mode='bilinear', align_corners=False)
        pred = logits.argmax(dim=1)  # (B, h, w)
    num_fg = logits.shape[1] - 1
    for labs in gt_labels:
        if labs.numel() and (labs.min() < 0 or labs.max() >= num_fg):
            raise ValueError(f'box labels must be in 0..{num_fg - 1} (logits '
                             f'have {num_fg + 1} channels), got {labs}')
    sx, sy = w / input_size[1], h / input_size[0]
    counts = dict(boxes=0, no_correct_pixel=0, empty_box=0)
    queries, labels, img_inds = [], [], []
    for i in range(b):
        boxes = gt_bboxes[i]
        boxes = getattr(boxes, 'tensor', boxes)  # mmdet HorizontalBoxes
        boxes = boxes.detach().cpu().reshape(-1, 4).tolist()
        labs = gt_labels[i].detach().cpu().reshape(-1).tolist()
        for box, lab in zip(boxes, labs):
            counts['boxes'] += 1
            cells = _box_cells(box, sx, sy, h, w)
            if cells is None:
                counts['empty_box'] += 1
                continue
            c0, r0, c1, r1 = cells
            sel = pred[i, r0:r1, c0:c1] == int(lab) + 1
            if not bool(sel.any()):
                counts['no_correct_pixel'] += 1
                continue
            z = feats[i, :, r0:r1, c0:c1][:, sel]  # (D, |M_k|)
            queries.append(F.normalize(z.mean(dim=1), dim=0))
            labels.append(int(lab))
            img_inds.append(i)
    if not queries:
        return (feats.new_zeros((0, d)),
                torch.zeros(0, dtype=torch.long, device=feats.device),
                torch.zeros(0, dtype=torch.long, device=feats.device),
                counts)
    return (torch.stack(queries),
            torch.tensor(labels, dtype=torch.long, device=feats.device),
            torch.tensor(img_inds, dtype=torch.long, device=feats.device),
            counts)


@fp32_loss
def sample_bank_triplets(queries: Tensor,
                         labels: Tensor,
                         bank_keys: Tensor,
                         bank_labels: Tensor,
                         strategy: str = 'random',
                         generator: Optional[torch.Generator] = None
                         ) -> Tuple[Tensor, Tensor, Tensor, Dict[str, int]]:
    """Choose a positive (same class) and a negative (another class) key
    from the memory bank for each query (BoMBo Eq. 4 leaves the choice
    open).

    Strategies: ``'random'`` (default): a key drawn uniformly among the
    stored keys of the query's class, and one among all stored keys of the
    other classes (so classes are drawn in proportion to their stored keys);
    ``'hard'``: the farthest key of the same class and the nearest key of
    another class (Euclidean distance).

    Args:
        queries (Tensor): ``(K, D)``.
        labels (Tensor): ``(K,)`` class of each query.
        bank_keys (Tensor): ``(M, D)`` stored keys.
        bank_labels (Tensor): ``(M,)`` their classes.
        strategy (str): ``'random'`` or ``'hard'``.
        generator (torch.Generator, optional): for ``'random'``.

    Returns:
        tuple: ``pos (K, D)``, ``neg (K, D)``, ``valid (K,)`` bool (both
        found), and counts (dict of int) ``no_positive`` (class empty in the
        bank) and ``no_negative`` (no key of any other class).
    """
    if strategy not in ('random', 'hard'):
        raise ValueError(f"strategy must be 'random' or 'hard', got "
                         f'{strategy}')
    k = queries.shape[0]
    bank_keys = bank_keys.detach().to(queries)
    bank_labels = bank_labels.to(labels.device)
    same = labels[:, None] == bank_labels[None, :]  # (K, M)
    other = ~same
    has_pos, has_neg = same.any(dim=1), other.any(dim=1)
    counts = dict(no_positive=int((~has_pos).sum()),
                  no_negative=int((has_pos & ~has_neg).sum()))
    valid = has_pos & has_neg
    if k == 0 or bank_keys.shape[0] == 0:
        empty = queries.new_zeros((k, queries.shape[1]))
        return empty, empty.clone(), valid, counts
    if strategy == 'random':
        # rows without candidates get uniform weights; they are invalid
        w_pos = torch.where(has_pos[:, None], same.float(), 1.)
        w_neg = torch.where(has_neg[:, None], other.float(), 1.)
        pos_idx = torch.multinomial(w_pos.cpu(), 1, generator=generator)[:, 0]
        neg_idx = torch.multinomial(w_neg.cpu(), 1, generator=generator)[:, 0]
        pos_idx = pos_idx.to(queries.device)
        neg_idx = neg_idx.to(queries.device)
    else:
        dist = torch.cdist(queries.detach(), bank_keys)
        inf = torch.finfo(dist.dtype).max
        pos_idx = torch.where(same, dist, -inf).argmax(dim=1)
        neg_idx = torch.where(other, dist, inf).argmin(dim=1)
    return bank_keys[pos_idx], bank_keys[neg_idx], valid, counts


@MODELS.register_module()
class ObjectTripletLoss(nn.Module):
    """Object triplet loss L_object of BoMBo (Eq. 4)::

        L_object = sum_k max(0, gamma + d(z_k, z_k+) - d(z_k, z_k-))

    over the ground-truth boxes k of an image; queries ``z_k`` from
    :func:`box_query_embeddings` (current batch), positive/negative keys
    from a per-class memory bank (EMA/teacher features of earlier
    segmentation-annotated batches) chosen by :func:`sample_bank_triplets`;
    d is the Euclidean distance (``F.triplet_margin_loss`` with p=2, whose
    pairwise distance adds eps=1e-6 to the difference), gamma = 0.1.

    Reduction over the batch (Eq. 4 is per image): ``'image_mean'``
    (default) sums over the boxes of each image, exactly Eq. 4, and averages
    over the B images passed (an image without a valid triplet adds 0);
    ``'sum'`` sums over all boxes of the batch; ``'mean'`` averages over the
    valid triplets. Boxes without a correctly predicted pixel and boxes
    whose class (or every other class) is absent from the bank are skipped
    and counted; with no valid triplet the loss is 0 (with a graph).

    Args:
        margin (float): gamma.
        strategy (str): ``'random'`` or ``'hard'``, see
            :func:`sample_bank_triplets`.
        reduction (str): ``'image_mean'``, ``'sum'`` or ``'mean'``.
        loss_weight (float): weight of the loss.
        loss_name (str): key of the loss in the returned dict.
    """

    def __init__(self,
                 margin: float = 0.1,
                 strategy: str = 'random',
                 reduction: str = 'image_mean',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_object'):
        super().__init__()
        if reduction not in ('image_mean', 'sum', 'mean'):
            raise ValueError(f'unknown reduction {reduction}')
        if strategy not in ('random', 'hard'):
            raise ValueError(f'unknown strategy {strategy}')
        self.margin = margin
        self.strategy = strategy
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.loss_name = loss_name

    @fp32_loss
    def forward(self,
                feats: Tensor,
                logits: Tensor,
                gt_bboxes: List[Tensor],
                gt_labels: List[Tensor],
                bank_keys: Tensor,
                bank_labels: Tensor,
                input_size: Optional[Tuple[int, int]] = None,
                generator: Optional[torch.Generator] = None
                ) -> Dict[str, Tensor]:
        """
        Args:
            feats (Tensor): ``(B, D, h, w)`` features z.
            logits (Tensor): ``(B, C+1, H', W')`` predicted mask M.
            gt_bboxes (list[Tensor]): per image ``(n_i, 4)`` xyxy boxes.
            gt_labels (list[Tensor]): per image ``(n_i,)`` labels 0..C-1.
            bank_keys (Tensor): ``(M, D)`` keys, e.g.
                ``ClassMemoryBank.all_keys()[0]``.
            bank_labels (Tensor): ``(M,)`` their labels.
            input_size (tuple[int, int], optional): frame of the boxes.
            generator (torch.Generator, optional): for random sampling.

        Returns:
            dict[str, Tensor]: ``loss_name`` (scalar), and float counters to
            log (no 'loss' in their names, so mmengine does not sum them):
            ``object_triplets``, ``object_skip_no_pixel``,
            ``object_skip_empty_box``, ``object_skip_no_positive``,
            ``object_skip_no_negative``.
        """
        q, lab, img_inds, c1 = box_query_embeddings(feats, logits, gt_bboxes,
                                                    gt_labels, input_size)
        if q.numel() and not bool(torch.isfinite(q).all()):
            raise ValueError('non-finite features z passed to '
                             'ObjectTripletLoss; the network has diverged')
        pos, neg, valid, c2 = sample_bank_triplets(q, lab, bank_keys,
                                                   bank_labels, self.strategy,
                                                   generator)
        if bool(valid.any()):
            per = F.triplet_margin_loss(
                q[valid], pos[valid], neg[valid], margin=self.margin, p=2,
                reduction='none')
            if self.reduction == 'image_mean':
                loss = per.sum() / feats.shape[0]
            elif self.reduction == 'sum':
                loss = per.sum()
            else:
                loss = per.mean()
        else:
            loss = feats.sum() * 0.
        out = {self.loss_name: self.loss_weight * loss}
        stats = dict(object_triplets=int(valid.sum()),
                     object_skip_no_pixel=c1['no_correct_pixel'],
                     object_skip_empty_box=c1['empty_box'],
                     object_skip_no_positive=c2['no_positive'],
                     object_skip_no_negative=c2['no_negative'])
        for key, val in stats.items():
            out[key] = torch.tensor(float(val), device=feats.device)
        return out
