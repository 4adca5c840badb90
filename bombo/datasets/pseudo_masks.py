"""Box-for-Mask pseudo-masks (BoMBo, section 3.3): the box-shaped mask M^b
and the GrabCut coarse mask M^c.

Pure numpy / OpenCV functions; nothing here knows about mmdet or a runner.

Conventions (shared by every function of this module):

* Boxes are ``(N, 4)`` float ``x1, y1, x2, y2`` in continuous pixel
  coordinates (mmdet's convention): pixel ``(r, c)`` covers the square
  ``[c, c + 1) x [r, r + 1)`` and its centre is ``(c + 0.5, r + 0.5)``.
* **Rounding rule: a pixel belongs to a box iff its centre is inside the box**,
  half-open: ``x1 <= c + 0.5 < x2`` and ``y1 <= r + 0.5 < y2``. Hence the
  columns of a box are ``ceil(x1 - 0.5) .. ceil(x2 - 0.5) - 1``. A VOC box
  with 1-based inclusive corners ``xmin..xmax`` read as ``(xmin - 1, xmax)``
  covers exactly the annotated pixels; two boxes sharing an edge never share a
  pixel.
* Labels are *semantic* indices ``1..C`` (0 is background). Masks are
  ``uint8`` ``(H, W)``.
* Priority: where boxes overlap, the smaller box (area of its pixel set) wins;
  ties go to the box that comes later in the input.
* Ignored boxes (``ignore_boxes``: difficult VOC objects, COCO crowd
  regions, i.e. ``ignore_flag=1`` / ``gt_ignore_flags``) are written as
  :data:`IGNORE_INDEX` (255) in M^b and M^c wherever no regular box covers
  the pixel. BoMBo Sec. 3.3 does not say what to do with them; the choice
  here: they are real objects, so their pixels must not teach the class as
  background (0), and the detector itself does not trust them (it ignores
  them), so they are not foreground targets either. The losses of B4M ignore
  255 (``CrossEntropyLoss(ignore_index=255)`` for L_S, ``AttentionMSELoss``
  for L_alpha). GrabCut never runs on them.
"""
import os.path as osp
from collections import Counter
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Reasons for which a box is not segmented by GrabCut but filled instead.
FALLBACK_REASONS = ('too_small', 'no_background', 'flat', 'grabcut_empty',
                    'grabcut_error')
#: Default of ``flat_range`` (grey levels): a crop whose every channel has
#: ``P99 - P1 <= FLAT_RANGE`` is near-flat and not given to GrabCut.
FLAT_RANGE = 4
#: Percentiles of the near-flat test (robust to a few outlier pixels).
FLAT_PERCENTILES = (1, 99)
#: Reasons for which a box is dropped from both M^b and M^c.
SKIP_REASONS = ('outside', 'degenerate')
#: Value of the pixels of ignored boxes (and of padding) in M^b and M^c.
IGNORE_INDEX = 255


def box_to_pixels(box: Sequence[float], shape: Tuple[int, int]
                  ) -> Tuple[Optional[Tuple[int, int, int, int]], str]:
    """Pixel extent of one box after clipping to the image.

    Args:
        box (sequence of 4 float): ``x1, y1, x2, y2``.
        shape (tuple[int, int]): image ``(H, W)``.

    Returns:
        tuple: ``((c0, r0, c1, r1), '')`` with half-open integer pixel ranges
        ``[r0, r1) x [c0, c1)`` (centre rule, see the module docstring), or
        ``(None, reason)`` with reason ``'degenerate'`` (non-finite
        coordinates, or no pixel centre inside the box) or ``'outside'`` (the
        box does not overlap the image).
    """
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in box)
    if not np.all(np.isfinite([x1, y1, x2, y2])):
        return None, 'degenerate'
    if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
        return None, 'outside'
    c0 = max(int(np.ceil(x1 - 0.5)), 0)
    r0 = max(int(np.ceil(y1 - 0.5)), 0)
    c1 = min(int(np.ceil(x2 - 0.5)), w)
    r1 = min(int(np.ceil(y2 - 0.5)), h)
    if c1 <= c0 or r1 <= r0:
        return None, 'degenerate'
    return (c0, r0, c1, r1), ''


