import cv2
import numpy as np
import pytest
from mmdet.datasets.transforms import Pad, RandomFlip, Resize
from mmdet.structures.bbox import HorizontalBoxes

from bombo.datasets.pseudo_masks import box_shaped_mask
from bombo.datasets.transforms.pseudo_mask import (GenerateBoxMask,
                                                   LoadPseudoMask)


def _results(tmp_path, task='det'):
    img = np.zeros((10, 12, 3), np.uint8)
    return dict(img=img, img_path=str(tmp_path / 'imgs' / 'a001.jpg'),
                ori_shape=(10, 12), img_shape=(10, 12), ann_task=task,
                gt_bboxes=HorizontalBoxes(np.array([[1., 2., 7., 9.],
                                                    [4., 4., 6., 6.]],
                                                   np.float32)),
                gt_bboxes_labels=np.array([0, 2]),
                gt_ignore_flags=np.array([False, False]))


def test_missing_cache_entry_error(tmp_path):
    t = LoadPseudoMask(pseudo_mask_dir=str(tmp_path / 'cache'),
                       cache_source='configs/toy/b4m.py')
    with pytest.raises(FileNotFoundError) as e:
        t(_results(tmp_path))
    msg = str(e.value)
    assert 'a001.jpg' in msg
    assert ('python tools/make_pseudo_masks.py configs/toy/b4m.py --out '
            f'{tmp_path / "cache"}') in msg
    # other tasks pass untouched, without looking for a cache
    r = t(_results(tmp_path, 'seg'))
    assert 'gt_seg_map' not in r


def test_load_then_geometric_then_box_mask(tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    mc = np.zeros((10, 12), np.uint8)
    mc[3:8, 2:6] = 1
    cv2.imwrite(str(cache / 'a001.png'), mc)
    r = LoadPseudoMask(pseudo_mask_dir=str(cache))(_results(tmp_path))
    np.testing.assert_array_equal(r['gt_seg_map'], mc)
    r = Resize(scale=(24, 20), keep_ratio=False)(r)
    r = RandomFlip(prob=1.0, direction='horizontal')(r)
    r = Pad(size=(24, 24))(r)
    r = GenerateBoxMask()(r)
    mb = r['gt_box_mask']
    assert mb.shape == (24, 24) == r['gt_seg_map'].shape
    # boxes doubled and flipped in a 24-wide image: [1,2,7,9] -> [10,4,22,18]
    expected = box_shaped_mask(np.array([[10, 4, 22, 18], [12, 8, 16, 12]]),
                               np.array([1, 3]), (24, 24))
    expected[:, 24:] = 255  # (no padding in width)
    expected[20:, :] = 255  # padded rows are ignored
    np.testing.assert_array_equal(mb, expected)
    # the pseudo-mask went through the same geometry
    flipped = np.zeros((20, 24), np.uint8)
    flipped[6:16, 12:20] = 1
    np.testing.assert_array_equal(r['gt_seg_map'][:20], flipped)


def test_stale_cache_and_online(tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    cv2.imwrite(str(cache / 'a001.png'), np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match='stale cache'):
        LoadPseudoMask(pseudo_mask_dir=str(cache))(_results(tmp_path))
    t = LoadPseudoMask(pseudo_mask_dir='unused', online=True,
                       grabcut_cfg=dict(iterations=1))
    r = t(_results(tmp_path))
    assert r['gt_seg_map'].shape == (10, 12)
    mb = box_shaped_mask(np.array([[1., 2., 7., 9.], [4., 4., 6., 6.]]),
                         np.array([1, 3]), (10, 12))
    assert not r['gt_seg_map'][mb == 0].any()
    with pytest.raises(KeyError, match='ann_task'):
        r = _results(tmp_path)
        del r['ann_task']
        t(r)
