"""COCO dataset for multi-task partially supervised learning.

A split (``det_train`` / ``seg_train``, written by ``tools/make_splits.py`` as a
COCO json subset) is declared annotated for detection or for segmentation.
For ``'seg'`` splits the instance masks are rasterised into a semantic mask by
the ``InstancesToSemSeg`` transform and the instances themselves are dropped,
so no box reaches the detection head.
"""
from typing import List

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .bad_input import SkipCounter
from .partial_voc import check_ann_task


@DATASETS.register_module()
class PartialCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset`` with an ``ann_task`` flag on every image.

    Args:
        ann_task (str): ``'det'``, ``'seg'`` or ``'both'``.

    ``filter_cfg.filter_empty_gt`` drops (counted, logged) detection images
    without a box only: an image without instances is a valid all-background
    segmentation example.
    """

    def __init__(self, *args, ann_task: str = 'det', **kwargs):
        self.ann_task = check_ann_task(ann_task)
        self.skipped = SkipCounter(type(self).__name__)
        super().__init__(*args, **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> dict:
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
