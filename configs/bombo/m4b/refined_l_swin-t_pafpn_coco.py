# Table 1 "M4B Refined", L (swin-t_pafpn, coco): BoMBo paper, Sec. 3.2.
_base_ = '../mtl_swin-t_pafpn_coco.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=80),
        loss_mode='L'),
    teacher=dict(type='ema'),
)
