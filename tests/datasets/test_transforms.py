import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from bombo.datasets.transforms.partial import (UNREADABLE, InstancesToSemSeg,
                                               LoadImageOrSkip,
                                               PackPartialInputs)


def test_unreadable_image_skipped_and_counted_or_raised(tmp_path):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not a jpeg at all')
    before = UNREADABLE['unreadable image']
    assert LoadImageOrSkip()(dict(img_path=str(bad))) is None
    assert UNREADABLE['unreadable image'] == before + 1
    with pytest.raises(IOError, match='broken.jpg'):
        LoadImageOrSkip(on_error='raise')(dict(img_path=str(bad)))
    with pytest.raises(IOError, match='missing.jpg'):
        LoadImageOrSkip(on_error='raise')(dict(img_path=str(tmp_path / 'missing.jpg')))


def test_instances_rasterised_smaller_on_top_crowd_ignored_boxes_dropped():
    big = np.zeros((4, 6), np.uint8); big[:, :4] = 1
    small = np.zeros((4, 6), np.uint8); small[1:3, 1:3] = 1
    crowd = np.zeros((4, 6), np.uint8); crowd[:, 5] = 1
    results = dict(
        img_shape=(4, 6),
        gt_masks=BitmapMasks(np.stack([small, big, crowd]), 4, 6),
        gt_bboxes=HorizontalBoxes(np.array([[1, 1, 3, 3], [0, 0, 4, 4], [5, 0, 6, 4]], np.float32)),
        gt_bboxes_labels=np.array([2, 0, 1]),
        gt_ignore_flags=np.array([False, False, True]))
    out = InstancesToSemSeg()(results)
    expected = np.array([[1, 1, 1, 1, 0, 255],
                         [1, 3, 3, 1, 0, 255],
                         [1, 3, 3, 1, 0, 255],
                         [1, 1, 1, 1, 0, 255]])
    np.testing.assert_array_equal(out['gt_seg_map'], expected)
    assert len(out['gt_bboxes']) == 0 and len(out['gt_bboxes_labels']) == 0
    assert len(out['gt_masks']) == 0


def test_pack_records_task_and_box_mask():
    results = dict(img=np.zeros((4, 4, 3), np.uint8), img_id='x', img_path='x.jpg',
                   ori_shape=(4, 4), img_shape=(4, 4), scale_factor=(1, 1),
                   flip=False, flip_direction=None, ann_task='det',
                   gt_box_mask=np.ones((4, 4), np.uint8))
    packed = PackPartialInputs()(results)
    sample = packed['data_samples']
    assert sample.metainfo['ann_task'] == 'det'
    assert sample.gt_box_mask.sem_seg.shape == (1, 4, 4)
