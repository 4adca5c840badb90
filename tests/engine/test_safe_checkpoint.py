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
