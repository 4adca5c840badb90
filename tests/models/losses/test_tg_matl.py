"""TG-MATL selection mask and loss against slow references."""
import math

import numpy as np
import pytest
import torch
from sklearn.feature_selection import mutual_info_classif

from bombo.models.losses.tg_matl import (TGMATLLoss, tg_matl_loss,
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