def _check_inputs(boxes, labels):
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1)
    if len(boxes) != len(labels):
        raise ValueError(f'{len(boxes)} boxes but {len(labels)} labels')
    if len(labels) and (labels.min() < 1 or labels.max() > 254):
        raise ValueError('labels must be semantic indices in 1..254 '
                         f'(0 = background, 255 = ignore), got {labels}')
    return boxes, labels.astype(np.uint8)


def _painting_order(pixel_boxes):
    """Indices of the valid boxes, largest first (smaller boxes painted last
    win); stable, so with equal areas the later box wins."""
    valid = [i for i, pb in enumerate(pixel_boxes) if pb is not None]
    areas = [(pixel_boxes[i][2] - pixel_boxes[i][0]) *
             (pixel_boxes[i][3] - pixel_boxes[i][1]) for i in valid]
    order = np.argsort(-np.asarray(areas, dtype=np.int64), kind='stable')
    return [valid[j] for j in order]


def ignore_region(ignore_boxes: Optional[np.ndarray],
                  shape: Tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool map of the pixels inside any of ``ignore_boxes``
    (centre rule and clipping of :func:`box_to_pixels`; boxes outside the
    image or without a pixel centre cover nothing)."""
    region = np.zeros(shape, dtype=bool)
    if ignore_boxes is None:
        return region
    for box in np.asarray(ignore_boxes, dtype=np.float64).reshape(-1, 4):
        pb = box_to_pixels(box, shape)[0]
        if pb is not None:
            c0, r0, c1, r1 = pb
            region[r0:r1, c0:c1] = True
    return region


def box_shaped_mask(boxes: np.ndarray, labels: np.ndarray,
                    shape: Tuple[int, int],
                    ignore_boxes: Optional[np.ndarray] = None) -> np.ndarray:
    """Box-shaped mask M^b (BoMBo, Sec. 3.3).

    Every box is filled with its class; the smaller box wins where boxes
    overlap; 0 elsewhere. Boxes are clipped to the image; boxes outside it or
    without any pixel centre are ignored (see :func:`box_to_pixels`).

    Pixels of ``ignore_boxes`` that no regular box covers are set to
    :data:`IGNORE_INDEX` (255): an ignored box (difficult / crowd) is a real
    object, so it must not be background, but the detector does not trust
    it, so it is no foreground target either (see the module docstring). A
    regular box always wins over an ignored one, whatever their sizes.

    Args:
        boxes (np.ndarray): ``(N, 4)`` float ``x1, y1, x2, y2``.
        labels (np.ndarray): ``(N,)`` semantic class indices ``1..C``.
        shape (tuple[int, int]): ``(H, W)``.
        ignore_boxes (np.ndarray, optional): ``(K, 4)`` ignored boxes (no
            labels needed).

    Returns:
        np.ndarray: ``(H, W)`` uint8 mask.
    """
    boxes, labels = _check_inputs(boxes, labels)
    mask = np.zeros(shape, dtype=np.uint8)
    pixel_boxes = [box_to_pixels(b, shape)[0] for b in boxes]
    for i in _painting_order(pixel_boxes):
        c0, r0, c1, r1 = pixel_boxes[i]
        mask[r0:r1, c0:c1] = labels[i]
    mask[ignore_region(ignore_boxes, shape) & (mask == 0)] = IGNORE_INDEX
    return mask


def _as_bgr_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f'expected an (H, W[, 1|3|4]) image, got {img.shape}')
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def is_near_flat(crop: np.ndarray, flat_range: Optional[float] = FLAT_RANGE
                 ) -> bool:
    """Whether every channel of the uint8 ``crop`` spans at most
    ``flat_range`` grey levels between its 1st and 99th percentiles
    (:data:`FLAT_PERCENTILES`; ``np.percentile``'s ``'lower'`` and
    ``'higher'`` ranks, read from a 256-bin histogram: about 0.1 ms on a
    160 x 160 crop); ``None`` never calls a crop flat. A few outlier pixels
    (salt noise, under 1 %) do not make a flat crop textured."""
    if flat_range is None:
        return False
    crop = np.asarray(crop)
    if crop.dtype != np.uint8:
        raise ValueError(f'expected a uint8 crop, got {crop.dtype}')
    pixels = crop.reshape(-1, crop.shape[-1] if crop.ndim == 3 else 1)
    n = len(pixels)
    if n == 0:
        return True
    lo_rank = int(np.floor(FLAT_PERCENTILES[0] / 100 * (n - 1)))
    hi_rank = int(np.ceil(FLAT_PERCENTILES[1] / 100 * (n - 1)))
    for ch in range(pixels.shape[1]):
        cdf = np.cumsum(np.bincount(pixels[:, ch], minlength=256))
        # the k-th smallest value (0-based) is the first v with cdf[v] > k
        lo = np.searchsorted(cdf, lo_rank, side='right')
        hi = np.searchsorted(cdf, hi_rank, side='right')
        if hi - lo > flat_range:
            return False
    return True


def grabcut_box(img: np.ndarray,
                box: Sequence[float],
                iterations: int = 5,
                margin: Optional[float] = 0.1,
                max_side: Optional[int] = 160,
                min_size: int = 4,
                seed: int = 0,
                flat_range: Optional[float] = FLAT_RANGE
                ) -> Tuple[np.ndarray, str]:
    """Foreground of one box by GrabCut (Rother et al. 2004; OpenCV
    ``cv2.grabCut`` with ``GC_INIT_WITH_RECT``), as used for M^c in BoMBo
    Sec. 3.3.

    GrabCut runs on a crop around the box: the box grown by ``margin`` times
    its width (height) on the left and right (top and bottom) sides, clipped
    to the image. The ring between crop and box is the background sample of
    GrabCut; the box is "probably foreground". If the crop's longer side
    exceeds ``max_side`` it is downscaled (``INTER_AREA``) so that it equals
    ``max_side``, and the foreground is upscaled back (bilinear on the 0/1
    mask, threshold 0.5). The result is always inside the box.

    Fallbacks (the box is filled and the reason returned): ``'too_small'``
    (box narrower or lower than ``min_size`` pixels), ``'no_background'``
    (the crop has no pixel outside the box, e.g. the box covers the image),
    ``'flat'`` (the crop GrabCut would see, after the downscale, is
    near-flat: :func:`is_near_flat` with ``flat_range``),
    ``'grabcut_empty'`` (GrabCut found no foreground in the box: a box
    annotates an object, so the box is the better guess), ``'grabcut_error'``
    (OpenCV raised). Degenerate boxes (no pixel centre inside) and boxes
    outside the image return an empty mask with reason ``'degenerate'`` /
    ``'outside'``.

    Near-flat crops are not given to GrabCut. Their colour models are
    degenerate (one or two colours: singular covariances), and OpenCV's
    graph cut then takes 3-20 s on a 160-pixel crop where a textured one
    takes 0.1-0.2 s (measured in ``benchmarks/bench_pseudo_masks.py``), to
    find either nothing (``'grabcut_empty'``: the box again) or an outline
    that no colour supports. The box-shaped mask is the documented answer
    (reason ``'flat'``, counted by :func:`coarse_mask`). The test costs two
    percentiles of the crop (about 0.1 ms); crops that are not near-flat get
    exactly the GrabCut result they had before. A crop is near-flat when
    every channel spans at most ``flat_range`` (default
    :data:`FLAT_RANGE` = 4) grey levels between its 1st and 99th percentiles:
    JPEG noise on a flat wall or sky, a uniform padding colour, a few salt
    pixels on a flat area. An object that differs from its surroundings by
    at most 4 grey levels in every channel is lost to it (the box is kept).

    Args:
        img (np.ndarray): ``(H, W, 3)`` uint8 image (channel order does not
            matter to GrabCut's colour models), or ``(H, W)`` grey.
        box (sequence of 4 float): ``x1, y1, x2, y2``.
        iterations (int): GrabCut iterations.
        margin (float | None): crop margin as a fraction of the box size on
            each side; ``None`` runs GrabCut on the whole image.
        max_side (int | None): downscale the crop if its longer side is
            larger; ``None`` or 0 never downscales.
        min_size (int): smaller boxes (in pixels, either side) fall back.
        seed (int): OpenCV RNG seed set before the call (GrabCut's GMM
            initialisation uses k-means), so results do not depend on the
            order in which a process handles boxes.
        flat_range (float | None): near-flat threshold in grey levels (see
            above); ``None`` gives every crop to GrabCut (the old path).

    Returns:
        tuple: ``(mask, reason)``, mask ``(H, W)`` bool, reason ``''`` when
        GrabCut's result is used.
    """
    img = _as_bgr_uint8(img)
    h, w = img.shape[:2]
    mask = np.zeros((h, w), dtype=bool)
    pb, reason = box_to_pixels(box, (h, w))
    if pb is None:
        return mask, reason
    c0, r0, c1, r1 = pb
    bw, bh = c1 - c0, r1 - r0
    if bw < min_size or bh < min_size:
        mask[r0:r1, c0:c1] = True
        return mask, 'too_small'

    if margin is None:
        x0, y0, x1, y1 = 0, 0, w, h
    else:
        mx, my = int(np.ceil(margin * bw)), int(np.ceil(margin * bh))
        x0, y0 = max(c0 - mx, 0), max(r0 - my, 0)
        x1, y1 = min(c1 + mx, w), min(r1 + my, h)
    if (x1 - x0) * (y1 - y0) == bw * bh:
        mask[r0:r1, c0:c1] = True
        return mask, 'no_background'

    crop = img[y0:y1, x0:x1]
    rect = np.array([c0 - x0, r0 - y0, bw, bh], dtype=np.float64)
    scale = 1.0
    if max_side and max(crop.shape[:2]) > max_side:
        scale = max_side / max(crop.shape[:2])
        size = (max(int(round(crop.shape[1] * scale)), 1),
                max(int(round(crop.shape[0] * scale)), 1))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        rect = rect * scale
    ch, cw = crop.shape[:2]
    rx, ry = int(np.floor(rect[0])), int(np.floor(rect[1]))
    rx2 = min(int(np.ceil(rect[0] + rect[2])), cw)
    ry2 = min(int(np.ceil(rect[1] + rect[3])), ch)
    if (rx2 - rx) * (ry2 - ry) >= cw * ch:
        mask[r0:r1, c0:c1] = True
        return mask, 'no_background'
    if is_near_flat(crop, flat_range):
        mask[r0:r1, c0:c1] = True
        return mask, 'flat'

    gc_mask = np.zeros((ch, cw), dtype=np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    try:
        cv2.grabCut(crop, gc_mask, (rx, ry, rx2 - rx, ry2 - ry), bgd, fgd,
                    iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        mask[r0:r1, c0:c1] = True
        return mask, 'grabcut_error'
    fg = ((gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD))
    if scale != 1.0:
        fg = cv2.resize(fg.astype(np.float32), (x1 - x0, y1 - y0),
                        interpolation=cv2.INTER_LINEAR) > 0.5
    full = np.zeros((h, w), dtype=bool)
    full[y0:y1, x0:x1] = fg
    mask[r0:r1, c0:c1] = full[r0:r1, c0:c1]
    if not mask.any():
        mask[r0:r1, c0:c1] = True
        return mask, 'grabcut_empty'
    return mask, ''


def coarse_mask(img: np.ndarray,
                boxes: np.ndarray,
                labels: np.ndarray,
                iterations: int = 5,
                margin: Optional[float] = 0.1,
                max_side: Optional[int] = 160,
                min_size: int = 4,
                seed: int = 0,
                flat_range: Optional[float] = FLAT_RANGE,
                box_mask: Optional[np.ndarray] = None,
                ignore_boxes: Optional[np.ndarray] = None
                ) -> Tuple[np.ndarray, Dict]:
    """Coarse pseudo-mask M^c (BoMBo, Sec. 3.3).

    GrabCut (:func:`grabcut_box`) per box; the foregrounds are written with
    the smaller-box priority of :func:`box_shaped_mask`, then cut by M^b:
    ``M^c_i = 0`` wherever no regular box covers pixel i. Pixels of
    ``ignore_boxes`` that no regular box covers are :data:`IGNORE_INDEX`
    (255), as in :func:`box_shaped_mask` (ignored boxes are real objects the
    detector does not trust: neither background nor foreground targets);
    GrabCut does not run on them. Inside a regular box, GrabCut decides.

    Args:
        img (np.ndarray): ``(H, W, 3)`` uint8 image.
        boxes (np.ndarray): ``(N, 4)`` float ``x1, y1, x2, y2``.
        labels (np.ndarray): ``(N,)`` semantic class indices ``1..C``.
        iterations, margin, max_side, min_size, seed, flat_range: see
            :func:`grabcut_box` (near-flat crops fall back to the box,
            counted as ``fallback['flat']``).
        box_mask (np.ndarray, optional): M^b if already computed; its 255
            pixels are 255 in M^c too.
        ignore_boxes (np.ndarray, optional): ``(K, 4)`` ignored boxes.

    Returns:
        tuple: ``(mask, stats)``; mask ``(H, W)`` uint8; stats a dict with
        ``boxes`` (input count), ``grabcut`` (boxes segmented by GrabCut),
        ``fallback`` (Counter reason -> boxes filled instead), ``skipped``
        (Counter reason -> boxes dropped: ``'outside'``, ``'degenerate'``)
        and ``ignored`` (number of ignored boxes).
    """
    boxes, labels = _check_inputs(boxes, labels)
    shape = np.asarray(img).shape[:2]
    stats = dict(boxes=len(boxes), grabcut=0, fallback=Counter(),
                 skipped=Counter(),
                 ignored=len(np.asarray(ignore_boxes).reshape(-1, 4))
                 if ignore_boxes is not None else 0)
    mask = np.zeros(shape, dtype=np.uint8)
    pixel_boxes = []
    for box in boxes:
        pb, reason = box_to_pixels(box, shape)
        pixel_boxes.append(pb)
        if pb is None:
            stats['skipped'][reason] += 1
    for i in _painting_order(pixel_boxes):
        fg, reason = grabcut_box(img, boxes[i], iterations=iterations,
                                 margin=margin, max_side=max_side,
                                 min_size=min_size, seed=seed,
                                 flat_range=flat_range)
        if reason:
            stats['fallback'][reason] += 1
        else:
            stats['grabcut'] += 1
        mask[fg] = labels[i]
    if box_mask is None:
        box_mask = box_shaped_mask(boxes, labels, shape)
    ignored = (box_mask == IGNORE_INDEX) | (
        (box_mask == 0) & ignore_region(ignore_boxes, shape))
    mask[box_mask == 0] = 0
    mask[ignored] = IGNORE_INDEX
    return mask, stats


def pseudo_mask_key(img_path: str) -> str:
    """Cache key of an image: its file name without extension (the cache
    is ``<pseudo_mask_dir>/<key>.png``; ``tools/make_pseudo_masks.py`` and
    ``LoadPseudoMask`` both use this)."""
    return osp.splitext(osp.basename(img_path))[0]
