# Table 3 "U-Teacher", pre-trained (swin-b_pafpn, coco): BoMBo paper, Sec. 3.2.
# the teacher is the trained baseline: train configs/bombo/mtl_swin-b_pafpn_coco.py first
# (on N processes with --scale-schedule it ends at iter_<32060 / N>.pth: set
# model.teacher.checkpoint to it)
_base_ = '../mtl_swin-b_pafpn_coco.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='unbiased_teacher', num_classes=80),
        loss_mode='L'),
    teacher=dict(type='pretrained', checkpoint='work_dirs/mtl_swin-b_pafpn_coco/iter_32060.pth'),
)
