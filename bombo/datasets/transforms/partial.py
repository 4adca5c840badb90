"""Transforms for partially annotated images."""
import logging
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmdet.datasets.transforms import PackDetInputs
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
            results['img_shape'][:2]
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
