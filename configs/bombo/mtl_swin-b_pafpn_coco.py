# Multi-task partially supervised baseline (BoMBo paper, Tables 1/3/4/5
# "Baseline" / "MTL"), swin-b_pafpn, COCO 1/8 detection + 1/8 segmentation.
_base_ = [
    '../_base_/models/mtl_swin-b_pafpn.py', '../_base_/datasets/coco_partial.py',
    '../_base_/schedules/sgd_70e_coco.py', '../_base_/default_runtime.py'
]
num_classes = 80  # one place: tools propagate it to every head
base_num_classes = num_classes  # the value written below
model = dict(bbox_head=dict(num_classes=80), seg_head=dict(num_classes=80))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4580))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
