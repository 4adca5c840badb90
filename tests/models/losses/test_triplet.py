"""Triplet margin loss against explicit triple loops (independent, slow)."""
import math

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from bombo.models.losses.triplet import (TripletMarginLoss,
                                         batch_all_triplet_loss,
                                         batch_hard_triplet_loss,
                                         pairwise_distances)
from slow_triplet_reference import (slow_batch_all, slow_batch_hard,  # noqa: F401
                                    slow_dist)


# ---------------------------------------------------------------- reference
def make(seed, b=14, d=4, c=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g)
    y = torch.randint(0, c, (b, ), generator=g)
    return x, y


# -------------------------------------------------------------------- tests
@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('reduction', ['mean_positive', 'mean', 'sum'])
@pytest.mark.parametrize('squared', [False, True])
def test_batch_all_matches_triple_loop(seed, reduction, squared):
    x, y = make(seed)
    margin = 0.8
    loss, stats = batch_all_triplet_loss(x, y, margin, squared=squared,
                                         reduction=reduction,
                                         return_stats=True)
    ref, n_valid, n_pos = slow_batch_all(x.numpy(), y.tolist(), margin,
                                         squared, reduction)
    assert loss.item() == pytest.approx(ref, rel=1e-5, abs=1e-5)
    assert stats['num_triplets'].item() == n_valid
    assert stats['num_positive'].item() == n_pos
    assert 0 < n_pos < n_valid  # the case is not trivial


def test_batch_all_role_masks_match_triple_loop():
    x, y = make(5, b=16)
    g = torch.Generator().manual_seed(9)
    am, pm, nm = (torch.rand(16, generator=g) > 0.3 for _ in range(3))
    loss = batch_all_triplet_loss(x, y, 0.5, anchor_mask=am, positive_mask=pm,
                                  negative_mask=nm)
    ref, _, _ = slow_batch_all(x.numpy(), y.tolist(), 0.5, amask=am.numpy(),
                               pmask=pm.numpy(), nmask=nm.numpy())
    assert loss.item() == pytest.approx(ref, rel=1e-5, abs=1e-5)


def test_batch_all_gradient_matches_autograd_of_triple_sum():
    x, y = make(3, b=10)
    x = x.double().requires_grad_()
    loss = batch_all_triplet_loss(x, y, 1.0)
    (g, ) = torch.autograd.grad(loss, x)
    x2 = x.detach().clone().requires_grad_()
    terms = []
    for a in range(10):
        for p in range(10):
            for n in range(10):
                if a != p and y[a] == y[p] and y[a] != y[n]:
                    t = (x2[a] - x2[p]).norm() - (x2[a] - x2[n]).norm() + 1.0
                    if t > 0:
                        terms.append(t)
    (g_ref, ) = torch.autograd.grad(sum(terms) / len(terms), x2)
    torch.testing.assert_close(g, g_ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('seed', [0, 4])
@pytest.mark.parametrize('reduction', ['mean', 'mean_positive', 'sum'])
def test_batch_hard_matches_triple_loop(seed, reduction):
    x, y = make(seed, b=15, c=4)
    loss = batch_hard_triplet_loss(x, y, 0.3, reduction=reduction)
    ref = slow_batch_hard(x.numpy(), y.tolist(), 0.3, reduction)
    assert ref > 0
    assert loss.item() == pytest.approx(ref, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize('fn', [batch_all_triplet_loss,
                                batch_hard_triplet_loss])
def test_degenerate_batches_give_zero_with_gradient(fn):
    x = torch.randn(6, 3, requires_grad=True)
    for y in (torch.zeros(6, dtype=torch.long),      # one class only
              torch.arange(6)):                      # one sample per class
        loss = fn(x, y, margin=1.0)
        assert loss.item() == 0.0 and not torch.isnan(loss)
        (g, ) = torch.autograd.grad(loss, x)
        assert torch.equal(g, torch.zeros_like(g))
    empty = fn(torch.zeros(0, 3, requires_grad=True),
               torch.zeros(0, dtype=torch.long))
    assert empty.item() == 0.0


@pytest.mark.parametrize('fn', [batch_all_triplet_loss,
                                batch_hard_triplet_loss])
def test_nan_embeddings_raise(fn):
    x = torch.randn(6, 3)
    x[2, 1] = float('nan')
    with pytest.raises(ValueError, match='non-finite'):
        fn(x, torch.tensor([0, 0, 1, 1, 2, 2]))


def test_duplicate_embeddings_have_finite_gradient():
    x = torch.ones(4, 3, requires_grad=True)
    loss = batch_all_triplet_loss(x, torch.tensor([0, 0, 1, 1]), 0.5)
    assert loss.item() == pytest.approx(0.5)  # every triplet: 0 - 0 + 0.5
    (g, ) = torch.autograd.grad(loss, x)
    assert torch.isfinite(g).all()
    d = pairwise_distances(x)
    assert torch.equal(d, torch.zeros(4, 4))


def test_registered_module_and_weight():
    x, y = make(1)
    mod = TripletMarginLoss(margin=0.8, mining='all', loss_weight=2.0)
    ref, _, _ = slow_batch_all(x.numpy(), y.tolist(), 0.8)
    assert mod(x, y).item() == pytest.approx(2 * ref, rel=1e-5)
    with pytest.raises(ValueError):
        TripletMarginLoss(mining='semi')


# ----------------------------------------------------- no (B, B, B) tensor
class _TooLarge(Exception):
    pass


class MaxNumelGuard(TorchDispatchMode):
    """Fails an op *before* it allocates an output above ``limit`` elements
    (output shapes are predicted on the meta device first)."""

    def __init__(self, limit):
        super().__init__()
        self.limit, self.max_numel = limit, 0

    def _check(self, out, name):
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.max_numel = max(self.max_numel, t.numel())
                if t.numel() > self.limit:
                    raise _TooLarge(f'{name} -> {tuple(t.shape)}')

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            meta = tree_map(lambda t: t.to('meta') if isinstance(
                t, torch.Tensor) else t, (args, kwargs))
            self._check(func(*meta[0], **meta[1]), func)
        except _TooLarge:
            raise
        except Exception:  # no meta kernel: checked after the fact below
            pass
        out = func(*args, **kwargs)
        self._check(out, func)
        return out


def naive_batch_all(x, y, margin):
    d = torch.cdist(x, x)
    t = d[:, :, None] - d[:, None, :] + margin
    same = y[:, None] == y[None]
    valid = same[:, :, None] & ~same[:, None, :]
    t = (t * valid).clamp_min(0)
    return t.sum() / (t > 0).sum()


def test_guard_catches_a_naive_b_cubed_implementation():
    b = 64
    x, y = torch.randn(b, 8), torch.randint(0, 5, (b, ))
    with pytest.raises(_TooLarge):
        with MaxNumelGuard(limit=2 * b * (b + 1)):
            naive_batch_all(x, y, 0.2)


def test_batch_all_b1024_is_quadratic_in_memory():
    b = 1024
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 16, generator=g).requires_grad_()
    y = torch.randint(0, 10, (b, ), generator=g)
    guard = MaxNumelGuard(limit=2 * b * (b + 1))  # naive needs b**3
    with guard:
        loss, stats = batch_all_triplet_loss(x, y, 0.2, return_stats=True)
        loss.backward()
    assert guard.max_numel <= b * (b + 1)
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    # the triplet count is exact
    counts = torch.bincount(y, minlength=10)
    n_valid = (counts * (counts - 1) * (b - counts)).sum()
    assert stats['num_triplets'].item() == n_valid.item()
