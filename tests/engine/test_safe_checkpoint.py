import glob
import os.path as osp

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner

import bombo  # noqa: F401
from bombo.engine.safe_checkpoint_hook import SAFE_GLOBALS, from_plain, to_plain
from conftest import tiny_cfg


def test_history_buffer_round_trip():
    buf = HistoryBuffer(max_length=5)
    for v in (1.5, np.float64(2.5), 3.0):
        buf.update(v)
    plain = to_plain({'log_scalars': {'loss': buf}, 'x': np.int64(3),
                      'arr': np.arange(3)})
    assert isinstance(plain['x'], int) and torch.is_tensor(plain['arr'])
    back = from_plain(plain)['log_scalars']['loss']
    assert isinstance(back, HistoryBuffer) and back.max_length == 5
    np.testing.assert_allclose(back.data[0], [1.5, 2.5, 3.0])
    np.testing.assert_allclose(back.data[1], [1, 1, 1])


def test_checkpoints_are_weights_only_and_resume_continues(toy_root, tmp_path):
    work_dir = str(tmp_path / 'run')
    cfg = tiny_cfg(toy_root, work_dir, max_iters=4)
    cfg.train_cfg.val_interval = 100  # no evaluation in this test
    Runner.from_cfg(cfg).train()
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt) and osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    # nothing outside torch's weights-only allow-list (and no allow-list)
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(ckpt)
    assert unsafe == SAFE_GLOBALS == []
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert state['meta']['iter'] == 2

    # resume from iteration 2 in a fresh run directory: the loop must start
    # at 2, and the loss history of the message hub must come back
    work_dir2 = str(tmp_path / 'resumed')
    cfg2 = tiny_cfg(toy_root, work_dir2, max_iters=4)
    cfg2.train_cfg.val_interval = 100
    cfg2.resume = True
    cfg2.load_from = ckpt
    runner = Runner.from_cfg(cfg2)
    seen = []

    from mmengine.hooks import Hook

    class IterSpy(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen.append(runner.iter)

    runner.register_hook(IterSpy())
    runner.train()
    assert seen == [2, 3]
    assert runner.iter == 4
    hist = runner.message_hub.get_scalar('train/loss')
    assert len(hist.data[0]) == 4  # 2 restored + 2 new
    assert len(glob.glob(osp.join(work_dir2, 'iter_4.pth'))) == 1


def test_ema_teacher_run_saves_safe_checkpoints_and_resumes(toy_root, tmp_path):
    """The toy M4B config (EMA teacher via TeacherEMAHook) trains, saves a
    weights-only checkpoint with the EMA weights, and resumes from it."""
    from conftest import ROOT
    config = osp.join(ROOT, 'configs/toy/toy_r18_fpn_m4b.py')
    work_dir = str(tmp_path / 'm4b')
    cfg = tiny_cfg(toy_root, work_dir, max_iters=2, config=config)
    cfg.train_cfg.val_interval = 100
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    ema = [h for h in runner.hooks if type(h).__name__ == 'TeacherEMAHook'][0]
    assert model.get_teacher() is ema.ema_model.module
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert 'ema_state_dict' in state
    assert not any('_teacher' in k for k in state['state_dict'])

    cfg2 = tiny_cfg(toy_root, str(tmp_path / 'm4b2'), max_iters=3,
                    config=config)
    cfg2.train_cfg.val_interval = 100
    cfg2.resume, cfg2.load_from = True, ckpt
    runner2 = Runner.from_cfg(cfg2)
    runner2.train()
    assert runner2.iter == 3
    ema2 = [h for h in runner2.hooks if type(h).__name__ == 'TeacherEMAHook'][0]
    assert int(ema2.ema_model.steps) == 3
