"""Losses computed in fp32 whatever the precision of their inputs (AMP).

Under mixed precision (``torch.autocast``, ``--amp``) the embeddings, logits
and attention maps reaching a loss may be fp16 or bf16, and the ops inside
the loss would run in half precision too. The bombo losses count triplets,
take square roots of squared distances, sum over whole batches and divide by
counts; in fp16 those overflow (a count above 65,504 is ``inf``), underflow
(the 1e-16 shift that keeps ``sqrt``'s gradient finite at 0 is 0 in fp16) or
lose every digit (bf16 keeps 8 bits of mantissa). :func:`fp32_loss` runs a
loss with autocast disabled and every fp16/bf16 tensor argument cast to
fp32, so the loss, its counts and its gradient are the fp32 ones; the
gradient flows back to the half-precision inputs in their own dtype.

fp32 and fp64 inputs are passed through untouched, so results without AMP
are bit-for-bit what they were.
"""
import contextlib
import functools
from typing import Any, Callable, Iterable, Set

import torch
from torch import Tensor

HALF_DTYPES = (torch.float16, torch.bfloat16)


def _upcast(obj: Any, devices: Set[str]) -> Any:
    """fp16/bf16 tensors (also inside lists/tuples) -> fp32; records the
    device types met in ``devices``."""
    if isinstance(obj, Tensor):
        devices.add(obj.device.type)
        return obj.float() if obj.dtype in HALF_DTYPES else obj
    if type(obj) in (list, tuple):
        return type(obj)(_upcast(v, devices) for v in obj)
    return obj


def fp32_loss(fn: Callable) -> Callable:
    """Decorator: run ``fn`` in fp32 (see the module docstring).

    Floating tensors of half precision among the positional and keyword
    arguments (and in plain lists/tuples of them) are cast to fp32, and
    autocast is disabled on the CPU and on every device those tensors live
    on, for the duration of the call.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        devices = {'cpu'}
        args = _upcast(args, devices)
        kwargs = {k: _upcast(v, devices) for k, v in kwargs.items()}
        with autocast_disabled(devices):
            return fn(*args, **kwargs)

    return wrapper


def autocast_disabled(devices: Iterable[str]) -> contextlib.ExitStack:
    """Context disabling autocast on the CPU and the given device types."""
    stack = contextlib.ExitStack()
    for device in sorted(set(devices) | {'cpu'}):
        stack.enter_context(torch.autocast(device_type=device, enabled=False))
    return stack
