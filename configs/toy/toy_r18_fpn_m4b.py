# Toy multi-task baseline + Mask-for-Box (BoMBo paper, Sec. 3.2): pseudo-boxes
# refined by Algorithm 1 from the masks of segmentation-annotated images and
# the EMA teacher's predictions train the detection head with the
# localisation loss only ("M4B Refined, L", the paper's best row of Table 1).
_base_ = './toy_r18_fpn_mtl.py'
model = dict(
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=3),
        loss_mode='L'),
    teacher=dict(type='ema'))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
