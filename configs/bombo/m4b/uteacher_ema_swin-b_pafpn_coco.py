# Table 3 "U-Teacher", EMA (swin-b_pafpn, coco): BoMBo paper, Sec. 3.2.
_base_ = '../mtl_swin-b_pafpn_coco.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='unbiased_teacher', num_classes=80),
        loss_mode='L'),
    teacher=dict(type='ema'),
)
