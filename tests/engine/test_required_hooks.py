"""Safe checkpoints and the EMA teacher do not depend on ``custom_hooks``: a
derived config that sets its own list (``[]``, ``[EMAHook]``) still trains
with an updating EMA teacher and writes weights-only checkpoints."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from bombo.engine import SafeCheckpointHook, TeacherEMAHook
from bombo.utils.config import ensure_required_hooks, load_config
from conftest import ROOT, tiny_cfg, tiny_overrides

M4B = osp.join(ROOT, 'configs/toy/toy_r18_fpn_m4b.py')
MTL = osp.join(ROOT, 'configs/toy/toy_r18_fpn_mtl.py')


def _derived(tmp_path, base, body, name='derived.py'):
    path = tmp_path / name
    path.write_text(f'_base_ = {base!r}\n{body}\n')
    return str(path)


def _types(cfg):
    return [h['type'] for h in cfg.custom_hooks]


@pytest.mark.parametrize('hooks,expected', [
    ("custom_hooks = []", ['TeacherEMAHook', 'SafeCheckpointHook']),
    ("custom_hooks = [dict(type='EMAHook', momentum=0.001)]",
     ['TeacherEMAHook', 'SafeCheckpointHook']),
    ("custom_hooks = [dict(type='TeacherEMAHook'), "
     "dict(type='SafeCheckpointHook', priority='VERY_LOW')]",
     ['TeacherEMAHook', 'SafeCheckpointHook']),
])
def test_load_config_restores_required_hooks(tmp_path, hooks, expected):
    cfg = load_config(_derived(tmp_path, M4B, hooks))
    assert _types(cfg) == expected
    if 'EMAHook' in hooks and 'Teacher' not in hooks:
        assert cfg.custom_hooks[0]['momentum'] == 0.001  # arguments kept
    # never twice
    assert ensure_required_hooks(cfg) == []
    assert _types(cfg) == expected


def test_no_teacher_hook_without_a_branch_or_with_a_pretrained_teacher(
        tmp_path):
    cfg = load_config(_derived(tmp_path, MTL, 'custom_hooks = []'))
    assert _types(cfg) == ['SafeCheckpointHook']
    cfg = load_config(_derived(
        tmp_path, M4B, "custom_hooks = []\nmodel = dict(teacher=dict("
        "type='pretrained', checkpoint='t.pth', _delete_=True))", 'pre.py'))
    assert _types(cfg) == ['SafeCheckpointHook']
    # a config without model, or of another scope, is left alone
    other = Config(dict(custom_hooks=[], default_scope='mmseg', model={}))
    assert ensure_required_hooks(other) == [] and other.custom_hooks == []


@pytest.mark.parametrize('hooks', ["[]", "[dict(type='EMAHook')]"])
def test_derived_config_trains_with_ema_teacher_and_safe_checkpoints(
        toy_root, tmp_path, hooks):
    config = _derived(tmp_path, M4B, f'custom_hooks = {hooks}')
    options = tiny_overrides(toy_root, str(tmp_path / 'run'), max_iters=2)
    options['train_cfg.val_interval'] = 100  # no evaluation
    runner = Runner.from_cfg(load_config(config, options))
    runner.train()
    ema = [h for h in runner.hooks if isinstance(h, TeacherEMAHook)]
    assert len(ema) == 1
    assert sum(isinstance(h, SafeCheckpointHook) for h in runner.hooks) == 1
    # the EMA teacher is the detector's and has been updated every step
    assert runner.model.get_teacher() is ema[0].ema_model.module
    assert int(ema[0].ema_model.steps) == 2
    ckpt = osp.join(str(tmp_path / 'run'), 'iter_2.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []
    state = torch.load(ckpt, weights_only=True)
    assert 'ema_state_dict' in state and state['meta']['iter'] == 2


def test_atomic_checkpoint_hook_adds_the_safe_hook_at_run_time(toy_root,
                                                               tmp_path):
    """A config read without bombo's load_config (mmdet's own tools) whose
    custom_hooks dropped SafeCheckpointHook: AtomicCheckpointHook, kept by
    the by-key merge of default_hooks, registers it once."""
    cfg = tiny_cfg(toy_root, str(tmp_path / 'run'), max_iters=2)
    cfg.train_cfg.val_interval = 100
    cfg.custom_hooks = []
    runner = Runner.from_cfg(cfg)
    assert not any(isinstance(h, SafeCheckpointHook) for h in runner.hooks)
    runner.train()
    safe = [h for h in runner.hooks if isinstance(h, SafeCheckpointHook)]
    assert len(safe) == 1 and safe[0] is runner.hooks[-1]
    ckpt = osp.join(str(tmp_path / 'run'), 'iter_2.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []

    # resuming in a fresh runner: the hook is added before the checkpoint is
    # loaded (the message hub's histories come back), and not twice
    cfg2 = tiny_cfg(toy_root, str(tmp_path / 'run2'), max_iters=3)
    cfg2.train_cfg.val_interval = 100
    cfg2.custom_hooks = [dict(type='SafeCheckpointHook', priority='VERY_LOW')]
    cfg2.resume, cfg2.load_from = True, ckpt
    runner2 = Runner.from_cfg(cfg2)
    runner2.train()
    assert runner2.iter == 3
    assert sum(isinstance(h, SafeCheckpointHook) for h in runner2.hooks) == 1
    assert len(runner2.message_hub.get_scalar('train/loss').data[0]) == 3
