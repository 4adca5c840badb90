from .partial import (InstancesToSemSeg, LoadImageOrSkip,
                      LoadPartialAnnotations, PackPartialInputs, check_seg_map)
from .pseudo_mask import GenerateBoxMask, LoadPseudoMask

__all__ = [
    'GenerateBoxMask', 'InstancesToSemSeg', 'LoadImageOrSkip',
    'LoadPartialAnnotations', 'LoadPseudoMask', 'PackPartialInputs',
    'check_seg_map'
]
