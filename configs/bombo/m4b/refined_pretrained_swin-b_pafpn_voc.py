# Table 3 "M4B Refined", pre-trained (swin-b_pafpn, voc): BoMBo paper, Sec. 3.2.
# the teacher is the trained baseline: train configs/bombo/mtl_swin-b_pafpn_voc.py first
# (on N processes with --scale-schedule it ends at iter_<16800 / N>.pth: set
# model.teacher.checkpoint to it)
_base_ = '../mtl_swin-b_pafpn_voc.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=20),
        loss_mode='L'),
    teacher=dict(type='pretrained', checkpoint='work_dirs/mtl_swin-b_pafpn_voc/iter_16800.pth'),
)
