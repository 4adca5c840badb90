# BoMBo (M4B + B4M, lambda = 2, R18-FPN) on YOUR data, given as COCO jsons:
#
#   data/my_data/images/                     every image (any sub-folders)
#   data/my_data/annotations/det_train.json  boxes only (`bbox`; no mask needed)
#   data/my_data/annotations/seg_train.json  masks only (`segmentation`:
#                                            polygons or RLE; `bbox` optional)
#   data/my_data/annotations/val.json        boxes and masks
#
# Copy this file, set `data_root`, `metainfo` (your category names, in the
# order of their category ids) and the file names below; nothing else. The
# class list reaches every dataset and `num_classes` of every head, and
# `data_root` every path (the pseudo-mask cache included), when the config is
# read by bombo's tools (tools/train.py, test.py, make_pseudo_masks.py, ...;
# in Python: `bombo.utils.load_config`). Then:
#
#   python tools/make_pseudo_masks.py YOUR_COPY.py --workers 8
#   python tools/train.py YOUR_COPY.py
#   python tools/test.py YOUR_COPY.py work_dirs/YOUR_COPY/iter_32060.pth
#
# For the baseline, inherit '../bombo/mtl_r18_fpn_coco.py' instead (no cache
# needed); for another schedule, set train_cfg.max_iters (one iteration = one
# batch of each task). See docs/data_preparation.md, "Your own data".
_base_ = '../bombo/bombo_r18_fpn_coco.py'

data_root = 'data/my_data/'
metainfo = dict(classes=('cat', 'dog', 'bird'))
img_dir = 'images/'
det_ann = 'annotations/det_train.json'
seg_ann = 'annotations/seg_train.json'
val_ann = 'annotations/val.json'
# the values the dicts below (and the base's) were built with: bombo's tools
# re-root / re-label every copy when a config derived from this one changes
# data_root or metainfo (bombo/utils/config.py)
base_data_root = [_base_.base_data_root, data_root]
base_metainfo = metainfo

train_dataloader = dict(dataset=dict(datasets=[
    dict(_base_.train_dataloader.dataset.datasets[0], data_root=data_root,
         ann_file=det_ann, data_prefix=dict(img=img_dir), metainfo=metainfo),
    dict(_base_.train_dataloader.dataset.datasets[1], data_root=data_root,
         ann_file=seg_ann, data_prefix=dict(img=img_dir), metainfo=metainfo),
]))
val_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file=val_ann, data_prefix=dict(img=img_dir),
    metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='FastCocoMetric', ann_file=data_root + val_ann, metric='bbox'),
    dict(type='SemanticIoUMetric'),
    dict(type='TIDEMetric'),
]
test_evaluator = val_evaluator
