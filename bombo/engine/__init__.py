from .atomic_checkpoint import AtomicCheckpointHook
from .checkpoint_io import (UnsafeCheckpointError, checkpoint_errors,
                            convert_checkpoint, load_checkpoint_safe,
                            load_state_dict_safe)
from .foreach_ema import ForeachExpMomentumEMA
from .safe_checkpoint_hook import SafeCheckpointHook
from .teacher_hook import TeacherEMAHook

__all__ = [
    'AtomicCheckpointHook', 'ForeachExpMomentumEMA', 'SafeCheckpointHook',
    'TeacherEMAHook',
    'UnsafeCheckpointError', 'checkpoint_errors', 'convert_checkpoint',
    'load_checkpoint_safe', 'load_state_dict_safe'
]
