import numpy as np
import pytest

from bombo.datasets.pseudo_masks import (FALLBACK_REASONS, FLAT_RANGE,
                                         box_shaped_mask, box_to_pixels,
                                         coarse_mask, grabcut_box,
                                         is_near_flat)


def test_box_shaped_mask_smaller_box_wins():
    boxes = np.array([[0, 0, 6, 5], [2, 1, 4, 4], [5, 3, 8, 6]], float)
    labels = np.array([1, 2, 3])
    expected = np.array([
        [1, 1, 1, 1, 1, 1, 0, 0],
        [1, 1, 2, 2, 1, 1, 0, 0],
        [1, 1, 2, 2, 1, 1, 0, 0],
        # box 3 (area 9) is smaller than box 1 (area 30): it wins at col 5
        [1, 1, 2, 2, 1, 3, 3, 3],
        [1, 1, 1, 1, 1, 3, 3, 3],
        [0, 0, 0, 0, 0, 3, 3, 3],
    ], np.uint8)
    mask = box_shaped_mask(boxes, labels, (6, 8))
    np.testing.assert_array_equal(mask, expected)
    # the priority does not depend on the input order
    order = [2, 1, 0]
    np.testing.assert_array_equal(
        box_shaped_mask(boxes[order], labels[order], (6, 8)), expected)


def test_box_shaped_mask_equal_area_later_wins_and_empty():
    boxes = np.array([[0, 0, 2, 2], [1, 0, 3, 2]], float)
    mask = box_shaped_mask(boxes, np.array([1, 2]), (2, 3))
    np.testing.assert_array_equal(mask, [[1, 2, 2], [1, 2, 2]])
    empty = box_shaped_mask(np.zeros((0, 4)), np.zeros(0, int), (3, 4))
    assert empty.shape == (3, 4) and empty.dtype == np.uint8
    assert not empty.any()


def test_centre_rule_and_clipping():
    # centre of column 0 is 0.5: inside [0.4, 1.6), so are columns 0 and 1
    assert box_to_pixels([0.4, 0, 1.6, 1], (4, 4)) == ((0, 0, 2, 1), '')
    # 0.6 > 0.5: column 0 out; 1.5 < 1.55: column 1 in
    assert box_to_pixels([0.6, 0, 1.55, 1], (4, 4)) == ((1, 0, 2, 1), '')
    # no pixel centre inside
    assert box_to_pixels([0.6, 0, 1.4, 1], (4, 4)) == (None, 'degenerate')
    assert box_to_pixels([-3, -2, 2, 9], (4, 4)) == ((0, 0, 2, 4), '')
    assert box_to_pixels([5, 0, 9, 2], (4, 4)) == (None, 'outside')
    assert box_to_pixels([np.nan, 0, 2, 2], (4, 4)) == (None, 'degenerate')
    with pytest.raises(ValueError, match='labels'):
        box_shaped_mask(np.zeros((1, 4)), np.array([0]), (2, 2))


