# Table 4 "+ L_S" (r18_fpn, voc): BoMBo paper, Sec. 3.3: cross-entropy
# on the GrabCut pseudo-masks of the detection-annotated images.
# Make the pseudo-mask cache once before training:
#   python tools/make_pseudo_masks.py configs/bombo/b4m/seg_r18_fpn_voc.py --workers 8
# (one cache per dataset, shared by every B4M / BoMBo config of it)
_base_ = [
    '../../_base_/models/mtl_r18_fpn.py',
    '../../_base_/datasets/voc_partial_b4m.py',
    '../../_base_/schedules/sgd_70e.py',
    '../../_base_/default_runtime.py'
]
num_classes = 20  # one place: tools propagate it to every head
base_num_classes = num_classes  # the value written below
model = dict(
    bbox_head=dict(num_classes=20),
    seg_head=dict(num_classes=20),
    b4m=dict(type='BoxForMaskBranch', num_classes=20, feat_dim=128,
             use_seg=True, use_attention=False, use_object=False,
             bank_size=64),
    teacher=dict(type='ema'))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2400))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
