# Table 5 "+ BoMBo": M4B (L) + B4M, lambda = 2 (swin-b_pafpn, coco): BoMBo paper, Sec. 4.4.
# Make the GrabCut pseudo-mask cache once before training:
#   python tools/make_pseudo_masks.py THIS_CONFIG --workers 8
_base_ = [
    '../_base_/models/mtl_swin-b_pafpn.py',
    '../_base_/datasets/coco_partial_b4m.py',
    '../_base_/schedules/sgd_70e.py',
    '../_base_/default_runtime.py'
]
max_iters = 32060  # 70 epochs of 14,656 images / 32
train_cfg = dict(max_iters=max_iters, val_interval=4580)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.7), int(max_iters * 0.9)], gamma=0.1)
]
b4m = dict(type='BoxForMaskBranch', num_classes=80, feat_dim=128,
           use_seg=True, use_attention=True, use_object=True,
           bank_size=64)
model = dict(
    bbox_head=dict(num_classes=80),
    seg_head=dict(num_classes=80, with_attention=True),
    b4m=b4m,
    teacher=dict(type='ema'),
    seg_weight=2.0,  # λ of Eq. 1 (Sec. 4.4)
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=80),
        loss_mode='L'),
)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4580))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
