# The demo: multi-task partially supervised baseline (no M4B / B4M) trained
# from scratch on the toy dataset on a CPU. ResNet-18 at half width
# (base_channels=32: 2.1x faster per iteration than full width, measured on
# 2 cores) + FPN(64), RetinaHead on P3-P6 with anchors sized for 16-60 px
# objects, semantic head on P2-P5; 8 detection + 8 segmentation images per
# iteration.
_base_ = [
    '../_base_/models/mtl_r18_fpn.py', '../_base_/datasets/toy_partial.py',
    '../_base_/default_runtime.py'
]
num_classes = 3
base_num_classes = num_classes  # the value written below
model = dict(
    backbone=dict(base_channels=32, frozen_stages=-1, norm_eval=False,
                  init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64,
              num_outs=5),  # P2..P6
    det_levels=(1, 2, 3, 4),
    seg_levels=(0, 1, 2, 3),
    bbox_head=dict(
        num_classes=num_classes, in_channels=64, feat_channels=64,
        stacked_convs=2,
        anchor_generator=dict(octave_base_scale=2, strides=[8, 16, 32, 64])),
    seg_head=dict(num_classes=num_classes, in_channels=64, feat_channels=64),
    test_cfg=dict(score_thr=0.05, max_per_img=50))

max_iters = 1600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    visualization=dict(draw=False))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
