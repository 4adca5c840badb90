# VOC partial split with Box-for-Mask targets on the detection half: the
# GrabCut pseudo-mask M^c from the offline cache (gt_seg_map) and the
# box-shaped mask M^b (gt_box_mask). Make the cache once:
#   python tools/make_pseudo_masks.py CONFIG --workers 8
_base_ = './voc_partial.py'
pseudo_mask_dir = 'data/VOCdevkit/pseudo_masks/'
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
_det = _base_.train_dataloader.dataset.datasets[0]
train_dataloader = dict(dataset=dict(datasets=[
    dict(_det, datasets=[dict(d, pipeline=b4m_det_pipeline)
                         for d in _det.datasets]),
    _base_.train_dataloader.dataset.datasets[1]]))
