# Table 4 "+ L_S" (swin-b_pafpn, coco): BoMBo paper, Sec. 3.3: cross-entropy
# on the GrabCut pseudo-masks of the detection-annotated images.
# Make the pseudo-mask cache once before training:
#   python tools/make_pseudo_masks.py configs/bombo/b4m/seg_swin-b_pafpn_coco.py --workers 8
# (one cache per dataset, shared by every B4M / BoMBo config of it)
_base_ = [
    '../../_base_/models/mtl_swin-b_pafpn.py',
    '../../_base_/datasets/coco_partial_b4m.py',
    '../../_base_/schedules/sgd_70e_coco.py',
    '../../_base_/default_runtime.py'
]
num_classes = 80  # one place: tools propagate it to every head
base_num_classes = num_classes  # the value written below
model = dict(
    bbox_head=dict(num_classes=80),
    seg_head=dict(num_classes=80),
    b4m=dict(type='BoxForMaskBranch', num_classes=80, feat_dim=128,
             use_seg=True, use_attention=False, use_object=False,
             bank_size=64),
    teacher=dict(type='ema'))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4580))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
