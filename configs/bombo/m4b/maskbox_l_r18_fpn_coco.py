# Table 1 "GT Masks", L (r18_fpn, coco): BoMBo paper, Sec. 3.2.
_base_ = '../mtl_r18_fpn_coco.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='mask_boxes', num_classes=80),
        loss_mode='L'),
)
