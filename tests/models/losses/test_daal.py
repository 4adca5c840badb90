"""DAAL (our formulation, see bombo/models/losses/daal.py) against a slow
numpy implementation written from the docstring."""
import numpy as np
import pytest
import torch

from bombo.models.losses.daal import DAALLoss, daal_loss


def slow_daal(x, y, margin, kappa, lam):
    x = np.asarray(x, dtype=np.float64)
    classes = sorted(set(y))
    if len(classes) < 2:
        return 0.0
    seg = {}
    for c in classes:
        pts = np.array([x[i] for i in range(len(y)) if y[i] == c])
        mu = pts.mean(0)
        u, half = np.zeros(x.shape[1]), 0.0
        if len(pts) >= 2:
            _, _, vt = np.linalg.svd(pts - mu, full_matrices=False)
            proj = (pts - mu) @ vt[0]
            sigma = np.sqrt((proj ** 2).mean())
            if sigma > 0:
                u, half = vt[0], kappa * sigma
        seg[c] = (mu, u, half)

    def dist(p, c):
        mu, u, half = seg[c]
        t = min(max(np.dot(p - mu, u), -half), half)
        return np.linalg.norm(p - mu - t * u)

    intra, inter = [], []
    for i in range(len(y)):
        if sum(1 for v in y if v == y[i]) < 2:
            continue
        own = dist(x[i], y[i])
        other = min(dist(x[i], c) for c in classes if c != y[i])
        intra.append(own)
        inter.append(max(0.0, margin + own - other))
    if not intra:
        return 0.0
    return np.mean(inter) + lam * np.mean(intra)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_daal_matches_slow(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (20, ), generator=g)
    y[0] = 3  # a singleton class: only a foreign (point) segment
    loss, parts = daal_loss(x, y, margin=1.5, kappa=1.0, intra_weight=0.5,
                            return_parts=True)
    ref = slow_daal(x.numpy(), y.tolist(), 1.5, 1.0, 0.5)
    assert parts['loss_inter'].item() > 0
    assert loss.item() == pytest.approx(ref, rel=1e-6)


def test_daal_line_does_not_penalise_spread_along_the_axis():
    # class 0 lies exactly on a line: own distance 0 within +-kappa*sigma
    t = torch.linspace(-1, 1, 9, dtype=torch.float64)
    a = torch.stack([t, torch.zeros(9)], 1)
    b = torch.tensor([[0.0, 5.0], [0.2, 5.0]], dtype=torch.float64)
    x = torch.cat([a, b])
    y = torch.tensor([0] * 9 + [1, 1])
    _, parts = daal_loss(x, y, margin=0.5, kappa=10.0, return_parts=True)
    assert parts['loss_intra'].item() == pytest.approx(0.0, abs=1e-12)
    assert parts['loss_inter'].item() == 0.0


def test_daal_degenerate_and_gradient():
    x = torch.randn(6, 3, requires_grad=True)
    assert daal_loss(x, torch.zeros(6, dtype=torch.long)).item() == 0.0
    loss = daal_loss(x, torch.arange(6))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    same = torch.ones(4, 3, requires_grad=True)  # coincident samples
    loss = daal_loss(torch.cat([same, -same]), torch.tensor([0] * 4 + [1] * 4))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(same.grad).all()
    with pytest.raises(ValueError, match='non-finite'):
        daal_loss(torch.full((4, 2), float('nan')), torch.tensor([0, 0, 1, 1]))


def test_daal_module_weight():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 4, generator=g)
    y = torch.randint(0, 3, (12, ), generator=g)
    assert DAALLoss(loss_weight=3.0)(x, y).item() == pytest.approx(
        3 * daal_loss(x, y).item())
