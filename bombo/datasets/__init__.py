from .bad_input import SkipCounter
from .partial_coco import PartialCocoDataset
from .partial_voc import PartialVOCDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['SkipCounter', 'PartialVOCDataset', 'PartialCocoDataset']
