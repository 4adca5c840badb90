"""Registries of scope ``bombo`` (children of mmdet's, nothing registered
in them: bombo's modules live in mmdet's registries, so every lookup falls
through to mmdet's and then mmengine's). mmengine imports this module when a
config built from a ``bombo::`` base switches to the scope; see
:mod:`bombo.apis.config_scope`."""
from .apis.config_scope import REGISTRIES

globals().update(REGISTRIES)
__all__ = sorted(REGISTRIES)
