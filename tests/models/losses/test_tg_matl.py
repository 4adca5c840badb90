"""TG-MATL selection mask and loss against slow references."""
import math

import numpy as np
import pytest
import torch
from sklearn.feature_selection import mutual_info_classif

from bombo.models.losses.tg_matl import (TGMATLLoss, relevance_box_features,
                                         tg_matl_loss,
                                         tg_matl_relevance,
                                         tg_matl_selection_mask)
from slow_triplet_reference import (slow_batch_all, slow_batch_hard,  # noqa: F401
                                    slow_dist)


def slow_mask(scores, labels, top, rand):
    """Top-k per class (+ the next r in 'next' mode), by explicit loops."""
    n = len(scores)
    mask = [False] * n
    for c in sorted(set(labels)):
        idx = [i for i in range(n) if labels[i] == c]
        # selection sort by descending score, ties by index
        ranked = []
        remaining = list(idx)
        while remaining:
            best = remaining[0]
            for i in remaining:
                if scores[i] > scores[best]:
                    best = i
            ranked.append(best)
            remaining.remove(best)
        k_top = max(1, math.floor(top * len(idx) + 1e-9))
        k_rand = min(math.floor(rand * len(idx) + 1e-9), len(idx) - k_top)
        for i in ranked[:k_top + k_rand]:
            mask[i] = True
    return mask


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('top,rand', [(0.3, 0.0), (0.3, 0.1), (0.5, 0.25),
                                      (0.0, 0.0), (1.0, 0.5)])
def test_selection_mask_matches_loops(seed, top, rand):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (37, ), generator=g)
    scores = torch.rand(37, generator=g)
    scores[3] = scores[5]  # a tie
    mask = tg_matl_selection_mask(scores, labels, top, rand,
                                  random_mode='next')
    assert mask.tolist() == slow_mask(scores.tolist(), labels.tolist(), top,
                                      rand)


def test_random_selection_keeps_top_and_counts():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (60, ), generator=g)
    scores = torch.rand(60, generator=g)
    top_only = tg_matl_selection_mask(scores, labels, 0.3, 0.0)
    masks = [tg_matl_selection_mask(scores, labels, 0.3, 0.2,
                                    generator=torch.Generator().manual_seed(s))
             for s in range(5)]
    for m in masks:
        assert bool((m | ~top_only).all())  # top samples always kept
        for c in range(3):
            n = int((labels == c).sum())
            k = max(1, math.floor(0.3 * n + 1e-9)) + \
                math.floor(0.2 * n + 1e-9)
            assert int(m[labels == c].sum()) == k
    assert len({tuple(m.tolist()) for m in masks}) > 1  # really random
    again = tg_matl_selection_mask(scores, labels, 0.3, 0.2,
                                   generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, masks[3])  # seeded


def test_relevance_is_mi_weighted_sum():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    x = np.c_[y / 2 + 0.1 * rng.random(200), rng.random(200),
              rng.random(200)]
    scores, mi = tg_matl_relevance(x, y, seed=0)
    mi_ref = mutual_info_classif(x, y, discrete_features=False,
                                 random_state=0)
    np.testing.assert_allclose(mi, mi_ref)
    ref = [sum(x[i, f] * mi_ref[f] for f in range(3)) for i in range(200)]
    np.testing.assert_allclose(scores, ref, rtol=1e-12)
    assert mi[0] > 5 * max(mi[1], mi[2])  # the informative feature wins


