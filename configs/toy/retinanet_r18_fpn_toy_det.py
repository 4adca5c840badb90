# Detection-only RetinaNet R18-FPN(64) teacher on the toy det_train split
# (mmdet modules only), used to measure Mask-for-Box with a trained teacher.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
classes = ('rectangle', 'ellipse', 'triangle')
data_root = 'data/toy/'
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64,
              start_level=1, add_extra_convs='on_input', num_outs=4),
    bbox_head=dict(num_classes=3, in_channels=64, feat_channels=64,
                   stacked_convs=2,
                   anchor_generator=dict(octave_base_scale=2,
                                         strides=[8, 16, 32, 64])),
    test_cfg=dict(score_thr=0.05, max_per_img=50))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/det_train.json',
                 data_prefix=dict(img='JPEGImages/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/val.json',
                 data_prefix=dict(img='JPEGImages/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
max_iters = 1800
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[1350, 1620], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    visualization=dict(draw=False))
log_processor = dict(by_epoch=False)
# the lr above is for 1×8 images per step (mmdet's base says 16)
auto_scale_lr = dict(enable=False, base_batch_size=8)
randomness = dict(seed=0)
# checkpoints that load with torch.load(weights_only=True)
custom_imports = dict(imports=['bombo'], allow_failed_imports=False)
custom_hooks = [dict(type='SafeCheckpointHook', priority='VERY_LOW')]
