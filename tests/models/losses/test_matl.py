"""MATL against an explicit triple-loop reference."""
import math

import numpy as np
import pytest
import torch

from bombo.models.losses.matl import MATLLoss, matl_loss


# independent slow reference (explicit triple loops)
def slow_dist(x, squared):
    n = len(x)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            s = sum((x[i, k] - x[j, k]) ** 2 for k in range(x.shape[1]))
            d[i, j] = s if squared else math.sqrt(s)
    return d


def slow_batch_all(x, y, margin, squared=False, reduction='mean_positive',
                   amask=None, pmask=None, nmask=None):
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    amask = np.ones(n, bool) if amask is None else amask
    pmask = np.ones(n, bool) if pmask is None else pmask
    nmask = np.ones(n, bool) if nmask is None else nmask
    d = slow_dist(x, squared)
    total, n_valid, n_pos = 0.0, 0, 0
    for a in range(n):
        for p in range(n):
            for q in range(n):
                if not (a != p and y[a] == y[p] and y[a] != y[q]):
                    continue
                if not (amask[a] and pmask[p] and nmask[q]):
                    continue
                n_valid += 1
                l = d[a, p] - d[a, q] + margin
                if l > 0:
                    total += l
                    n_pos += 1
    if reduction == 'mean_positive':
        return (total / n_pos if n_pos else 0.0), n_valid, n_pos
    if reduction == 'mean':
        return (total / n_valid if n_valid else 0.0), n_valid, n_pos
    return total, n_valid, n_pos


def slow_batch_hard(x, y, margin, reduction='mean'):
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    d = slow_dist(x, False)
    losses = []
    for a in range(n):
        best_p, best_n = None, None
        for p in range(n):
            for q in range(n):
                if a != p and y[a] == y[p] and y[a] != y[q]:
                    dp, dn = d[a, p], d[a, q]
                    best_p = dp if best_p is None else max(best_p, dp)
                    best_n = dn if best_n is None else min(best_n, dn)
        if best_p is not None:
            losses.append(max(0.0, best_p - best_n + margin))
    if not losses:
        return 0.0
    if reduction == 'mean':
        return sum(losses) / len(losses)
    if reduction == 'mean_positive':
        pos = [v for v in losses if v > 0]
        return sum(pos) / len(pos) if pos else 0.0
    return sum(losses)


def data(seed, b=15):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 4, generator=g), torch.randint(0, 3, (b, ),
            generator=g), torch.randint(0, 3, (b, ), generator=g))


@pytest.mark.parametrize('seed', [0, 1])
@pytest.mark.parametrize('lam', [0.0, 0.25, 0.5, 1.0])
def test_matl_matches_triple_loop(seed, lam):
    x, yc, yb = data(seed)
    loss, parts = matl_loss(x, yc, yb, box_weight=lam, margin=0.7,
                            return_parts=True)
    ref_c, _, _ = slow_batch_all(x.numpy(), yc.tolist(), 0.7)
    ref_b, _, _ = slow_batch_all(x.numpy(), yb.tolist(), 0.7)
    assert ref_c > 0 and ref_b > 0 and abs(ref_c - ref_b) > 1e-3
    assert parts['loss_class'].item() == pytest.approx(ref_c, rel=1e-5)
    assert parts['loss_box'].item() == pytest.approx(ref_b, rel=1e-5)
    assert loss.item() == pytest.approx((1 - lam) * ref_c + lam * ref_b,
                                        rel=1e-5, abs=1e-6)


def test_matl_hard_mining_matches_triple_loop():
    x, yc, yb = data(3)
    loss = matl_loss(x, yc, yb, box_weight=0.25, margin=0.3, mining='hard')
    ref = 0.75 * slow_batch_hard(x.numpy(), yc.tolist(), 0.3) + \
        0.25 * slow_batch_hard(x.numpy(), yb.tolist(), 0.3)
    assert loss.item() == pytest.approx(ref, rel=1e-5)


def test_matl_all_box_labels_equal_is_class_term_only():
    x, yc, _ = data(2)
    loss = matl_loss(x, yc, torch.zeros_like(yc), box_weight=0.25, margin=0.7)
    ref_c, _, _ = slow_batch_all(x.numpy(), yc.tolist(), 0.7)
    assert loss.item() == pytest.approx(0.75 * ref_c, rel=1e-5)


def test_matl_degenerate_and_errors():
    x = torch.randn(5, 3, requires_grad=True)
    one = torch.zeros(5, dtype=torch.long)
    assert matl_loss(x, one, one).item() == 0.0
    loss = matl_loss(x, torch.arange(5), torch.arange(5))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    with pytest.raises(ValueError, match='non-finite'):
        matl_loss(torch.full((5, 3), float('nan')), one, one)
    with pytest.raises(ValueError, match='box_weight'):
        matl_loss(x, one, one, box_weight=1.5)


def test_matl_module():
    x, yc, yb = data(0)
    mod = MATLLoss(box_weight=0.25, margin=0.7, loss_weight=0.5)
    assert mod(x, yc, yb).item() == pytest.approx(
        0.5 * matl_loss(x, yc, yb, 0.25, 0.7).item())
