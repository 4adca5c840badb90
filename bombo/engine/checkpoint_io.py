"""Loading checkpoints safely, and converting the ones that do not load.

bombo loads every checkpoint with ``torch.load(weights_only=True)`` (torch's
default since 2.6): nothing but tensors and plain Python values is unpickled,
so a checkpoint file cannot run code. Checkpoints written by a plain mmengine /
mmdet run (no :class:`~bombo.engine.SafeCheckpointHook`) hold mmengine's
``HistoryBuffer`` objects and numpy arrays, scalars and dtypes, and torch
refuses them with a long ``pickle.UnpicklingError``.

* :func:`load_checkpoint_safe` / :func:`load_state_dict_safe` load a file
  weights-only and, when torch refuses it, raise a ``RuntimeError`` that names
  the file and the converter;
* :func:`checkpoint_errors` is a context manager that does the same
  translation around any code that loads a checkpoint (mmengine's runner,
  mmdet's ``init_detector``, ``DetInferencer``);
* :func:`convert_checkpoint` (the function behind
  ``tools/misc/convert_checkpoint.py``) loads a *trusted* checkpoint with
  ``weights_only=False`` -- that unpickles, and may run, arbitrary code --
  turns what torch refuses into plain values with the same
  :func:`~bombo.engine.safe_checkpoint_hook.to_plain` that
  ``SafeCheckpointHook`` uses at saving (so a converted checkpoint also
  resumes: the ``HistoryBuffer`` objects come back), drops what cannot be
  made plain (named in the returned report), writes the result through a
  temporary file and a rename, and checks that it loads weights-only with
  identical tensors.
"""
import contextlib
import os
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch

from .atomic_checkpoint import _publish, tmp_name
from .safe_checkpoint_hook import to_plain

#: the converter, as the error messages name it
CONVERTER = 'tools/misc/convert_checkpoint.py'


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that ``torch.load(weights_only=True)`` refuses."""


def unsafe_checkpoint_message(path: str, reason: str = '') -> str:
    """The message of :class:`UnsafeCheckpointError` for ``path``."""
    stem, ext = osp.splitext(str(path))
    out = f'{stem}_safe{ext or ".pth"}'
    first = reason.strip().splitlines()
    detail = ''
    for line in first:
        if 'Unsupported global' in line or 'Unsupported operand' in line:
            detail = f' (torch: {line.strip()})'
            break
    return (f'{path} was not saved by bombo (SafeCheckpointHook): it holds '
            f'objects that torch.load(weights_only=True) refuses{detail}. If '
            'you trust the file, convert it once with\n'
            f'    python {CONVERTER} {path} {out}\n'
            f'and use {out} (trusted files only: the converter unpickles the '
            'file, which can run arbitrary code)')


@contextlib.contextmanager
def checkpoint_errors(path: Optional[str]) -> Iterator[None]:
    """Translate a weights-only refusal into :class:`UnsafeCheckpointError`.

    Wrap any code that loads the checkpoint ``path``::

        with checkpoint_errors(args.checkpoint):
            runner.test()

    Only ``pickle.UnpicklingError`` (what torch raises when the weights-only
    unpickler meets a global it does not allow) is translated; every other
    error passes unchanged.
    """
    try:
        yield
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            unsafe_checkpoint_message(str(path), str(e))) from e


def load_checkpoint_safe(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` with the clear error of
    :func:`checkpoint_errors`, and a ``FileNotFoundError`` naming a missing
    file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} not found')
    with checkpoint_errors(path):
        return torch.load(path, map_location=map_location, weights_only=True)


def load_state_dict_safe(path: str, map_location: Any = 'cpu',
                         key: str = 'state_dict') -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of a checkpoint file, loaded weights-only.

    An mmengine checkpoint stores the weights under ``key``
    (``'state_dict'``); a file that is a bare state dict (``torch.save(
    model.state_dict())``) is returned as it is. Raises
    :class:`UnsafeCheckpointError` (naming ``tools/misc/convert_checkpoint.py``)
    when torch refuses the file, ``FileNotFoundError`` when it is missing and
    ``ValueError`` when it holds no state dict.
    """
    ckpt = load_checkpoint_safe(path, map_location)
    if isinstance(ckpt, dict) and key in ckpt:
        ckpt = ckpt[key]
    if not isinstance(ckpt, dict) or not all(
            isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ValueError(f'{path} holds no state dict (no {key!r} entry of '
                         'tensors, and it is not a dict of tensors itself)')
    return ckpt


# ---------------------------------------------------------------------------
# conversion
#: leaf types the weights-only unpickler accepts
_PLAIN_LEAVES = (torch.Tensor, str, bytes, int, float, bool, complex,
                 type(None), torch.dtype, torch.device, torch.Size)


def _sanitize(obj: Any, path: str, dropped: List[Tuple[str, str]]) -> Any:
    """``to_plain`` for the containers torch accepts, keeping the type (and
    the ``_metadata`` of a state dict's ``OrderedDict``); a value that is
    still not plain is dropped and its path recorded."""
    if isinstance(obj, torch.nn.Parameter):
        return obj.detach()
    if isinstance(obj, _PLAIN_LEAVES):
        return obj
    if type(obj) is OrderedDict:
        out = OrderedDict()
        for k, v in obj.items():
            v = _sanitize(v, f'{path}.{k}', dropped)
            if v is not _DROP:
                out[k] = v
        if hasattr(obj, '_metadata'):
            out._metadata = to_plain(obj._metadata)
        return out
    plain = to_plain(obj)  # HistoryBuffer, numpy, ConfigDict -> plain
    if plain is not obj and not isinstance(plain, (dict, list, tuple)):
        return plain
    if isinstance(plain, dict):
        out = {}
        for k, v in plain.items():
            if not isinstance(k, (str, int, float, bool, tuple, type(None))):
                k = str(k)
            v = _sanitize(v, f'{path}.{k}' if path else str(k), dropped)
            if v is not _DROP:
                out[k] = v
        return out
    if isinstance(plain, (list, tuple)):
        items = [_sanitize(v, f'{path}[{i}]', dropped)
                 for i, v in enumerate(plain)]
        items = [v for v in items if v is not _DROP]
        if isinstance(plain, tuple) and type(plain) is not tuple:
            return tuple(items)  # a namedtuple: its class is not allowed
        return type(plain)(items) if isinstance(plain, tuple) else items
    if isinstance(obj, (set, frozenset)):
        items = [_sanitize(v, f'{path}{{{v!r}}}', dropped) for v in obj]
        return {v for v in items if v is not _DROP}
    dropped.append((path, f'{type(obj).__module__}.{type(obj).__qualname__}'))
    return _DROP


_DROP = object()


def _tensors(obj: Any, prefix: str = '') -> Iterator[Tuple[str, Any]]:
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f'{prefix}.{k}')


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and values (NaNs at the same places)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_floating_point() or a.is_complex():
        nan = a.isnan()
        return torch.equal(nan, b.isnan()) and torch.equal(a[~nan], b[~nan])
    return torch.equal(a, b)


