# Table 1 "M4B Refined", C (r50_pafpn, voc): BoMBo paper, Sec. 3.2.
_base_ = '../mtl_r50_pafpn_voc.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=20),
        loss_mode='C'),
    teacher=dict(type='ema'),
)
