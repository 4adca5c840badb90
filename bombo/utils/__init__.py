"""Helpers shared by bombo's tools (config resolution)."""
from .config import check_num_classes, load_config, resolve_config

__all__ = ['check_num_classes', 'load_config', 'resolve_config']
