# COCO partial split with Box-for-Mask targets on the detection eighth (see
# voc_partial_b4m.py). Make the cache once:
#   python tools/make_pseudo_masks.py CONFIG --workers 8
_base_ = './coco_partial.py'
pseudo_mask_dir = 'data/coco/pseudo_masks/'
b4m_det_pipeline = [
    dict(type='LoadImageOrSkip', on_error='skip'),
    dict(type='LoadPartialAnnotations', with_bbox=True),
    dict(type='LoadPseudoMask', pseudo_mask_dir=pseudo_mask_dir),
    dict(type='RandomResize', scale=[(256, 256), (384, 384)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='GenerateBoxMask'),
    dict(type='PackPartialInputs')
]
train_dataloader = dict(dataset=dict(datasets=[
    dict(_base_.det_train, pipeline=b4m_det_pipeline), _base_.seg_train]))
