from . import detectors, heads, losses, seg_heads, task_modules  # noqa: F401
from .data_preprocessors import PartialDataPreprocessor

__all__ = ['PartialDataPreprocessor']