@pytest.mark.parametrize('mask_negatives', [False, True])
def test_tg_matl_loss_matches_triple_loop(mask_negatives):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(24, 4, generator=g)
    yc = torch.randint(0, 3, (24, ), generator=g)
    yb = torch.randint(0, 3, (24, ), generator=g)
    s = torch.rand(24, generator=g)
    loss, mask = tg_matl_loss(x, yc, yb, s, box_weight=0.5, margin=0.7,
                              top_percent=0.5, random_percent=0.2,
                              random_mode='next',
                              mask_negatives=mask_negatives,
                              return_mask=True)
    m = np.asarray(slow_mask(s.tolist(), yc.tolist(), 0.5, 0.2))
    assert mask.numpy().tolist() == m.tolist()
    nm = m if mask_negatives else None
    ref_c, _, _ = slow_batch_all(x.numpy(), yc.tolist(), 0.7, amask=m,
                                 pmask=m, nmask=nm)
    ref_b, _, _ = slow_batch_all(x.numpy(), yb.tolist(), 0.7, amask=m,
                                 pmask=m, nmask=nm)
    assert loss.item() == pytest.approx(0.5 * ref_c + 0.5 * ref_b, rel=1e-5)
    full = tg_matl_loss(x, yc, yb, s, 0.5, 0.7, top_percent=1.0,
                        random_percent=0.0)
    ref_full = 0.5 * slow_batch_all(x.numpy(), yc.tolist(), 0.7)[0] + \
        0.5 * slow_batch_all(x.numpy(), yb.tolist(), 0.7)[0]
    assert full.item() == pytest.approx(ref_full, rel=1e-5)


def test_tg_matl_degenerate_and_errors():
    x = torch.randn(6, 3)
    y = torch.arange(6)
    assert tg_matl_loss(x, y, y, torch.rand(6)).item() == 0.0
    with pytest.raises(ValueError, match='non-finite'):
        tg_matl_selection_mask(torch.tensor([0.1, float('nan')]),
                               torch.tensor([0, 0]))
    with pytest.raises(ValueError):
        tg_matl_selection_mask(torch.rand(3), torch.zeros(3, dtype=torch.long),
                               top_percent=1.5)


def test_tg_matl_module_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=g)
    yc = torch.randint(0, 3, (30, ), generator=g)
    yb = torch.randint(0, 3, (30, ), generator=g)
    s = torch.rand(30, generator=g)
    a = TGMATLLoss(seed=7)(x, yc, yb, s)
    b = TGMATLLoss(seed=7)(x, yc, yb, s)
    assert a.item() == b.item() and torch.isfinite(a)


# ---------------------------------------------------------------------------
# Reference modes (paper vs public code) on a hand-computed case.
#
# 8 samples, 1-D embeddings, two classes of 4, box labels b, margin 0.5,
# lambda 0.5, rho_top = rho_rand = 0.25 (k_c = 1, r_c = 1 per class).
#   idx    0    1    2     3    4    5    6    7
#   x      0   20    1  -1.5    8  3.3    4  0.5
#   class  0    0    0     0    1    1    1    1
#   box    0    1    1     0    0    1    0    1
#   s     .9   .5   .7    .1   .2   .8   .6   .4
# Ranking by s: class 0 -> 0, 2, 1, 3; class 1 -> 5, 6, 7, 4.
# T = {0, 5}; 'next' adds the next ranked {2, 6}: mask {0, 2, 5, 6}.
HAND_X = [0.0, 20.0, 1.0, -1.5, 8.0, 3.3, 4.0, 0.5]
HAND_C = [0, 0, 0, 0, 1, 1, 1, 1]
HAND_B = [0, 1, 1, 0, 0, 1, 0, 1]
HAND_S = [0.9, 0.5, 0.7, 0.1, 0.2, 0.8, 0.6, 0.4]
# Positive triplets (a, p, n): d_ap - d_an + 0.5, anchors/positives in mask.
# Class term, negatives = any other-class sample (paper Eq. (14)):
#   (0,2,7): 1 - 0.5 + .5 = 1.0   (2,0,7): 1 - 0.5 + .5 = 1.0  -> mean 1.0
#   (class-1 anchors 5, 6: d_ap = 0.7, nearest negative 2 at 2.3 / 3: none)
HAND_CLASS_TRIPLETS = [(0, 2, 7), (2, 0, 7)]
# Box term (positives: 0-6 with label 0, 2-5 with label 1):
#   (0,6,2): 4 - 1 + .5 = 3.5    (0,6,5): 4 - 3.3 + .5 = 1.2
#   (0,6,7): 4 - .5 + .5 = 4.0   (6,0,2): 4 - 3 + .5 = 1.5
#   (6,0,5): 4 - .7 + .5 = 3.8   (6,0,7): 4 - 3.5 + .5 = 1.0
#   (2,5,0): 2.3 - 1 + .5 = 1.8  (2,5,3): 2.3 - 2.5 + .5 = 0.3
#   (5,2,6): 2.3 - .7 + .5 = 2.1                 -> mean 19.2 / 9
HAND_BOX_TRIPLETS = [(0, 6, 2), (0, 6, 5), (0, 6, 7), (6, 0, 2), (6, 0, 5),
                     (6, 0, 7), (2, 5, 0), (2, 5, 3), (5, 2, 6)]
