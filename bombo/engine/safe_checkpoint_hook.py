"""Checkpoints that load with ``torch.load(weights_only=True)``.

torch >= 2.6 unpickles checkpoints with ``weights_only=True`` by default, and
refuses what mmengine 0.10.7 stores besides tensors: the message hub's
``HistoryBuffer`` objects, numpy arrays / scalars / dtypes (numpy 2 dtypes even
pickle through ``builtins.getattr``, which must never be allow-listed: it
would make the safe loader unsafe). Instead of widening the allow-list, this
hook makes the checkpoint hold nothing but tensors and plain Python values:

* ``before_save_checkpoint`` replaces every ``HistoryBuffer`` in
  ``checkpoint['message_hub']['log_scalars']`` by a plain dict (histories as
  float64 tensors) and turns every other numpy object outside ``state_dict`` /
  ``optimizer`` into a tensor or a Python number;
* ``after_load_checkpoint`` (called by ``runner.resume`` before the message
  hub is restored) rebuilds the ``HistoryBuffer`` objects.

``SAFE_GLOBALS`` is therefore empty: nothing is allow-listed.
"""
from typing import Any

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

#: globals a bombo checkpoint needs beyond torch's weights-only defaults
SAFE_GLOBALS: list = []

_BUFFER_TAG = '__history_buffer__'


def to_plain(obj: Any) -> Any:
    """Recursively replace numpy objects by tensors / Python numbers."""
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {_BUFFER_TAG: True,
                'log': torch.as_tensor(np.asarray(log, dtype=np.float64)),
                'count': torch.as_tensor(np.asarray(count, dtype=np.float64)),
                'max_length': int(obj.max_length)}
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.dtype):
        return str(obj)
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    return obj


def from_plain(obj: Any) -> Any:
    """Rebuild the ``HistoryBuffer`` objects written by :func:`to_plain`."""
    if isinstance(obj, dict):
        if obj.get(_BUFFER_TAG):
            buf = HistoryBuffer(max_length=obj['max_length'])
            for v, c in zip(obj['log'].tolist(), obj['count'].tolist()):
                buf.update(v, c)
            return buf
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    return obj


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Make saved checkpoints loadable with ``weights_only=True``.

    Register it with ``priority='VERY_LOW'`` so that it runs after every hook
    that adds to the checkpoint (it is in ``configs/_base_/default_runtime``).
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in list(checkpoint):
            if key in ('state_dict', 'optimizer', 'ema_state_dict'):
                continue
            checkpoint[key] = to_plain(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.get('message_hub')
        if hub is not None:
            checkpoint['message_hub'] = from_plain(hub)
        # mmengine compares the saved dataset metainfo with the current one
        # by their pickles; the plain copy made at saving pickles differently
        # (no shared references, lists for numpy arrays) although it holds
        # the same values, so every resume warned that the metainfo differs.
        # An equal metainfo is replaced by the current object; a different
        # one is left alone, and mmengine's warning then means something.
        meta = checkpoint.get('meta')
        try:
            dataset = runner.train_dataloader.dataset
        except Exception:  # no training loop (test.py, init_detector)
            dataset = None
        current = getattr(dataset, 'metainfo', None)
        if isinstance(meta, dict) and current is not None and \
                _same_values(meta.get('dataset_meta'), current):
            meta['dataset_meta'] = current


def _same_values(a: Any, b: Any) -> bool:
    """Equal after turning numpy objects and tuples into plain lists."""
    def norm(x):
        x = to_plain(x)
        if isinstance(x, torch.Tensor):
            return x.tolist()
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [norm(v) for v in x]
        return x
    return norm(a) == norm(b)
