"""Transforms that give detection-annotated images the Box-for-Mask targets
of BoMBo (Sec. 3.3): the coarse pseudo-mask M^c (loaded from the cache made
by ``tools/make_pseudo_masks.py``) and the box-shaped mask M^b.

Pipeline order for detection-annotated samples::

    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadPseudoMask', pseudo_mask_dir='data/toy/pseudo_masks'),
    dict(type='Resize', ...), dict(type='RandomFlip', ...), dict(type='Pad', ...),
    dict(type='GenerateBoxMask'),
    <pack>

``LoadPseudoMask`` writes ``results['gt_seg_map']`` (so Resize, RandomFlip,
RandomCrop and Pad treat M^c as a semantic map: nearest resizing, padding
with 255); ``GenerateBoxMask`` writes ``results['gt_box_mask']`` (``(H, W)``
uint8) from the *transformed* boxes. The pack transform is expected to copy
``gt_box_mask`` into ``data_sample.gt_box_mask = PixelData(sem_seg=...)``.
"""
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine.fileio import exists, get

from bombo.datasets.pseudo_masks import (IGNORE_INDEX, box_shaped_mask,
                                         coarse_mask, pseudo_mask_key)


def _boxes_labels(results: dict):
    """Regular and ignored boxes of ``results``: ``(boxes (N, 4), labels
    (N,), ignore_boxes (K, 4))``, ``gt_bboxes`` (HorizontalBoxes or array)
    split by ``gt_ignore_flags`` (difficult VOC / crowd COCO instances;
    none ignored when the key is absent), labels as semantic indices
    (detection label + 1)."""
    boxes = results.get('gt_bboxes', np.zeros((0, 4), np.float32))
    if hasattr(boxes, 'tensor'):
        boxes = boxes.tensor.numpy()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(
        results.get('gt_bboxes_labels', np.zeros(0, np.int64)),
        dtype=np.int64).reshape(-1)
    flags = results.get('gt_ignore_flags')
    flags = np.zeros(len(boxes), bool) if flags is None else \
        np.asarray(flags, dtype=bool).reshape(-1)
    if len(flags) != len(boxes):
        raise ValueError(f'{len(boxes)} gt_bboxes but {len(flags)} '
                         f'gt_ignore_flags; image {results.get("img_path")}')
    return boxes[~flags], labels[~flags] + 1, boxes[flags]


def _task(results: dict, key: str):
    if key not in results:
        raise KeyError(f"results has no '{key}' (the annotation task, one "
                       f"of 'det', 'seg', 'both'); image "
                       f"{results.get('img_path')}")
    return results[key]