def synthetic(h=96, w=112, seed=0):
    """Noisy two-tone background, one red ellipse; returns image, truth,
    and its box (with a few pixels of slack)."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float64)
    img[:] = (60, 140, 90)
    img[:, w // 2:] = (120, 110, 60)
    yy, xx = np.mgrid[:h, :w]
    truth = ((xx - 55) / 26.0)**2 + ((yy - 46) / 18.0)**2 <= 1
    img[truth] = (30, 30, 210)
    img += rng.normal(0, 12, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(truth)
    box = [xs.min() - 3, ys.min() - 3, xs.max() + 4, ys.max() + 4]
    return img, truth, box


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize('margin,max_side', [(0.5, 160), (0.5, 32),
                                             (None, None)])
def test_grabcut_recovers_clear_object(margin, max_side):
    img, truth, box = synthetic()
    fg, reason = grabcut_box(img, box, iterations=5, margin=margin,
                             max_side=max_side)
    assert reason == ''
    assert fg.shape == truth.shape
    assert iou(fg, truth) >= 0.8
    # the box-filled mask is worse than GrabCut here
    filled = box_shaped_mask(np.array([box], float), np.array([1]),
                             truth.shape) > 0
    assert iou(fg, truth) > iou(filled, truth)


def test_grabcut_fallbacks():
    img, _, _ = synthetic()
    fg, reason = grabcut_box(img, [10, 10, 13, 30], min_size=4)
    assert reason == 'too_small'
    assert fg.sum() == 3 * 20 and fg[10:30, 10:13].all()
    # a box covering the whole image leaves no background sample
    fg, reason = grabcut_box(img, [0, 0, 112, 96])
    assert reason == 'no_background' and fg.all()
    fg, reason = grabcut_box(img, [200, 10, 230, 40])
    assert reason == 'outside' and not fg.any()
    # a uniform image: near-flat, not given to GrabCut: filled
    flat = np.full((40, 40, 3), 128, np.uint8)
    fg, reason = grabcut_box(flat, [10, 10, 30, 30])
    assert reason == 'flat'
    assert fg[10:30, 10:30].all() and fg.sum() == 400
    # the old path: GrabCut cannot find an object (or errors): filled
    fg, reason = grabcut_box(flat, [10, 10, 30, 30], flat_range=None)
    if reason:
        assert reason in ('grabcut_empty', 'grabcut_error')
        assert fg[10:30, 10:30].all() and fg.sum() == 400


def test_coarse_mask_inside_boxes_and_counts():
    img, truth, box = synthetic()
    boxes = np.array([box, [70, 5, 100, 30], [2, 2, 5, 5],
                      [300, 300, 310, 310]], float)
    labels = np.array([2, 1, 3, 1])
    mb = box_shaped_mask(boxes, labels, truth.shape)
    mc, stats = coarse_mask(img, boxes, labels, box_mask=mb)
    assert mc.dtype == np.uint8 and mc.shape == truth.shape
    # M^c is inside the boxes (cut by M^b)
    assert not mc[mb == 0].any()
    # every labelled pixel of M^c carries the label of a box covering it
    for lab in (1, 2, 3):
        sel = mc == lab
        covered = np.zeros_like(sel)
        for b, l in zip(boxes, labels):
            if l == lab:
                covered |= box_shaped_mask(b[None], [1], truth.shape) > 0
        assert not (sel & ~covered).any()
    assert iou(mc == 2, truth) >= 0.8
    assert stats['boxes'] == 4
    assert stats['skipped'] == {'outside': 1}
    assert stats['fallback']['too_small'] == 1
    assert stats['grabcut'] + sum(stats['fallback'].values()) == 3
    # no boxes: all zero
    mc, stats = coarse_mask(img, np.zeros((0, 4)), np.zeros(0, int))
    assert not mc.any() and stats['boxes'] == 0


def test_coarse_mask_is_deterministic():
    img, _, box = synthetic(seed=3)
    a, _ = coarse_mask(img, np.array([box], float), np.array([1]))
    b, _ = coarse_mask(img, np.array([box], float), np.array([1]))
    np.testing.assert_array_equal(a, b)


def test_box_shaped_mask_ignored_boxes_are_255_outside_regular_boxes():
    """Difficult / crowd boxes: 255 where no regular box covers them; a
    regular box wins over an ignored one whatever their sizes."""
    boxes = np.array([[1, 1, 4, 5], [7, 0, 9, 2]], float)
    labels = np.array([4, 5])
    ignore = np.array([[3, 1, 8, 4],      # larger than both, overlaps both
                       [1.5, 2, 2.5, 3],  # inside (larger) box 1: no change
                       [20, 20, 30, 30]])  # outside the image
    expected = np.array([
        [0, 0, 0, 0, 0, 0, 0, 5, 5, 0, 0],
        [0, 4, 4, 4, 255, 255, 255, 5, 5, 0, 0],
        [0, 4, 4, 4, 255, 255, 255, 255, 0, 0, 0],
        [0, 4, 4, 4, 255, 255, 255, 255, 0, 0, 0],
        [0, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ], np.uint8)
    mask = box_shaped_mask(boxes, labels, (6, 11), ignore_boxes=ignore)
    np.testing.assert_array_equal(mask, expected)
    # no ignored boxes: as before
    plain = box_shaped_mask(boxes, labels, (6, 11))
    np.testing.assert_array_equal(plain, np.where(expected == 255, 0,
                                                  expected))
    np.testing.assert_array_equal(
        box_shaped_mask(boxes, labels, (6, 11), np.zeros((0, 4))), plain)
    # only ignored boxes, no regular one
    only = box_shaped_mask(np.zeros((0, 4)), np.zeros(0, int), (6, 11),
                           ignore_boxes=ignore[:1])
    assert (only == 255).sum() == 15 and set(np.unique(only)) == {0, 255}


def test_coarse_mask_ignored_boxes_not_grabcut_but_255():
    img, truth, box = synthetic()
    boxes = np.array([box, [70, 5, 100, 30]], float)
    labels = np.array([2, 6])
    # an ignored box (difficult object) overlapping the ellipse's box
    ignore = np.array([[20, 50, 60, 90], [0, 0, 3, 3]], float)
    mb = box_shaped_mask(boxes, labels, truth.shape, ignore)
    mc, stats = coarse_mask(img, boxes, labels, box_mask=mb,
                            ignore_boxes=ignore)
    region = np.zeros(truth.shape, bool)
    region[50:90, 20:60] = True
    region[0:3, 0:3] = True
    regular = np.isin(mb, labels)
    np.testing.assert_array_equal(mc == 255, region & ~regular)
    np.testing.assert_array_equal(mb == 255, region & ~regular)
    assert not mc[mb == 0].any()
    assert stats['boxes'] == 2 and stats['ignored'] == 2
    assert stats['grabcut'] + sum(stats['fallback'].values()) == 2
    assert iou(mc == 2, truth) >= 0.8  # GrabCut still decides in the box
    # without box_mask given: the same
    mc2, _ = coarse_mask(img, boxes, labels, ignore_boxes=ignore)
    np.testing.assert_array_equal(mc, mc2)


# ---------------------------------------------------------------------------
# near-flat crops: not given to GrabCut (seconds each), box fallback counted
def flat_images(size=200):
    rng = np.random.default_rng(0)
    const = np.full((size, size, 3), 90, np.uint8)  # 10-15 s in GrabCut once
    noisy = (128 + rng.integers(0, 4, (size, size, 3))).astype(np.uint8)
    salt = np.full((size, size, 3), (90, 140, 200), np.uint8)
    salt[rng.random((size, size)) < 0.002] = 255
    return dict(const=const, noisy=noisy, salt=salt)


def test_is_near_flat():
    for name, img in flat_images().items():
        assert is_near_flat(img), name
        assert not is_near_flat(img, None)
    rng = np.random.default_rng(1)
    ramp = np.repeat(np.repeat((120 + np.linspace(0, 10, 64))[None, :, None],
                               64, 0), 3, 2).astype(np.uint8)
    assert not is_near_flat(ramp)  # 10 grey levels > FLAT_RANGE
    two = np.full((64, 64, 3), (90, 140, 200), np.uint8)
    two[16:48, 16:48] = (200, 50, 50)  # a clear object on a flat background
    assert not is_near_flat(two)
    assert not is_near_flat(rng.integers(0, 255, (64, 64, 3), np.uint8))
    assert not is_near_flat(np.full((8, 8), 3, np.uint8), flat_range=-1)
    assert is_near_flat(np.full((8, 8, 1), 3, np.uint8)) and FLAT_RANGE == 4
    # the histogram percentiles are numpy's 'lower' / 'higher' ones
    for seed in range(20):
        r = np.random.default_rng(seed)
        img = (100 + r.integers(0, 3 + seed, (r.integers(5, 60), 30, 3))
               ).astype(np.uint8)
        img[r.random(img.shape[:2]) < 0.02] = r.integers(0, 255)
        px = img.reshape(-1, 3)
        lo = np.percentile(px, 1, axis=0, method='lower')
        hi = np.percentile(px, 99, axis=0, method='higher')
        assert is_near_flat(img) == bool(np.all(hi - lo <= FLAT_RANGE)), seed
    with pytest.raises(ValueError, match='uint8'):
        is_near_flat(np.zeros((4, 4, 3), np.float32))


def test_flat_crops_fall_back_quickly_and_are_counted():
    import time
    imgs = flat_images()
    box = [40, 40, 160, 160]
    for name, img in imgs.items():
        t0 = time.perf_counter()
        fg, reason = grabcut_box(img, box)
        assert time.perf_counter() - t0 < 0.5, name  # GrabCut: seconds
        assert reason == 'flat', name
        assert fg[40:160, 40:160].all() and fg.sum() == 120 * 120
    boxes = np.array([box, [10, 10, 60, 60]], float)
    mc, stats = coarse_mask(imgs['salt'], boxes, np.array([1, 2]))
    assert stats['fallback'] == {'flat': 2} and stats['grabcut'] == 0
    np.testing.assert_array_equal(
        mc, box_shaped_mask(boxes, np.array([1, 2]), (200, 200)))
    assert 'flat' in FALLBACK_REASONS


def test_textured_crops_give_the_same_masks_as_before(toy_root):
    """The near-flat test changes nothing where the crop is textured."""
    import cv2
    from make_pseudo_masks import entries_from_split
    img, _, box = synthetic()
    cases = [(img, np.array([box], float), np.array([1]))]
    entries, _ = entries_from_split(
        f'{toy_root}/ImageSets/Main/det_train.txt',
        ['rectangle', 'ellipse', 'triangle'])
    cases += [(cv2.imread(e['img_path']), e['boxes'], e['labels'])
              for e in entries[:3]]
    for img, boxes, labels in cases:
        new, s_new = coarse_mask(img, boxes, labels)
        old, s_old = coarse_mask(img, boxes, labels, flat_range=None)
        np.testing.assert_array_equal(new, old)
        assert s_new == s_old and 'flat' not in s_new['fallback']
        assert s_new['grabcut'] >= 1  # GrabCut ran on these crops
        # a threshold that calls them flat would change them
        assert (coarse_mask(img, boxes, labels, flat_range=255)[0] != old).any()
