# Multi-task partially supervised baseline (BoMBo paper, Table 5
# "Baseline"), swin-t_pafpn, COCO 1/8 detection + 1/8 segmentation.
_base_ = [
    '../_base_/models/mtl_swin-t_pafpn.py', '../_base_/datasets/coco_partial.py',
    '../_base_/schedules/sgd_70e.py', '../_base_/default_runtime.py'
]
# 70 epochs of 14,656 images at 32 images per task batch
max_iters = 32060
train_cfg = dict(max_iters=max_iters, val_interval=4580)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.7), int(max_iters * 0.9)], gamma=0.1)
]
model = dict(bbox_head=dict(num_classes=80), seg_head=dict(num_classes=80))