def convert_checkpoint(src: str, dst: str, state_dict_only: bool = False,
                       overwrite: bool = False) -> Dict[str, Any]:
    """Write a copy of the trusted checkpoint ``src`` that loads with
    ``torch.load(weights_only=True)`` (see the module docstring).

    Args:
        src (str): the checkpoint to convert. It is unpickled with
            ``weights_only=False``: **it can run arbitrary code; convert only
            files you trust.**
        dst (str): where to write the converted checkpoint (through a
            temporary file and a rename; its folder is created).
        state_dict_only (bool): keep only ``{'state_dict': ..., 'meta':
            ...}`` (no optimizer, schedulers or message hub; enough for
            testing, inference and a pre-trained teacher).
        overwrite (bool): replace an existing ``dst``.

    Returns:
        dict: ``keys`` (top-level keys written), ``tensors`` (number of
        state-dict tensors), ``dropped`` (``[(path, type)]`` of values that
        could not be made plain and were left out), ``already_safe``
        (whether ``src`` loaded weights-only already).

    Raises:
        FileNotFoundError: ``src`` is missing.
        FileExistsError: ``dst`` exists and ``overwrite`` is False.
        ValueError: ``src`` and ``dst`` are the same file, or ``src`` has no
            state dict.
        RuntimeError: the written file does not load weights-only, or its
            tensors differ from those of ``src`` (``dst`` is then removed).
    """
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint {src!r} not found')
    if osp.abspath(src) == osp.abspath(dst):
        raise ValueError('write the converted checkpoint to another file '
                         f'than {src}')
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(f'{dst} exists (pass overwrite=True / '
                              '--overwrite to replace it)')
    try:
        torch.load(src, map_location='cpu', weights_only=True)
        already_safe = True
    except pickle.UnpicklingError:
        already_safe = False
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    if isinstance(ckpt, dict) and 'state_dict' not in ckpt and ckpt and all(
            isinstance(v, torch.Tensor) for v in ckpt.values()):
        ckpt = {'state_dict': ckpt}  # a bare state dict
    if not isinstance(ckpt, dict) or not isinstance(
            ckpt.get('state_dict'), dict):
        raise ValueError(f'{src} has no state_dict: is it a checkpoint?')
    if state_dict_only:
        ckpt = {k: ckpt[k] for k in ('state_dict', 'meta') if k in ckpt}
    dropped: List[Tuple[str, str]] = []
    out = {}
    for k, v in ckpt.items():
        v = _sanitize(v, str(k), dropped)
        if v is not _DROP:
            out[str(k)] = v

    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, tmp_name(osp.basename(dst)))
    try:
        torch.save(out, tmp)
        try:
            back = torch.load(tmp, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as e:
            raise RuntimeError(f'the converted {src} still does not load '
                               f'weights-only: {e}') from e
        before = dict(_tensors(ckpt['state_dict']))
        after = dict(_tensors(back['state_dict']))
        if before.keys() != after.keys() or not all(
                _same(before[k], after[k]) for k in before):
            raise RuntimeError(f'the state_dict of the converted {src} '
                               'differs from the original')
        _publish(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return dict(keys=list(out), tensors=len(after), dropped=dropped,
                already_safe=already_safe)
