from .b4m_branch import BoxForMaskBranch
from .box_labels import BoxLabeler, box_features, elbow_inertias
from .m4b_branch import MaskForBoxBranch
from .mask_for_box import (CASE_NAMES, M4BResult, mask_to_reference_boxes,
                           refine_boxes_from_mask)
from .memory_bank import ClassMemoryBank
from .pseudo_boxes import (MaskForBoxRefiner, m4b_pseudo_instances,
                           mask_box_instances, scores_from_labels,
                           unbiased_teacher_instances)

__all__ = [
    'BoxForMaskBranch', 'BoxLabeler', 'box_features', 'elbow_inertias',
    'ClassMemoryBank', 'MaskForBoxBranch', 'MaskForBoxRefiner',
    'refine_boxes_from_mask', 'CASE_NAMES', 'M4BResult',
    'mask_to_reference_boxes', 'm4b_pseudo_instances', 'mask_box_instances',
    'scores_from_labels', 'unbiased_teacher_instances'
]
