# Table 5 "+ BoMBo" (r50_pafpn, coco): BoMBo paper, Sec. 4.4: Mask-for-Box
# (refined, L, EMA teacher) and Box-for-Mask (all three losses), lambda = 2.
# Make the pseudo-mask cache once before training:
#   python tools/make_pseudo_masks.py configs/bombo/bombo_r50_pafpn_coco.py --workers 8
_base_ = './b4m/seg_att_object_r50_pafpn_coco.py'
model = dict(
    seg_weight=2.0,  # lambda of Eq. 1
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=80),
        loss_mode='L'))
