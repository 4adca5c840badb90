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


@pytest.mark.parametrize('source', ['YOUR_CONFIG.py', None])
def test_missing_cache_entry_error(tmp_path, source):
    """The message names the real command for any config (the base configs
    pass the placeholder 'YOUR_CONFIG.py'; the default is another one)."""
    kw = {} if source is None else dict(cache_source=source)
    t = LoadPseudoMask(pseudo_mask_dir=str(tmp_path / 'cache'), **kw)
    with pytest.raises(FileNotFoundError) as e:
        t(_results(tmp_path))
    msg = str(e.value)
    assert 'a001.jpg' in msg and str(tmp_path / 'cache' / 'a001.png') in msg
    assert ('python tools/make_pseudo_masks.py <the config you train>'
            in msg)
    assert '--cfg-options' in msg and 'data_root' in msg
    assert 'YOUR_CONFIG' not in msg and 'CONFIG_OR_SPLIT' not in msg
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


def test_generate_box_mask_ignored_boxes(tmp_path):
    """gt_ignore_flags (difficult / crowd): 255 in M^b where no regular box
    covers the pixel, after the geometric transforms; non-square image,
    5 classes."""
    boxes = np.array([[2, 3, 12, 15],     # label 0
                      [10, 5, 30, 20],    # label 4, ignored (difficult)
                      [25, 2, 40, 9],     # label 2
                      [33, 20, 43, 29],   # label 3, ignored (crowd)
                      [35, 22, 40, 26]],  # label 1, inside the crowd box
                     np.float32)
    r = dict(img=np.zeros((30, 44, 3), np.uint8),
             img_path=str(tmp_path / 'b.jpg'), ori_shape=(30, 44),
             img_shape=(30, 44), ann_task='det',
             gt_bboxes=HorizontalBoxes(boxes),
             gt_bboxes_labels=np.array([0, 4, 2, 3, 1]),
             gt_ignore_flags=np.array([False, True, False, True, False]))
    r = Resize(scale=(66, 60), keep_ratio=False)(r)  # x1.5 wide, x2 high
    r = RandomFlip(prob=1.0, direction='horizontal')(r)
    r = GenerateBoxMask(ignore_from=None)(r)
    mb = r['gt_box_mask']
    assert mb.shape == (60, 66)
    moved = boxes * np.array([1.5, 2, 1.5, 2], np.float32)
    moved[:, [0, 2]] = 66 - moved[:, [2, 0]]
    keep = np.array([True, False, True, False, True])
    expected = box_shaped_mask(moved[keep], np.array([1, 3, 2]), (60, 66),
                               ignore_boxes=moved[~keep])
    np.testing.assert_array_equal(mb, expected)
    assert set(np.unique(mb)) == {0, 1, 2, 3, 255}  # labels 4, 5: ignored
    assert (mb == 255).any() and not (mb == 5).any() and not (mb == 4).any()
    # the regular box inside the crowd box keeps its label
    x1, y1, x2, y2 = moved[4]
    assert (mb[int(y1) + 1:int(y2) - 1, int(x1) + 1:int(x2) - 1] == 2).all()
    # another ignore_index
    r2 = GenerateBoxMask(ignore_from=None, ignore_index=254)(dict(r))
    np.testing.assert_array_equal(r2['gt_box_mask'],
                                  np.where(expected == 255, 254, expected))
    # without gt_ignore_flags every box is regular
    r.pop('gt_ignore_flags')
    r = GenerateBoxMask(ignore_from=None)(r)
    assert not (r['gt_box_mask'] == 255).any()


def test_online_pseudo_mask_ignored_boxes(tmp_path):
    r = _results(tmp_path)
    r['gt_ignore_flags'] = np.array([False, True])
    out = LoadPseudoMask(pseudo_mask_dir='unused', online=True,
                         grabcut_cfg=dict(iterations=1))(r)
    mb = box_shaped_mask(np.array([[1., 2., 7., 9.]]), np.array([1]),
                         (10, 12), ignore_boxes=np.array([[4., 4., 6., 6.]]))
    # the ignored box lies inside the regular one: nothing is 255, and its
    # label (3) never appears
    assert not (out['gt_seg_map'] == 3).any()
    assert not out['gt_seg_map'][mb == 0].any()
    r['gt_bboxes'] = HorizontalBoxes(np.array([[1., 2., 4., 9.],
                                               [5., 4., 11., 8.]],
                                              np.float32))
    out = LoadPseudoMask(pseudo_mask_dir='unused', online=True,
                         grabcut_cfg=dict(iterations=1))(r)
    assert (out['gt_seg_map'][4:8, 5:11] == 255).all()
