"""Transforms for partially annotated images."""
import logging
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
from mmdet.registry import TRANSFORMS
from mmengine.logging import print_log
from mmengine.structures import PixelData

from ..bad_input import SkipCounter

#: process-wide count of images that could not be read (see LoadImageOrSkip)
UNREADABLE = SkipCounter('LoadImageOrSkip')


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadImageFromFile):
    """``LoadImageFromFile`` that turns an unreadable image into a clear,
    counted event.

    Args:
        on_error (str): ``'skip'`` (training default): log a warning naming the
            file, count it in ``bombo.datasets.transforms.partial.UNREADABLE``
            and return ``None``, so that mmengine's dataset draws another
            image; ``'raise'``: raise an ``IOError`` naming the file (use it
            for validation and test, where every image must be evaluated).
    """

    def __init__(self, on_error: str = 'skip', **kwargs):
        if on_error not in ('skip', 'raise'):
            raise ValueError("on_error must be 'skip' or 'raise'")
        super().__init__(**kwargs)
        self.on_error = on_error

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            out = super().transform(results)
            failed = out is None or out.get('img') is None
            reason = 'decoder returned nothing'
        except Exception as e:  # unreadable, truncated, missing
            failed, reason = True, f'{type(e).__name__}: {e}'
        if not failed:
            return out
        msg = f'cannot read image {filename!r} ({reason})'
        if self.on_error == 'raise':
            raise IOError(msg)
        UNREADABLE.add('unreadable image', msg)
        print_log(msg + f'; skipped ({UNREADABLE.total()} so far)',
                  logger='current', level=logging.WARNING)
        return None


def check_seg_map(seg: np.ndarray, results: dict, ignore_index: int = 255,
                  what: str = 'mask') -> np.ndarray:
    """Validate a semantic map right after it is read (before any resize).

    Raises ``ValueError`` naming the file for what would otherwise crash deep
    in torch or mmengine, or be silently wrong: a 3-channel (RGB) PNG instead
    of class indices (``dim must be 2 or 3``), a map whose size differs from
    its image's (Resize would silently stretch one of the same aspect), and
    labels above the dataset's classes (``Target 100 is out of bounds``;
    checked when the dataset puts ``num_classes`` in the results, as bombo's
    datasets do). Returns the map as ``uint8`` ``(H, W)``.
    """
    path = results.get('seg_map_path') or results.get('img_path')
    if seg is None:
        raise IOError(f'cannot read the {what} {path!r}')
    if seg.ndim == 3 and seg.shape[2] == 1:
        seg = seg[..., 0]
    if seg.ndim != 2:
        raise ValueError(
            f'{what} {path!r} has shape {seg.shape}: a semantic mask must be '
            'a 1-channel PNG of class indices (VOC palette "P" or grey "L"), '
            'not an RGB rendering. Convert it (e.g. map the VOC colours back '
            'to indices) or write it with tools/convert_sbd.py')
    ori = results.get('ori_shape')
    if ori is not None and tuple(seg.shape) != tuple(ori[:2]):
        raise ValueError(
            f'{what} {path!r} is {seg.shape[0]}x{seg.shape[1]} but its image '
            f'{results.get("img_path")!r} is {ori[0]}x{ori[1]}: they must '
            'have the same size (a resized or wrong mask?)')
    n = results.get('num_classes')
    if n is not None:
        labels = np.unique(seg)
        bad = labels[(labels > n) & (labels != ignore_index)]
        if len(bad):
            raise ValueError(
                f'{what} {path!r} holds labels {bad.tolist()} but the dataset '
                f'has {n} classes (0 = background, 1..{n}, {ignore_index} = '
                'ignore): wrong class list (metainfo) or a mask of another '
                'dataset')
    return seg.astype(np.uint8, copy=False)