@TRANSFORMS.register_module()
class LoadPseudoMask(BaseTransform):
    """Load the cached coarse pseudo-mask M^c (BoMBo Sec. 3.3) of a
    detection-annotated image into ``results['gt_seg_map']``.

    The cache is ``<pseudo_mask_dir>/<image file name without
    extension>.png`` (8-bit grey PNG of semantic indices), made offline by
    ``tools/make_pseudo_masks.py``. A missing entry raises
    ``FileNotFoundError`` naming the image and the command that makes the
    cache. Samples of other tasks pass unchanged.

    Args:
        pseudo_mask_dir (str): cache directory.
        cache_source (str): unused, kept so that existing configs still
            build. The error messages name the command for any config,
            ``python tools/make_pseudo_masks.py <the config you train>``
            (a fixed file name here would be wrong for every config that
            inherits the pipeline).
        tasks (Sequence[str]): ``results[task_key]`` values handled.
        task_key (str): key of the annotation task in ``results``.
        suffix (str): cache file extension.
        online (bool): run GrabCut here instead of loading (slow: for small
            data only; must come before any geometric transform).
        grabcut_cfg (dict, optional): keyword arguments of
            :func:`bombo.datasets.pseudo_masks.coarse_mask` for ``online``.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 pseudo_mask_dir: str,
                 cache_source: str = 'CONFIG_OR_SPLIT',
                 tasks: Sequence[str] = ('det', ),
                 task_key: str = 'ann_task',
                 suffix: str = '.png',
                 online: bool = False,
                 grabcut_cfg: Optional[dict] = None,
                 backend_args: Optional[dict] = None):
        self.pseudo_mask_dir = pseudo_mask_dir
        self.cache_source = cache_source
        self.tasks = tuple(tasks)
        self.task_key = task_key
        self.suffix = suffix
        self.online = online
        self.grabcut_cfg = dict(grabcut_cfg or {})
        self.backend_args = backend_args

    def make_cache_hint(self) -> str:
        """How to make the cache (the end of the error messages)."""
        return ('Make the cache (every image of every training dataset whose '
                'pipeline has LoadPseudoMask) with:\n'
                '  python tools/make_pseudo_masks.py <the config you train> '
                '--workers N\n'
                'If you train with --cfg-options (e.g. data_root=... or '
                'another pseudo_mask_dir), give the tool the same '
                f'--cfg-options. This pipeline reads {self.pseudo_mask_dir}.')

    def cache_path(self, img_path: str) -> str:
        return osp.join(self.pseudo_mask_dir,
                        pseudo_mask_key(img_path) + self.suffix)

    def transform(self, results: dict) -> dict:
        if _task(results, self.task_key) not in self.tasks:
            return results
        img_path = results.get('img_path', '')
        shape = tuple(results['img'].shape[:2]) if 'img' in results else \
            tuple(results['ori_shape'][:2])
        if self.online:
            if tuple(results['ori_shape'][:2]) != shape:
                raise RuntimeError(
                    'LoadPseudoMask(online=True) must come before geometric '
                    'transforms (the image is no longer at its original '
                    f'shape): {img_path}')
            boxes, labels, ignore_boxes = _boxes_labels(results)
            mask, _ = coarse_mask(results['img'], boxes, labels,
                                  ignore_boxes=ignore_boxes,
                                  **self.grabcut_cfg)
        else:
            path = self.cache_path(img_path)
            if not exists(path, backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'No pseudo-mask for image {img_path}: {path} does not '
                    f'exist. {self.make_cache_hint()}')
            mask = mmcv.imfrombytes(
                get(path, backend_args=self.backend_args),
                flag='unchanged', backend='cv2')
            if mask is None or mask.ndim != 2:
                raise ValueError(f'pseudo-mask {path} is not a 1-channel '
                                 'PNG of class indices (remake it)')
            if mask.shape != shape:
                raise ValueError(
                    f'pseudo-mask {path} has shape {mask.shape} but image '
                    f'{img_path} has {shape}: stale cache, delete it and '
                    f'remake it. {self.make_cache_hint()}')
        results['gt_seg_map'] = mask.astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(pseudo_mask_dir='
                f'{self.pseudo_mask_dir!r}, tasks={self.tasks}, '
                f'online={self.online})')


@TRANSFORMS.register_module()
class GenerateBoxMask(BaseTransform):
    """Box-shaped mask M^b (BoMBo Sec. 3.3) from the *current* (already
    resized / flipped / cropped / padded) ``gt_bboxes`` and
    ``gt_bboxes_labels``, written to ``results[out_key]`` as an ``(H, W)``
    uint8 map of semantic indices (label + 1; 0 = background, smaller box
    wins) at the shape of ``results['img']``.

    Boxes flagged in ``results['gt_ignore_flags']`` (difficult VOC objects,
    COCO crowd regions, which the detector ignores) are not painted with
    their class: their pixels are set to ``ignore_index`` wherever no regular
    box covers them (a real object, so not background; not trusted by the
    detector, so not a foreground target either; see
    :func:`bombo.datasets.pseudo_masks.box_shaped_mask`). Pixels equal to
    ``ignore_index`` in ``results[ignore_from]`` (padding of the
    pseudo-mask, and its own ignored boxes) are set to ``ignore_index`` as
    well.

    Args:
        tasks (Sequence[str]): ``results[task_key]`` values handled.
        task_key (str): key of the annotation task in ``results``.
        out_key (str): output key.
        ignore_index (int): ignored label.
        ignore_from (str, optional): key of a map whose ignored pixels are
            copied; ``None`` to disable.
    """

    def __init__(self,
                 tasks: Sequence[str] = ('det', ),
                 task_key: str = 'ann_task',
                 out_key: str = 'gt_box_mask',
                 ignore_index: int = 255,
                 ignore_from: Optional[str] = 'gt_seg_map'):
        self.tasks = tuple(tasks)
        self.task_key = task_key
        self.out_key = out_key
        self.ignore_index = ignore_index
        self.ignore_from = ignore_from

    def transform(self, results: dict) -> dict:
        if _task(results, self.task_key) not in self.tasks:
            return results
        boxes, labels, ignore_boxes = _boxes_labels(results)
        shape = tuple(results['img'].shape[:2])
        mask = box_shaped_mask(boxes, labels, shape, ignore_boxes)
        if self.ignore_index != IGNORE_INDEX:  # labels are <= 254
            mask[mask == IGNORE_INDEX] = self.ignore_index
        ref = results.get(self.ignore_from) if self.ignore_from else None
        if ref is not None:
            if ref.shape[:2] != shape:
                raise ValueError(f'{self.ignore_from} has shape {ref.shape} '
                                 f'but the image {shape}')
            mask[ref == self.ignore_index] = self.ignore_index
        results[self.out_key] = mask
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(tasks={self.tasks}, '
                f'out_key={self.out_key!r})')
