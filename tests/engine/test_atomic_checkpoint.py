"""AtomicCheckpointHook: a save killed mid-write leaves the previous
checkpoint loadable (weights only) and named by ``last_checkpoint``, and the
run resumes from it; mmengine's CheckpointHook loses it (max_keep_ckpts=1)."""
import os
import os.path as osp

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.runner import Runner

from bombo.engine.atomic_checkpoint import AtomicCheckpointHook, tmp_name
from conftest import tiny_cfg


class Killed(RuntimeError):
    """Stands for the process being killed during the write."""


def _kill_second_save(monkeypatch):
    """The second checkpoint write stops half-way (bytes on disk, then the
    'kill'); every other write goes through."""
    put = LocalBackend.put
    calls = []

    def partial_put(self, obj, filepath):
        if 'iter_' in osp.basename(str(filepath)):  # a checkpoint
            calls.append(str(filepath))
            if len(calls) == 2:
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                raise Killed(f'killed while writing {filepath}')
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', partial_put)
    return calls


def _cfg(toy_root, work_dir, hook_type, max_iters=4):
    cfg = tiny_cfg(toy_root, work_dir, max_iters=max_iters)
    cfg.train_cfg.val_interval = 100  # no evaluation
    cfg.default_hooks.checkpoint = dict(type=hook_type, by_epoch=False,
                                        interval=2, max_keep_ckpts=1)
    return cfg


def _last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def test_plain_checkpoint_hook_loses_everything(toy_root, tmp_path,
                                                monkeypatch):
    """The failure the hook prevents: mmengine removes iter_2.pth before
    writing iter_4.pth in place, so a kill leaves half a file."""
    work_dir = str(tmp_path / 'plain')
    _kill_second_save(monkeypatch)
    with pytest.raises(Killed):
        Runner.from_cfg(_cfg(toy_root, work_dir, 'CheckpointHook')).train()
    assert not osp.exists(osp.join(work_dir, 'iter_2.pth'))
    with pytest.raises(Exception):
        torch.load(osp.join(work_dir, 'iter_4.pth'), weights_only=True)


def test_killed_save_keeps_the_previous_checkpoint_and_resumes(
        toy_root, tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'atomic')
    calls = _kill_second_save(monkeypatch)
    runner = Runner.from_cfg(_cfg(toy_root, work_dir, 'AtomicCheckpointHook'))
    assert any(isinstance(h, AtomicCheckpointHook) for h in runner.hooks)
    with pytest.raises(Killed):
        runner.train()
    assert [osp.basename(c) for c in calls] == [tmp_name('iter_2.pth'),
                                                tmp_name('iter_4.pth')]
    previous = osp.join(work_dir, 'iter_2.pth')
    state = torch.load(previous, map_location='cpu', weights_only=True)
    assert state['meta']['iter'] == 2
    assert _last_checkpoint(work_dir) == previous
    assert not osp.exists(osp.join(work_dir, 'iter_4.pth'))
    # the failed write cleaned up after itself
    assert not osp.exists(osp.join(work_dir, tmp_name('iter_4.pth')))
    monkeypatch.undo()

    # a hard kill (no clean-up) would leave the partial temporary file: the
    # next run removes it, resumes from last_checkpoint at iteration 2
    stale = osp.join(work_dir, tmp_name('iter_4.pth'))
    with open(stale, 'wb') as f:
        f.write(b'partial')
    cfg = _cfg(toy_root, work_dir, 'AtomicCheckpointHook')
    cfg.resume = True  # load_from None: mmengine reads last_checkpoint
    runner = Runner.from_cfg(cfg)
    loop, seen = runner.train_loop, []
    run_iter = loop.run_iter
    monkeypatch.setattr(
        loop, 'run_iter',
        lambda batch: seen.append(loop.iter) or run_iter(batch))
    runner.train()
    assert seen == [2, 3] and runner.iter == 4
    assert not osp.exists(stale)
    final = osp.join(work_dir, 'iter_4.pth')
    assert _last_checkpoint(work_dir) == final
    assert torch.load(final, weights_only=True)['meta']['iter'] == 4
    # max_keep_ckpts=1: the old one goes, once the new one is complete
    assert not osp.exists(previous)
    assert sorted(f for f in os.listdir(work_dir) if f.endswith('.pth')) == [
        'iter_4.pth']