@TRANSFORMS.register_module()
class LoadPartialAnnotations(LoadAnnotations):
    """mmdet's ``LoadAnnotations`` whose semantic map is checked as it is
    read (:func:`check_seg_map`): an RGB mask, a mask of another size than its
    image, or labels beyond the classes give a clear error naming the file.
    Same arguments as ``LoadAnnotations``.
    """

    def _load_seg_map(self, results: dict) -> None:
        try:
            super()._load_seg_map(results)
        except (OSError, ValueError) as e:
            raise IOError(f'cannot read the mask {results.get("seg_map_path")!r}'
                          f' ({type(e).__name__}: {e})') from e
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = check_seg_map(
                results['gt_seg_map'], results,
                results.get('ignore_index', 255))


@TRANSFORMS.register_module()
class InstancesToSemSeg(BaseTransform):
    """Rasterise instance masks into a semantic mask (COCO segmentation splits).

    Writes ``gt_seg_map`` (0 = background, ``label + 1`` for objects,
    ``ignore_index`` on crowd / ignored instances). Larger instances are drawn
    first so that a smaller object lying on a larger one stays visible (the
    same smaller-wins priority as Box-for-Mask's box-shaped mask). With
    ``drop_instances=True`` (default) the boxes and masks are then removed:
    a segmentation-annotated image must not give boxes to the detector.

    The canvas has the masks' own size (the original image size when the
    annotations are loaded after ``Resize`` for evaluation).

    Required keys: ``gt_masks``, ``gt_bboxes_labels``, ``gt_ignore_flags``,
    ``img_shape``. Added key: ``gt_seg_map``.
    """

    def __init__(self, ignore_index: int = 255, drop_instances: bool = True):
        self.ignore_index = ignore_index
        self.drop_instances = drop_instances

    def transform(self, results: dict) -> dict:
        masks = results.get('gt_masks')
        # masks loaded after Resize (evaluation) stay at the original size
        h, w = (masks.height, masks.width) if masks is not None else \
            results['ori_shape'][:2]
        ori = results.get('ori_shape')
        if ori is not None and (h, w) != tuple(ori[:2]):
            raise ValueError(
                f'the annotation of {results.get("img_path")!r} says the '
                f'image is {h}x{w} (COCO "height"/"width") but the file is '
                f'{ori[0]}x{ori[1]}: fix the json')
        seg = np.zeros((h, w), dtype=np.uint8)
        if masks is not None and len(masks) > 0:
            bitmaps = masks.to_ndarray().astype(bool)
            labels = results['gt_bboxes_labels']
            ignore = results.get('gt_ignore_flags',
                                 np.zeros(len(labels), bool))
            order = np.argsort(-bitmaps.reshape(len(bitmaps), -1).sum(1),
                               kind='stable')
            for i in order:
                seg[bitmaps[i]] = (self.ignore_index
                                   if ignore[i] else labels[i] + 1)
        results['gt_seg_map'] = seg
        results['ignore_index'] = self.ignore_index
        if self.drop_instances:
            for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags',
                        'gt_masks'):
                value = results.get(key)
                if value is not None:
                    results[key] = value[np.zeros(len(value), dtype=bool)]
        return results


@TRANSFORMS.register_module()
class PackPartialInputs(PackDetInputs):
    """``PackDetInputs`` that also records which task an image is annotated
    for (``ann_task`` in the metainfo) and packs Box-for-Mask's box-shaped
    mask (``gt_box_mask`` → ``data_sample.gt_box_mask``) when present."""

    def __init__(self, meta_keys=('img_id', 'img_path', 'ori_shape',
                                  'img_shape', 'scale_factor', 'flip',
                                  'flip_direction', 'ann_task'), **kwargs):
        super().__init__(meta_keys=meta_keys, **kwargs)

    def transform(self, results: dict) -> dict:
        results.setdefault('ann_task', 'both')
        packed = super().transform(results)
        if 'gt_box_mask' in results:
            import torch
            packed['data_samples'].gt_box_mask = PixelData(
                sem_seg=torch.from_numpy(
                    np.ascontiguousarray(results['gt_box_mask'][None])))
        return packed
