from .partial import InstancesToSemSeg, LoadImageOrSkip, PackPartialInputs

__all__ = ['InstancesToSemSeg', 'LoadImageOrSkip', 'PackPartialInputs']
