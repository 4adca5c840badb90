# Table 1 "GT Masks", L (swin-t_pafpn, voc): BoMBo paper, Sec. 3.2.
_base_ = '../mtl_swin-t_pafpn_voc.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='mask_boxes', num_classes=20),
        loss_mode='L'),
)
