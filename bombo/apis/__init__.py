"""Inference and config helpers: :class:`PartialDetInferencer` (mmdet's
``DetInferencer`` for bombo's configs) and ``bombo::`` config paths."""
from .config_scope import config_dir, register_config_scope
from .inferencer import (PartialDetInferencer, encode_sem_seg, inference_cfg,
                         inference_pipeline, init_detector)

__all__ = [
    'PartialDetInferencer', 'config_dir', 'encode_sem_seg', 'inference_cfg',
    'inference_pipeline', 'init_detector', 'register_config_scope'
]
