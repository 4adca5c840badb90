from .b4m_branch import BoxForMaskBranch
from .box_labels import BoxLabeler, box_features, elbow_inertias
from .m4b_branch import MaskForBoxBranch
from .mask_for_box import refine_boxes_from_mask
from .memory_bank import ClassMemoryBank
from .pseudo_boxes import MaskForBoxRefiner

__all__ = [
    'BoxForMaskBranch', 'BoxLabeler', 'box_features', 'elbow_inertias', 'ClassMemoryBank', 'MaskForBoxBranch',
    'MaskForBoxRefiner', 'refine_boxes_from_mask'
]
