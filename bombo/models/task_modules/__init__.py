from .m4b_branch import MaskForBoxBranch
from .mask_for_box import refine_boxes_from_mask
from .pseudo_boxes import MaskForBoxRefiner

__all__ = ['MaskForBoxBranch', 'MaskForBoxRefiner', 'refine_boxes_from_mask']