# mask_negatives=True (public code: unselected 1, 3, 4, 7 dropped): class
# term has no positive triplet (0); box term keeps the 6 triplets without
# negatives 3 or 7: (3.5 + 1.2 + 1.5 + 3.8 + 1.8 + 2.1) / 6 = 13.9 / 6.


def hand_inputs():
    return (torch.tensor(HAND_X)[:, None], torch.tensor(HAND_C),
            torch.tensor(HAND_B), torch.tensor(HAND_S))


def test_hand_case_next_ranked_selection():
    x, yc, yb, s = hand_inputs()
    mask = tg_matl_selection_mask(s, yc, 0.25, 0.25, random_mode='next')
    assert torch.nonzero(mask).flatten().tolist() == [0, 2, 5, 6]
    # the triplets listed above are exactly the positive ones
    from bombo.models.losses.triplet import pairwise_distances
    d = pairwise_distances(x)
    for labels, listed in ((HAND_C, HAND_CLASS_TRIPLETS),
                           (HAND_B, HAND_BOX_TRIPLETS)):
        found = [(a, p, n) for a in range(8) for p in range(8)
                 for n in range(8)
                 if mask[a] and mask[p] and a != p and labels[a] == labels[p]
                 and labels[n] != labels[a]
                 and d[a, p] - d[a, n] + 0.5 > 0]
        assert sorted(found) == sorted(listed)


@pytest.mark.parametrize('mask_negatives,expected', [
    (False, 0.5 * 1.0 + 0.5 * 19.2 / 9),   # paper Eq. (14)
    (True, 0.5 * 0.0 + 0.5 * 13.9 / 6)])   # public code
def test_hand_case_loss_values(mask_negatives, expected):
    x, yc, yb, s = hand_inputs()
    loss = tg_matl_loss(x, yc, yb, s, box_weight=0.5, margin=0.5,
                        top_percent=0.25, random_percent=0.25,
                        random_mode='next', mask_negatives=mask_negatives)
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    module = TGMATLLoss(box_weight=0.5, margin=0.5, top_percent=0.25,
                        random_percent=0.25, random_mode='next',
                        mask_negatives=mask_negatives, loss_weight=2.0)
    assert module(x, yc, yb, s).item() == pytest.approx(2 * expected,
                                                        abs=1e-5)


def test_hand_case_random_selection():
    """Eq. (11): the top sample of each class plus one uniform draw from the
    other three; every draw of a class's rest is reachable."""
    x, yc, yb, s = hand_inputs()
    seen = set()
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        mask = tg_matl_selection_mask(s, yc, 0.25, 0.25, generator=g)
        sel = tuple(torch.nonzero(mask).flatten().tolist())
        assert len(sel) == 4 and 0 in sel and 5 in sel
        extra0, = set(sel) & {1, 2, 3}
        extra1, = set(sel) & {4, 6, 7}
        seen.add((extra0, extra1))
        # the loss is MATL on that mask (checked against the 'next' case
        # with the same mask, by reordering the scores)
        loss = tg_matl_loss(x, yc, yb, s, 0.5, 0.5, 0.25, 0.25,
                            generator=torch.Generator().manual_seed(seed))
        s2 = s.clone()
        s2[extra0], s2[extra1] = 0.85, 0.75   # now ranked second
        ref = tg_matl_loss(x, yc, yb, s2, 0.5, 0.5, 0.25, 0.25,
                           random_mode='next')
        assert loss.item() == pytest.approx(ref.item(), abs=1e-6)
    assert {a for a, _ in seen} == {1, 2, 3}
    assert {b for _, b in seen} == {4, 6, 7}
    # rho_rand = 0.75 draws all of R_c: deterministic, every sample kept
    assert bool(tg_matl_selection_mask(s, yc, 0.25, 0.75).all())


