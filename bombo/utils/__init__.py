"""Helpers shared by bombo's tools (config resolution)."""
from .config import (check_num_classes, ensure_required_hooks, load_config,
                     resolve_config)

__all__ = ['check_num_classes', 'ensure_required_hooks', 'load_config',
           'resolve_config']
