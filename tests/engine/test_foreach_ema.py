"""ForeachExpMomentumEMA: mmdet's ExpMomentumEMA, bit for bit, with
multi-tensor updates; the TeacherEMAHook default."""
import copy

import pytest
import torch
import torch.nn as nn
from mmdet.models.layers import ExpMomentumEMA

from bombo.engine import ForeachExpMomentumEMA, TeacherEMAHook


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def perturb(model, step):
    g = torch.Generator().manual_seed(step)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
        model(torch.randn(2, 3, 8, 8, generator=g))  # BN running stats


@pytest.mark.parametrize('update_buffers', [False, True])
@pytest.mark.parametrize('interval', [1, 2])
def test_bit_identical_to_mmdet_exp_momentum_ema(update_buffers, interval):
    model = small_model().train()
    kw = dict(momentum=0.01, gamma=5, interval=interval,
              update_buffers=update_buffers)
    ref, ours = ExpMomentumEMA(model, **kw), ForeachExpMomentumEMA(model,
                                                                   **kw)
    for step in range(7):
        perturb(model, step)
        ref.update_parameters(model)
        ours.update_parameters(model)
    a, b = ref.state_dict(), ours.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the averages moved away from the student (so equality means something)
    w = 'module.4.weight'
    assert not torch.equal(b[w], model.state_dict()['4.weight'])
    # integer buffers (num_batches_tracked) are copied / kept, not averaged
    nbt = 'module.1.num_batches_tracked'
    assert b[nbt].dtype == torch.int64 and torch.equal(a[nbt], b[nbt])


def test_hand_computed_momentum():
    """Update 1 (steps = 1): m = (1 - 0.1) * exp(-2 / 4) + 0.1."""
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema = ForeachExpMomentumEMA(model, momentum=0.1, gamma=4)
    ema.update_parameters(model)  # steps 0: copy
    with torch.no_grad():
        model.weight.fill_(4.0)
    ema.update_parameters(model)
    m = 0.9 * torch.exp(torch.tensor(-0.5)).item() + 0.1
    assert ema.module.weight.item() == pytest.approx(2.0 * (1 - m) + 4.0 * m)


def test_checkpoints_interchange_and_hook_default():
    model = small_model()
    ref = ExpMomentumEMA(model)
    for step in range(3):
        perturb(model, step)
        ref.update_parameters(model)
    ours = ForeachExpMomentumEMA(copy.deepcopy(model))
    ours.load_state_dict(ref.state_dict())
    assert int(ours.steps) == 3
    hook = TeacherEMAHook()
    assert hook.ema_cfg['type'] == 'ForeachExpMomentumEMA'
    assert hook.ema_cfg['gamma'] == 2000 and hook.ema_cfg['momentum'] == 2e-4
    assert TeacherEMAHook(ema_type='ExpMomentumEMA').ema_cfg['gamma'] == 2000
