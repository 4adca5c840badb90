"""bombo: multi-task partially supervised detection and segmentation
(Box-for-Mask and Mask-for-Box) as an mmdetection 3.x plugin.

Importing ``bombo`` registers every module in mmdet's registries, so configs
only need ``custom_imports = dict(imports=['bombo'])``.
"""
from . import datasets, engine, evaluation, models, utils  # noqa: F401

__version__ = '0.1.0'
