# Table 1 "M4B Refined", C (r18_fpn, coco): BoMBo paper, Sec. 3.2.
_base_ = '../mtl_r18_fpn_coco.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=80),
        loss_mode='C'),
    teacher=dict(type='ema'),
)
