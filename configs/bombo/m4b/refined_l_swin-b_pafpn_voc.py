# Table 1 "M4B Refined", L (swin-b_pafpn, voc): BoMBo paper, Sec. 3.2.
_base_ = '../mtl_swin-b_pafpn_voc.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=20),
        loss_mode='L'),
    teacher=dict(type='ema'),
)
