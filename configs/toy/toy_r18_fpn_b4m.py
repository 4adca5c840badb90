# Toy multi-task baseline + Box-for-Mask (BoMBo paper, Sec. 3.3, Table 4 last
# row): GrabCut pseudo-masks (L_S), the attention branch (L_alpha) and the
# object triplet loss (L_object) train the semantic head from boxes.
# Make the pseudo-mask cache once before training:
#   python tools/make_pseudo_masks.py configs/toy/toy_r18_fpn_b4m.py --workers 2
_base_ = './toy_r18_fpn_mtl.py'
pseudo_mask_dir = 'data/toy/pseudo_masks/'
det_pipeline = [
    dict(type='LoadImageOrSkip', on_error='skip'),
    dict(type='LoadPartialAnnotations', with_bbox=True),
    dict(type='LoadPseudoMask', pseudo_mask_dir=pseudo_mask_dir,
         cache_source='configs/toy/toy_r18_fpn_b4m.py'),
    dict(type='Resize', scale=_base_.img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='GenerateBoxMask'),
    dict(type='PackPartialInputs')
]
train_dataloader = dict(dataset=dict(datasets=[
    dict(_base_.det_train, pipeline=det_pipeline), _base_.seg_train]))
b4m = dict(type='BoxForMaskBranch', num_classes=3, feat_dim=64,
           use_seg=True, use_attention=True, use_object=True, bank_size=64)
model = dict(seg_head=dict(with_attention=True), b4m=b4m,
             teacher=dict(type='ema'))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
