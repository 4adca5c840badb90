"""MATL against an explicit triple-loop reference."""
import math

import numpy as np
import pytest
import torch

from bombo.models.losses.matl import MATLLoss, matl_loss
from slow_triplet_reference import (slow_batch_all, slow_batch_hard,  # noqa: F401
                                    slow_dist)


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
