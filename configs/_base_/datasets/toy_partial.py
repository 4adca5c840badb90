# The generated toy dataset (tools/make_toy_dataset.py) read through the same
# VOC-layout code path as Pascal VOC: det_train (boxes only), seg_train (masks
# only), val (both).
dataset_type = 'PartialVOCDataset'
data_root = 'data/toy/'
# the root the paths below were built from: bombo's tools re-root every
# copy when data_root is overridden (bombo/utils/config.py)
base_data_root = data_root
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'),
                palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75)])
base_metainfo = metainfo
img_scale = (128, 128)
per_task_batch = 8
# the toy configs' lr is set for this layout, 1×(8+8): one process, 8
# detection + 8 segmentation images per step (tools/train.py --auto-scale-lr
# scales it for N processes, docs/training_at_scale.md)
auto_scale_lr = dict(enable=False, base_batch_size=2 * per_task_batch)

det_pipeline = [
    dict(type='LoadImageOrSkip', on_error='skip'),
    dict(type='LoadPartialAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPartialInputs')
]
seg_pipeline = [
    dict(type='LoadImageOrSkip', on_error='skip'),
    dict(type='LoadPartialAnnotations', with_bbox=False, with_label=False,
         with_seg=True, imdecode_backend='pillow'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPartialInputs')
]
test_pipeline = [
    dict(type='LoadImageOrSkip', on_error='raise'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadPartialAnnotations', with_bbox=True, with_seg=True,
         imdecode_backend='pillow'),
    dict(type='PackPartialInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'ann_task', 'instances'))
]
det_train = dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='ImageSets/Main/det_train.txt', ann_task='det',
                 filter_cfg=dict(filter_empty_gt=True), pipeline=det_pipeline)
seg_train = dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='ImageSets/Main/seg_train.txt', ann_task='seg',
                 filter_cfg=dict(filter_empty_gt=True), pipeline=seg_pipeline)
train_dataloader = dict(
    batch_size=2 * per_task_batch,
    num_workers=0,
    sampler=dict(type='MultiSourceSampler', batch_size=2 * per_task_batch,
                 source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=[det_train, seg_train]))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='ImageSets/Main/val.txt', ann_task='both',
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='FastCocoMetric', metric='bbox', ann_file=None, classwise=True),
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    dict(type='SemanticIoUMetric'),
    dict(type='TIDEMetric'),
]
test_evaluator = val_evaluator
