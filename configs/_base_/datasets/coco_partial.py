# COCO 2017 in the multi-task partially supervised setting (BoMBo paper,
# Sec. 4.1): one eighth of train2017 annotated for detection (14,655 images),
# another eighth for semantic segmentation (14,656), evaluated on val2017
# (5,000). `tools/make_splits.py coco` writes annotations/partial/*.json (see
# docs/data_preparation.md). Classes: the 80 COCO classes (PartialCocoDataset
# inherits mmdet's CocoDataset.METAINFO); the semantic head predicts 1 + 80
# channels (0 = background, label + 1 = class, 255 = ignore / crowd).
dataset_type = 'PartialCocoDataset'
data_root = 'data/coco/'
# the root the paths below were built from: bombo's tools re-root every
# copy when data_root is overridden (bombo/utils/config.py)
base_data_root = data_root
img_scale = (320, 320)  # the reference implementation's input size
per_task_batch = 32
backend_args = None

det_pipeline = [
    dict(type='LoadImageOrSkip', on_error='skip', backend_args=backend_args),
    dict(type='LoadPartialAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=[(256, 256), (384, 384)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPartialInputs')
]
seg_pipeline = [
    dict(type='LoadImageOrSkip', on_error='skip', backend_args=backend_args),
    dict(type='LoadPartialAnnotations', with_bbox=True, with_mask=True),
    # instance masks -> gt_seg_map (label + 1, crowd -> 255); boxes dropped
    dict(type='InstancesToSemSeg'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPartialInputs')
]
test_pipeline = [
    dict(type='LoadImageOrSkip', on_error='raise', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # annotations after Resize: evaluation at the original resolution (the
    # masks are decoded at `ori_shape`; the semantic map is drawn at the
    # masks' own size)
    dict(type='LoadPartialAnnotations', with_bbox=True, with_mask=True),
    dict(type='InstancesToSemSeg', drop_instances=False),
    dict(type='PackPartialInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'ann_task'))
]

det_train = dict(
    type=dataset_type, data_root=data_root,
    ann_file='annotations/partial/det_train.json', ann_task='det',
    data_prefix=dict(img='train2017/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline=det_pipeline, backend_args=backend_args)
seg_train = dict(
    type=dataset_type, data_root=data_root,
    ann_file='annotations/partial/seg_train.json', ann_task='seg',
    data_prefix=dict(img='train2017/'),
    pipeline=seg_pipeline, backend_args=backend_args)

train_dataloader = dict(
    batch_size=2 * per_task_batch,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=2 * per_task_batch,
                 source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=[det_train, seg_train]))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='annotations/instances_val2017.json', ann_task='both',
        data_prefix=dict(img='val2017/'), test_mode=True,
        pipeline=test_pipeline, backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = [
    # mmdet's CocoMetric (faster-coco-eval backend) that still reports every
    # bbox key with zero detections
    dict(type='FastCocoMetric', ann_file=data_root +
         'annotations/instances_val2017.json', metric='bbox',
         format_only=False, backend_args=backend_args),
    dict(type='SemanticIoUMetric'),
    dict(type='TIDEMetric'),
]
test_evaluator = val_evaluator
