# Multi-task partially supervised detector: ResNet-18 + FPN, RetinaHead
# (FocalLoss + BalancedL1Loss, the paper's reference losses) on P3-P7 and a
# panoptic-FPN-style semantic head on P2-P5.
num_classes = 20
# the value the heads below were built with: bombo's tools give every head
# the top-level num_classes when it is overridden (bombo/utils/config.py)
base_num_classes = num_classes
model = dict(
    type='PartialMultiTaskDetector',
    data_preprocessor=dict(
        type='PartialDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet18')),
    neck=dict(
        type='FPN',
        in_channels=[64, 128, 256, 512],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=6),  # P2..P7
    det_levels=(1, 2, 3, 4, 5),  # P3..P7 as RetinaNet
    seg_levels=(0, 1, 2, 3),  # P2..P5 as Panoptic FPN
    seg_weight=1.0,
    bbox_head=dict(
        type='RetinaHead',
        num_classes=num_classes,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(
            type='BalancedL1Loss', alpha=0.5, gamma=1.5, beta=0.11,
            loss_weight=1.0)),
    seg_head=dict(
        type='SemanticFPNHead',
        num_classes=num_classes,
        in_channels=256,
        feat_channels=128,
        num_levels=4,
        ignore_index=255),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0,
            ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100))
