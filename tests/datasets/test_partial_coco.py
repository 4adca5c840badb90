"""PartialCocoDataset, the COCO segmentation pipeline and the COCO partial
config, on a tiny hand-made COCO json with two tiny images."""
import copy
import json
import os.path as osp

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS, DATA_SAMPLERS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

import bombo.datasets.partial_coco  # noqa: F401  (registers the dataset)
import bombo.datasets.transforms.partial  # noqa: F401  (registers transforms)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/_base_/datasets/coco_partial.py')
CLASSES = CocoDataset.METAINFO['classes']
H, W = 10, 12


def rle(bitmap):
    r = mask_utils.encode(np.asfortranarray(bitmap.astype(np.uint8)))
    r['counts'] = r['counts'].decode()
    return r


def box_of(bitmap):
    ys, xs = np.nonzero(bitmap)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1)]


def rect(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


PERSON = rect(1, 8, 1, 10)      # label 0, area 63
CAR = rect(3, 5, 3, 6)          # label 2, inside the person, area 6
CROWD = rect(8, 10, 0, 3)       # dog crowd -> 255
POLY = [10.0, 0.0, 12.0, 0.0, 12.0, 4.0, 10.0, 4.0]   # cat, a polygon


def expected_seg():
    """The semantic map of image 1, by hand: 0 bg, label + 1, 255 crowd."""
    seg = np.zeros((H, W), np.uint8)
    seg[PERSON] = 1
    seg[CAR] = 3                # smaller object drawn over the larger
    seg[CROWD] = 255
    seg[poly_bitmap()] = CLASSES.index('cat') + 1
    return seg


def poly_bitmap():
    rles = mask_utils.frPyObjects([POLY], H, W)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


@pytest.fixture
def coco_root(tmp_path):
    """data_root with train2017/ (2 images) and a json (all 80 classes,
    ids 1..80; image 2 has no annotation)."""
    (tmp_path / 'train2017').mkdir()
    (tmp_path / 'annotations').mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (H, W, 3), np.uint8)).save(
        tmp_path / 'train2017' / 'a.jpg')
    Image.fromarray(rng.integers(0, 255, (6, 8, 3), np.uint8)).save(
        tmp_path / 'train2017' / 'b.jpg')
    cat = {n: i + 1 for i, n in enumerate(CLASSES)}
    anns = [
        dict(id=1, image_id=1, category_id=cat['person'], iscrowd=0,
             segmentation=rle(PERSON), bbox=box_of(PERSON), area=63),
        dict(id=2, image_id=1, category_id=cat['car'], iscrowd=0,
             segmentation=rle(CAR), bbox=box_of(CAR), area=6),
        dict(id=3, image_id=1, category_id=cat['dog'], iscrowd=1,
             segmentation=rle(CROWD), bbox=box_of(CROWD), area=6),
        dict(id=4, image_id=1, category_id=cat['cat'], iscrowd=0,
             segmentation=[POLY], bbox=[10, 0, 2, 4], area=8),
    ]
    coco = dict(
        images=[dict(id=1, file_name='a.jpg', height=H, width=W),
                dict(id=2, file_name='b.jpg', height=6, width=8)],
        annotations=anns,
        categories=[dict(id=i, name=n) for n, i in cat.items()])
    for name in ('det_train', 'seg_train', 'val'):
        (tmp_path / 'annotations' / f'{name}.json').write_text(
            json.dumps(coco))
    init_default_scope('mmdet')
    return str(tmp_path)


def build(root, task, pipeline=(), **kw):
    return DATASETS.build(dict(
        type='PartialCocoDataset', data_root=root,
        ann_file=f'annotations/{task}_train.json', ann_task=task,
        data_prefix=dict(img='train2017/'), pipeline=list(pipeline), **kw))


def test_det_split_boxes_and_labels(coco_root):
    ds = build(coco_root, 'det', filter_cfg=dict(filter_empty_gt=True))
    assert len(ds) == 1                       # image 2 has no box: filtered
    assert ds.skipped['no boxes or too small'] == 1
    info = ds.get_data_info(0)
    assert info['ann_task'] == 'det' and info['seg_map_path'] is None
    labels = [i['bbox_label'] for i in info['instances']]
    assert labels == [0, 2, 16, 15]           # person, car, dog, cat
    assert [i['ignore_flag'] for i in info['instances']] == [0, 0, 1, 0]
    assert info['instances'][1]['bbox'] == [3, 3, 6, 5]   # xyxy


