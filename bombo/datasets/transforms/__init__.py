from .partial import InstancesToSemSeg, LoadImageOrSkip, PackPartialInputs
from .pseudo_mask import GenerateBoxMask, LoadPseudoMask

__all__ = [
    'GenerateBoxMask', 'InstancesToSemSeg', 'LoadImageOrSkip',
    'LoadPseudoMask', 'PackPartialInputs'
]
