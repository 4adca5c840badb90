"""bombo: multi-task partially supervised detection and segmentation
(Box-for-Mask and Mask-for-Box) as an mmdetection 3.x plugin.

Importing ``bombo`` registers every module in mmdet's registries, so configs
only need ``custom_imports = dict(imports=['bombo'])``.
"""
from . import datasets, engine, evaluation, models, utils  # noqa: F401
from . import apis, visualization  # noqa: F401
from .version import __version__  # noqa: F401