def test_default_mode_is_todays_values():
    """Defaults = paper modes = the values before the options existed."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(40, 6, generator=g)
    yc = torch.randint(0, 3, (40, ), generator=g)
    yb = torch.randint(0, 3, (40, ), generator=g)
    s = torch.rand(40, generator=g)
    module = TGMATLLoss(seed=5)
    assert module.relevance_features == 'shape'
    assert module.random_mode == 'random' and not module.mask_negatives
    # recorded with the code before the reference modes were added
    assert module(x, yc, yb, s).item() == pytest.approx(1.0141613483428955,
                                                        abs=1e-6)
    loss, mask = tg_matl_loss(x, yc, yb, s,
                              generator=torch.Generator().manual_seed(5),
                              return_mask=True)
    assert torch.nonzero(mask).flatten().tolist() == [
        3, 8, 10, 11, 13, 19, 20, 21, 25, 29, 35, 36, 38]
    assert loss.item() == pytest.approx(1.0141613483428955, abs=1e-6)


def test_relevance_box_features_hand_values():
    boxes = np.array([[10, 20, 30, 60], [0, 0, 50, 25]], np.float64)
    sizes = np.array([[100, 200], [50, 50]])   # (H, W)
    np.testing.assert_allclose(
        relevance_box_features(boxes, 'xcycwh', sizes),
        [[20 / 200, 40 / 100, 20 / 200, 40 / 100], [0.5, 0.25, 1.0, 0.5]])
    np.testing.assert_allclose(relevance_box_features(boxes, 'xcycwh'),
                               [[20, 40, 20, 40], [25, 12.5, 50, 25]])
    np.testing.assert_allclose(relevance_box_features(boxes, 'shape'),
                               [[20, 40, 800, 0.5], [50, 25, 1250, 0.5]])
    t = relevance_box_features(torch.tensor(boxes), 'xcycwh',
                               torch.tensor(sizes))
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(),
                               relevance_box_features(boxes, 'xcycwh', sizes),
                               rtol=1e-6)
    with pytest.raises(ValueError, match='relevance_features'):
        relevance_box_features(boxes, 'xywh')
    with pytest.raises(ValueError, match='image sizes'):
        relevance_box_features(boxes, 'xcycwh', sizes[:1])


def test_relevance_modes_fit_and_score():
    from bombo.models.losses.tg_matl import TGMATLRelevance
    from bombo.models.task_modules.box_labels import BoxLabeler
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    xy = rng.uniform(0, 100, (90, 2))
    wh = rng.uniform(5, 40, (90, 2))
    xy[:, 0] = 30 * y + rng.uniform(0, 10, 90)   # position tells the class
    boxes = np.c_[xy, xy + wh]
    sizes = np.full((90, 2), 200)
    shape = TGMATLRelevance.fit(boxes, y, 'shape', seed=0)
    # 'shape' = the box-label file's relevance (today's head and probe)
    labeler = BoxLabeler.fit(boxes, y, seed=0)
    np.testing.assert_array_equal(shape.score(boxes),
                                  labeler.relevance(boxes))
    pos = TGMATLRelevance.fit(boxes, y, 'xcycwh', sizes, seed=0)
    # MI finds the informative x-centre; the score is sum_f x_if * MI_f
    assert pos.mutual_info[0] > 3 * pos.mutual_info[1:].max()
    f = relevance_box_features(boxes, 'xcycwh', sizes)
    normed = (f - f.min(0)) / (f.max(0) - f.min(0))
    np.testing.assert_allclose(pos.score(boxes, sizes),
                               normed @ pos.mutual_info, rtol=1e-12)
    # held-out boxes are clipped to [0, 1] before weighting
    far = np.array([[1000.0, 0, 1010, 10]])
    assert pos.score(far, [[200, 200]])[0] <= pos.mutual_info.sum() + 1e-12
    # torch in, torch out (device of the input)
    t = pos.score(torch.tensor(boxes, dtype=torch.float32),
                  torch.tensor(sizes))
    np.testing.assert_allclose(t.numpy(), pos.score(boxes, sizes),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='relevance_features'):
        TGMATLLoss(relevance_features='xy')
    with pytest.raises(ValueError, match='random_mode'):
        TGMATLLoss(random_mode='topk')
