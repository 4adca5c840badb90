# Toy BoMBo (BoMBo paper, Sec. 4.4, Table 5): Mask-for-Box (refined, L) and
# Box-for-Mask (L_S + L_alpha + L_object) in one network, lambda = 2 in Eq. 1.
# Make the pseudo-mask cache once before training:
#   python tools/make_pseudo_masks.py configs/toy/toy_r18_fpn_bombo.py --workers 2
_base_ = './toy_r18_fpn_b4m.py'
model = dict(
    seg_weight=2.0,
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=3),
        loss_mode='L'))
