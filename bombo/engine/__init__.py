from .atomic_checkpoint import AtomicCheckpointHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .teacher_hook import TeacherEMAHook

__all__ = ['AtomicCheckpointHook', 'SafeCheckpointHook', 'TeacherEMAHook']
