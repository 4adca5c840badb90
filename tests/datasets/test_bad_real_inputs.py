"""Real-world inputs that used to crash deep inside mmdet / torch end in a
clear error naming the file, a repair, or a counted skip."""
import json


import numpy as np
import pytest
from mmdet.registry import DATASETS
from mmengine.registry import init_default_scope
from PIL import Image

import bombo  # noqa: F401
from bombo.datasets.transforms import LoadPartialAnnotations

init_default_scope('mmdet')


# ---------------------------------------------------------------- COCO json
def _coco(tmp_path, anns, cats=None, split='det_train'):
    (tmp_path / 'train2017').mkdir(exist_ok=True)
    (tmp_path / 'annotations' / 'partial').mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(
        tmp_path / 'train2017' / '000000000001.jpg')
    cats = cats or [dict(id=1, name='person'), dict(id=3, name='car'),
                    dict(id=90, name='toothbrush')]
    coco = dict(images=[dict(id=1, file_name='000000000001.jpg', height=30,
                             width=40)], annotations=anns, categories=cats)
    path = tmp_path / 'annotations' / 'partial' / f'{split}.json'
    path.write_text(json.dumps(coco))
    return str(tmp_path) + '/'


def _build(root, task='det', classes=('person', 'car', 'toothbrush'),
           split='det_train'):
    return DATASETS.build(dict(
        type='PartialCocoDataset', data_root=root,
        ann_file=f'annotations/partial/{split}.json', ann_task=task,
        metainfo=dict(classes=classes), data_prefix=dict(img='train2017/'),
        pipeline=[]))


def test_mask_only_annotations_get_their_box_and_area(tmp_path):
    poly = [[5.0, 4.0, 25.0, 4.0, 25.0, 14.0, 5.0, 14.0]]
    rle = dict(counts=[30 * 10 + 2, 6, 24, 6, 30 * 40 - 30 * 10 - 2 - 36],
               size=[30, 40])
    root = _coco(tmp_path, [
        dict(id=1, image_id=1, category_id=1, iscrowd=0, segmentation=poly),
        dict(id=2, image_id=1, category_id=90, iscrowd=1, segmentation=rle),
    ])
    ds = _build(root)
    inst = ds.get_data_info(0)['instances']
    assert inst[0]['bbox'] == pytest.approx([5, 4, 25, 14])
    assert inst[0]['bbox_label'] == 0
    # RLE: 2 pixels into column 10, 6 rows, then a 24-pixel gap: columns
    # 10 and 11, rows 2..7
    assert inst[1]['bbox'] == pytest.approx([10, 2, 12, 8])
    assert inst[1]['ignore_flag'] == 1 and inst[1]['bbox_label'] == 2
    assert ds.skipped['bbox taken from the mask'] == 2


def test_unknown_category_and_empty_annotation_are_counted(tmp_path):
    root = _coco(tmp_path, [
        dict(id=1, image_id=1, category_id=3, iscrowd=0, area=20.0,
             bbox=[1, 1, 4, 5], segmentation=[]),
        dict(id=2, image_id=1, category_id=77, iscrowd=0, area=4.0,
             bbox=[1, 1, 2, 2]),
        dict(id=3, image_id=1, category_id=1, iscrowd=0),
    ])
    ds = _build(root)
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [1]
    assert ds.skipped['category not in classes'] == 1
    assert ds.skipped['no bbox and no usable mask'] == 1


def test_missing_partial_json_names_the_split_command(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r'make_splits.py coco --coco-root'):
        _build(str(tmp_path) + '/')


def test_class_missing_from_json_or_out_of_order_is_an_error(tmp_path):
    root = _coco(tmp_path, [])
    with pytest.raises(ValueError, match=r"\['bicycle'\].*not categories"):
        _build(root, classes=('person', 'bicycle', 'car'))
    with pytest.raises(ValueError, match='category-id order'):
        _build(root, classes=('car', 'person', 'toothbrush'))


# ---------------------------------------------------------------- masks
def _voc_seg(tmp_path, mask: Image.Image, size=(64, 48)):
    root = tmp_path / 'VOC2012'
    for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Partial'):
        (root / d).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(
        root / 'JPEGImages' / '2008_000001.jpg')
    mask.save(root / 'SegmentationClass' / '2008_000001.png')
    (root / 'ImageSets/Partial/seg_train.txt').write_text('2008_000001\n')
    return DATASETS.build(dict(
        type='PartialVOCDataset', data_root=str(root),
        ann_file='ImageSets/Partial/seg_train.txt', ann_task='seg',
        pipeline=[dict(type='LoadImageOrSkip'),
                  dict(type='LoadPartialAnnotations', with_bbox=False,
                       with_label=False, with_seg=True,
                       imdecode_backend='pillow'),
                  dict(type='Resize', scale=(32, 32), keep_ratio=True),
                  dict(type='PackPartialInputs')]))


def _palette(arr):
    im = Image.fromarray(arr.astype(np.uint8), mode='P')
    im.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    return im


def test_good_palette_mask_passes(tmp_path):
    arr = np.zeros((48, 64), np.uint8)
    arr[10:20, 5:30] = 15
    arr[9, 5:30] = 255
    sample = _voc_seg(tmp_path, _palette(arr))[0]['data_samples']
    assert set(np.unique(sample.gt_sem_seg.sem_seg.numpy())) <= {0, 15, 255}


def test_rgb_mask_is_refused_with_the_file_name(tmp_path):
    rgb = Image.fromarray(np.zeros((48, 64, 3), np.uint8))
    ds = _voc_seg(tmp_path, rgb)
    with pytest.raises(ValueError, match=r'2008_000001.png.*1-channel PNG'):
        ds[0]


def test_mask_of_another_size_is_refused_even_with_the_same_aspect(tmp_path):
    ds = _voc_seg(tmp_path, _palette(np.zeros((24, 32), np.uint8)))
    with pytest.raises(ValueError, match=r'is 24x32 but its image .* is '
                       r'48x64'):
        ds[0]


def test_labels_above_the_classes_are_refused(tmp_path):
    arr = np.zeros((48, 64), np.uint8)
    arr[:4, :4] = 100
    ds = _voc_seg(tmp_path, _palette(arr))
    with pytest.raises(ValueError, match=r'labels \[100\] but the dataset '
                       r'has 20 classes'):
        ds[0]


def test_unreadable_mask_names_the_file(tmp_path):
    ds = _voc_seg(tmp_path, _palette(np.zeros((48, 64), np.uint8)))
    path = ds.get_data_info(0)['seg_map_path']
    with open(path, 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(IOError, match='cannot read the mask'):
        ds[0]
    assert isinstance(LoadPartialAnnotations(with_seg=True),
                      LoadPartialAnnotations)


def test_semantic_head_names_images_with_out_of_range_labels():
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import PixelData

    from bombo.models.seg_heads import SemanticFPNHead
    head = SemanticFPNHead(num_classes=4, in_channels=8, feat_channels=8,
                           num_levels=1, norm_cfg=None)
    s = DetDataSample(metainfo=dict(img_path='x/bad.jpg'))
    s.gt_sem_seg = PixelData(sem_seg=torch.full((1, 8, 8), 7))
    with pytest.raises(ValueError, match=r"labels \[7\] outside 0..4.*"
                       r"bad.jpg"):
        head.loss([torch.zeros(1, 8, 8, 8)], [s])
