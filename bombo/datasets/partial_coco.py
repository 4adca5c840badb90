"""COCO dataset for multi-task partially supervised learning.

A split (``det_train`` / ``seg_train``, written by ``tools/make_splits.py`` as a
COCO json subset) is declared annotated for detection or for segmentation.
For ``'seg'`` splits the instance masks are rasterised into a semantic mask by
the ``InstancesToSemSeg`` transform and the instances themselves are dropped,
so no box reaches the detection head.
"""
import os.path as osp
from typing import List

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .bad_input import SkipCounter
from .partial_voc import check_ann_task


def mask_to_bbox_area(segmentation, height: int, width: int):
    """``([x, y, w, h], area)`` of a COCO ``segmentation`` (polygons,
    uncompressed or compressed RLE), by pycocotools; None if it is empty or
    unreadable."""
    from pycocotools import mask as mask_utils
    try:
        if isinstance(segmentation, list):
            polys = [p for p in segmentation if len(p) >= 6]
            if not polys:
                return None
            rle = mask_utils.merge(
                mask_utils.frPyObjects(polys, height, width))
        elif isinstance(segmentation.get('counts'), list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        area = float(mask_utils.area(rle))
        box = [float(v) for v in mask_utils.toBbox(rle)]
    except Exception:  # malformed polygon / RLE
        return None
    return (box, area) if area > 0 else None


@DATASETS.register_module()
class PartialCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset`` with an ``ann_task`` flag on every image.

    Args:
        ann_task (str): ``'det'``, ``'seg'`` or ``'both'``.

    Real-world jsons are accepted as they come, each repair counted and
    logged (``self.skipped``), never silent:

    * an annotation with a mask but no ``bbox`` (or no ``area``), as
      segmentation-only jsons often are, gets the tight box (and area) of its
      mask (pycocotools); one with neither is dropped;
    * an annotation whose category is not among the dataset's classes is
      dropped (mmdet drops it silently; on a segmentation image it would turn
      into background);
    * a class of ``metainfo`` that the json does not define is an error
      (mmdet would shift every later label by one).

    A missing json raises ``FileNotFoundError`` naming the file and, for the
    partial splits, the ``tools/make_splits.py coco`` command that writes it.

    ``filter_cfg.filter_empty_gt`` drops (counted, logged) detection images
    without a box only: an image without instances is a valid all-background
    segmentation example.
    """

    def __init__(self, *args, ann_task: str = 'det', **kwargs):
        self.ann_task = check_ann_task(ann_task)
        self.skipped = SkipCounter(type(self).__name__)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        if '://' not in str(self.ann_file) and not osp.isfile(self.ann_file):
            hint = ''
            if 'partial' in str(self.ann_file):
                root = osp.dirname(osp.dirname(osp.dirname(self.ann_file)))
                hint = (' Write the detection / segmentation splits with: '
                        f'python tools/make_splits.py coco --coco-root {root}'
                        ' (see docs/data_preparation.md)')
            raise FileNotFoundError(
                f'COCO annotation file {self.ann_file!r} not found.{hint}')
        data_list = super().load_data_list()
        names = getattr(self, '_json_cat_names', None)
        missing = [c for c in self.metainfo['classes']
                   if names is not None and c not in names.values()]
        if not missing and names is not None:
            order = [names[i] for i in self.cat_ids]
            if order != list(self.metainfo['classes']):
                raise ValueError(
                    f'{self.ann_file}: mmdet numbers the classes in the order '
                    f'of their category ids ({order}), but metainfo lists '
                    f'{list(self.metainfo["classes"])}: list the classes in '
                    'category-id order')
        if missing or len(self.cat_ids) != len(self.metainfo['classes']):
            raise ValueError(
                f'{self.ann_file}: the classes {missing} of the dataset '
                "metainfo are not categories of the json (by 'name'): give "
                'metainfo=dict(classes=...) the category names of your json')
        self.skipped.log()
        return data_list

    def _repair_annotations(self, raw_data_info: dict) -> None:
        img = raw_data_info['raw_img_info']
        kept = []
        for ann in raw_data_info['raw_ann_info']:
            where = f'annotation {ann.get("id")} of image {img.get("file_name")}'
            if ann.get('category_id') not in self.cat2label:
                self.skipped.add('category not in classes',
                                 f'{where}: category {ann.get("category_id")}')
                continue
            bbox = ann.get('bbox')
            if not bbox or len(bbox) != 4 or 'area' not in ann:
                fixed = mask_to_bbox_area(ann['segmentation'], img['height'],
                                          img['width']) \
                    if ann.get('segmentation') else None
                if fixed is None and not (bbox and len(bbox) == 4):
                    self.skipped.add('no bbox and no usable mask', where)
                    continue
                if fixed is not None:
                    ann = dict(ann)
                    if not bbox or len(bbox) != 4:
                        ann['bbox'] = fixed[0]
                        self.skipped.add('bbox taken from the mask', where)
                    ann.setdefault('area', fixed[1])
                else:
                    ann = dict(ann, area=float(bbox[2] * bbox[3]))
            kept.append(ann)
        raw_data_info['raw_ann_info'] = kept

    def parse_data_info(self, raw_data_info: dict) -> dict:
        if not hasattr(self, '_json_cat_names') and hasattr(self, 'coco'):
            self._json_cat_names = {
                c['id']: c['name']
                for c in self.coco.dataset.get('categories', [])}
        self._repair_annotations(raw_data_info)
        info = super().parse_data_info(raw_data_info)
        info['ann_task'] = self.ann_task
        if self.ann_task == 'det':
            info['seg_map_path'] = None
        return info

    def filter_data(self) -> List[dict]:
        if self.ann_task == 'seg' or self.test_mode:
            return self.data_list
        before = len(self.data_list)
        kept = super().filter_data()
        if len(kept) < before:
            self.skipped.add('no boxes or too small',
                             f'{before - len(kept)} of {before} images of '
                             f'{self.ann_file}', n=before - len(kept))
            self.skipped.log()
        return kept
