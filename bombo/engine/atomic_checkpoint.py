"""Checkpoints that survive a kill during the save.

mmengine 0.10.7's ``CheckpointHook`` (``_save_checkpoint_with_step``) removes
the oldest checkpoint *before* writing the new one, and writes the new one in
place (``open(path, 'wb')``). With ``max_keep_ckpts=1`` a process killed
during the write (pre-emption, out-of-memory killer, node failure) leaves a
truncated file and no other: ``--resume`` then finds nothing loadable.

:class:`AtomicCheckpointHook` is a drop-in ``CheckpointHook`` whose regular
saves (every ``interval`` and ``save_last``):

1. write ``.<name>.incomplete`` in the checkpoint folder, flushed to disk
   (fsync);
2. ``os.replace`` it onto ``<name>`` (atomic on POSIX: readers see the old
   file or the whole new one, never a part);
3. rewrite ``last_checkpoint`` the same way, pointing to the new file;
4. only then remove the checkpoints beyond ``max_keep_ckpts``.

A kill at any point leaves ``last_checkpoint`` naming a complete checkpoint
(the previous one until step 3). A failed save removes its temporary file
and leaves the previous checkpoint in place; stale ``.*.incomplete`` files
of a killed run are removed at the next start. Other backends than the local
disk (``backend_args`` for petrel, ...) keep mmengine's behaviour. "Best"
checkpoints (``save_best``) keep mmengine's order (previous best removed
first): the regular checkpoint still survives.

It also makes the checkpoints safe to load whatever ``custom_hooks`` a
derived config sets: a config that writes its own ``custom_hooks = [...]``
replaces the base's list, and with it the
:class:`~bombo.engine.SafeCheckpointHook` that makes checkpoints load with
``torch.load(weights_only=True)``. ``default_hooks.checkpoint`` is merged by
key, so it survives; at ``before_run`` (before any checkpoint is loaded or
saved) it registers a ``SafeCheckpointHook`` (priority ``VERY_LOW``) when the
runner has none, and logs it.
"""
import glob
import os
import os.path as osp

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from .safe_checkpoint_hook import SafeCheckpointHook

TMP_PREFIX = '.'
TMP_SUFFIX = '.incomplete'


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: str, path: str) -> None:
    """fsync ``tmp``, rename it onto ``path``, fsync the folder."""
    _fsync(tmp)
    os.replace(tmp, path)
    try:
        _fsync(osp.dirname(path) or '.')
    except OSError:  # folders cannot be opened/fsynced everywhere
        pass


def tmp_name(filename: str) -> str:
    """Name of the temporary file a checkpoint ``filename`` is written to."""
    return f'{TMP_PREFIX}{filename}{TMP_SUFFIX}'


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = osp.join(osp.dirname(path), tmp_name(osp.basename(path)))
    with open(tmp, 'w') as f:
        f.write(text)
    _publish(tmp, path)


def ensure_safe_checkpoint_hook(runner) -> bool:
    """Register a :class:`SafeCheckpointHook` (priority ``VERY_LOW``) on
    ``runner`` if it has none; returns whether one was added."""
    if any(isinstance(h, SafeCheckpointHook) for h in runner.hooks):
        return False
    runner.logger.info(
        'SafeCheckpointHook added (the config\'s custom_hooks do not list '
        'it): checkpoints stay loadable with torch.load(weights_only=True)')
    # call_hook iterates runner._hooks: a VERY_LOW hook goes after the
    # running one, so no hook is skipped or called twice
    runner.register_hook(SafeCheckpointHook(), priority='VERY_LOW')
    return True


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose saves are atomic and remove old checkpoints
    only once the new one is complete (see the module docstring).

    Same arguments as mmengine's ``CheckpointHook``. In a config::

        default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook',
                                             by_epoch=False, interval=2000,
                                             max_keep_ckpts=3))
    """

    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def before_run(self, runner) -> None:
        super().before_run(runner)
        ensure_safe_checkpoint_hook(runner)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._is_local() and is_main_process():
            pattern = osp.join(self.out_dir, tmp_name('*'))
            for stale in glob.glob(pattern):
                runner.logger.warning(
                    f'Removing {stale}, a checkpoint whose save did not '
                    'complete')
                os.remove(stale)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        # bookkeeping as mmengine does it, but the step to delete is only
        # remembered here and removed once the new file is in place
        expired = []
        if self.max_keep_ckpts > 0 and not (
                len(self.keep_ckpt_ids) > 0
                and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        tmp = osp.join(self.out_dir, tmp_name(ckpt_filename))
        try:
            runner.save_checkpoint(
                self.out_dir,
                tmp_name(ckpt_filename),
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
        except BaseException:
            if is_main_process() and osp.exists(tmp):
                os.remove(tmp)
            raise
        if not is_main_process():
            return
        _publish(tmp, self.last_ckpt)
        write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'),
                          self.last_ckpt)
        for old in expired:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if old != step and osp.isfile(path):
                os.remove(path)
