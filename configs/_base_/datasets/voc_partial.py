# Pascal VOC 07+12 with SBD masks, split into a detection half and a
# segmentation half (BoMBo paper, Sec. 4.1). Lay the data out as described in
# the README ("Data preparation"); `tools/make_splits.py voc` writes the
# ImageSets/Partial/*.txt split files (or copies the paper's lists).
dataset_type = 'PartialVOCDataset'
data_root = 'data/VOCdevkit/'
# the root the paths below were built from: bombo's tools re-root every
# copy when data_root is overridden (bombo/utils/config.py)
base_data_root = data_root
img_scale = (320, 320)  # the reference implementation's input size
per_task_batch = 32
backend_args = None

det_pipeline = [
    dict(type='LoadImageOrSkip', on_error='skip'),
    dict(type='LoadPartialAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=[(256, 256), (384, 384)],
         keep_ratio=True),
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
    # annotations after Resize: evaluation at the original resolution
    dict(type='LoadPartialAnnotations', with_bbox=True, with_seg=True,
         imdecode_backend='pillow'),
    dict(type='PackPartialInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'ann_task', 'instances'))
]


def _year(year, split, task, pipeline, seg_dir):
    return dict(
        type=dataset_type, data_root=data_root + f'VOC{year}/',
        ann_file=f'ImageSets/Partial/{split}.txt', ann_task=task,
        data_prefix=dict(img='JPEGImages', ann='Annotations', seg=seg_dir),
        filter_cfg=dict(filter_empty_gt=True), pipeline=pipeline)


det_train = dict(type='ConcatDataset', datasets=[
    _year(2007, 'det_train', 'det', det_pipeline, 'SegmentationClass'),
    _year(2012, 'det_train', 'det', det_pipeline, 'SegmentationClassAug')])
seg_train = dict(type='ConcatDataset', datasets=[
    _year(2007, 'seg_train', 'seg', seg_pipeline, 'SegmentationClass'),
    _year(2012, 'seg_train', 'seg', seg_pipeline, 'SegmentationClassAug')])

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
        type=dataset_type, data_root=data_root + 'VOC2012/',
        # written by tools/make_splits.py voc (Segmentation/val.txt minus
        # missing files, or the authors' MXEseg/val.txt with --from-lists)
        ann_file='ImageSets/Partial/val.txt', ann_task='both',
        data_prefix=dict(img='JPEGImages', ann='Annotations',
                         seg='SegmentationClass'),
        test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='FastCocoMetric', metric='bbox', ann_file=None,
         classwise=True),
    # VOC2010+ protocol (area under the interpolated PR curve): the
    # evaluation set is VOC2012's
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    dict(type='SemanticIoUMetric'),
    dict(type='TIDEMetric'),
]
test_evaluator = val_evaluator
