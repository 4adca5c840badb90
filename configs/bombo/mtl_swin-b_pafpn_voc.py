# Multi-task partially supervised baseline (BoMBo paper, Tables 1/3/4/5
# "Baseline" / "MTL"), swin-b_pafpn, VOC07+12 half detection / half segmentation.
_base_ = [
    '../_base_/models/mtl_swin-b_pafpn.py', '../_base_/datasets/voc_partial.py',
    '../_base_/schedules/sgd_70e.py', '../_base_/default_runtime.py'
]
num_classes = 20  # one place: tools propagate it to every head
base_num_classes = num_classes  # the value written below
model = dict(bbox_head=dict(num_classes=20), seg_head=dict(num_classes=20))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2400))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
