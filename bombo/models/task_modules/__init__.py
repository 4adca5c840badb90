from .b4m_branch import BoxForMaskBranch
from .m4b_branch import MaskForBoxBranch
from .mask_for_box import refine_boxes_from_mask
from .memory_bank import ClassMemoryBank
from .pseudo_boxes import MaskForBoxRefiner

__all__ = [
    'BoxForMaskBranch', 'ClassMemoryBank', 'MaskForBoxBranch',
    'MaskForBoxRefiner', 'refine_boxes_from_mask'
]
