# Multi-task partially supervised baseline (BoMBo paper, Tables 1/3/4/5
# "Baseline" / "MTL"), r50_pafpn, COCO 1/8 detection + 1/8 segmentation.
_base_ = [
    '../_base_/models/mtl_r50_pafpn.py', '../_base_/datasets/coco_partial.py',
    '../_base_/schedules/sgd_70e.py', '../_base_/default_runtime.py'
]
max_iters = 32060  # 70 epochs of 14,656 images / 32
train_cfg = dict(max_iters=max_iters, val_interval=4580)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.7), int(max_iters * 0.9)], gamma=0.1)
]
model = dict(bbox_head=dict(num_classes=80), seg_head=dict(num_classes=80))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4580))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