def test_det_pipeline_keeps_boxes(coco_root):
    ds = build(coco_root, 'det', pipeline=[
        dict(type='LoadImageOrSkip'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackPartialInputs')])
    sample = ds[0]['data_samples']
    assert sample.metainfo['ann_task'] == 'det'
    assert sample.gt_instances.labels.tolist() == [0, 2, 15]
    assert 'gt_sem_seg' not in sample


def test_seg_pipeline_rasterises_masks_and_drops_boxes(coco_root):
    ds = build(coco_root, 'seg', pipeline=[
        dict(type='LoadImageOrSkip'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='InstancesToSemSeg'),
        dict(type='PackPartialInputs')],
        filter_cfg=dict(filter_empty_gt=True))
    assert len(ds) == 2                       # seg splits keep empty images
    out = ds[0]
    sample = out['data_samples']
    assert sample.metainfo['ann_task'] == 'seg'
    assert len(sample.gt_instances) == 0
    assert len(sample.ignored_instances) == 0
    seg = sample.gt_sem_seg.sem_seg[0].numpy()
    np.testing.assert_array_equal(seg, expected_seg())
    assert set(np.unique(seg)) == {0, 1, 3, 16, 255}
    # image 2: no instance -> all background, still a valid example
    seg2 = ds[1]['data_samples'].gt_sem_seg.sem_seg[0].numpy()
    assert seg2.shape == (6, 8) and (seg2 == 0).all()


def _config(coco_root):
    cfg = Config.fromfile(CONFIG)
    root = coco_root.rstrip('/') + '/'
    for d in cfg.train_dataloader.dataset.datasets:
        d.data_root = root
    cfg.val_dataloader.dataset.data_root = root
    cfg.val_dataloader.dataset.ann_file = 'annotations/val.json'
    cfg.val_dataloader.dataset.data_prefix = dict(img='train2017/')
    return cfg


def test_config_train_datasets_and_sampler(coco_root):
    cfg = _config(coco_root)
    det_cfg, seg_cfg = cfg.train_dataloader.dataset.datasets
    assert det_cfg.ann_file == 'annotations/partial/det_train.json'
    assert seg_cfg.ann_file == 'annotations/partial/seg_train.json'
    assert det_cfg.filter_cfg == dict(filter_empty_gt=True, min_size=32)
    det_cfg.filter_cfg.min_size = 0           # our images are 10x12
    det_cfg.ann_file = 'annotations/det_train.json'
    seg_cfg.ann_file = 'annotations/seg_train.json'
    for p in seg_cfg.pipeline:                # deterministic flip
        if p.type == 'RandomFlip':
            p.prob = 0.0
    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    assert len(dataset) == 1 + 2
    sampler = DATA_SAMPLERS.build(dict(cfg.train_dataloader.sampler,
                                       batch_size=4),
                                  default_args=dict(dataset=dataset, seed=0))
    it = iter(sampler)
    batch = [next(it) for _ in range(4)]
    assert sum(i < 1 for i in batch) == 2     # 2 det + 2 seg per batch
    det = dataset[0]['data_samples']
    assert det.metainfo['ann_task'] == 'det' and len(det.gt_instances) == 3
    seg_out = dataset[1]
    seg = seg_out['data_samples']
    assert seg.metainfo['ann_task'] == 'seg' and len(seg.gt_instances) == 0
    # rasterised at 10x12 then resized with the image (nearest)
    assert tuple(seg.gt_sem_seg.sem_seg.shape[1:]) == \
        tuple(seg_out['inputs'].shape[1:]) == (267, 320)
    assert set(np.unique(seg.gt_sem_seg.sem_seg.numpy())) == \
        {0, 1, 3, 16, 255}


def test_config_val_semantic_gt_at_original_size(coco_root):
    cfg = _config(coco_root)
    ds = DATASETS.build(copy.deepcopy(cfg.val_dataloader.dataset))
    out = ds[0]
    sample = out['data_samples']
    assert sample.metainfo['ann_task'] == 'both'
    assert tuple(out['inputs'].shape[1:]) == (267, 320)
    np.testing.assert_array_equal(sample.gt_sem_seg.sem_seg[0].numpy(),
                                  expected_seg())
    assert len(sample.gt_instances) == 3      # boxes kept for evaluation
