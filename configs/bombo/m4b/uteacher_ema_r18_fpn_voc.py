# Table 3 "U-Teacher", EMA (r18_fpn, voc): BoMBo paper, Sec. 3.2.
_base_ = '../mtl_r18_fpn_voc.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='unbiased_teacher', num_classes=20),
        loss_mode='L'),
    teacher=dict(type='ema'),
)
