import os
import os.path as osp
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

import bombo  # noqa: F401
from bombo.datasets import PartialVOCDataset

CLASSES = ('rectangle', 'ellipse', 'triangle')


def build(root, split, task, **kw):
    return PartialVOCDataset(data_root=root, ann_file=f'ImageSets/Main/{split}.txt',
                             ann_task=task, metainfo=dict(classes=CLASSES),
                             pipeline=[], **kw)


def copy_toy(toy_root, tmp_path):
    dst = str(tmp_path / 'toy')
    shutil.copytree(toy_root, dst)
    return dst


def test_det_split_reads_voc_boxes_zero_based(toy_root):
    ds = build(toy_root, 'det_train', 'det')
    assert len(ds) == 8
    info = ds.get_data_info(0)
    assert info['ann_task'] == 'det' and info['seg_map_path'] is None
    root = ET.parse(osp.join(toy_root, 'Annotations', info['img_id'] + '.xml')).getroot()
    objs = root.findall('object')
    assert len(info['instances']) == len(objs) > 0
    bb = objs[0].find('bndbox')
    xmin, ymin, xmax, ymax = (int(bb.find(k).text) for k in ('xmin', 'ymin', 'xmax', 'ymax'))
    assert info['instances'][0]['bbox'] == [xmin - 1, ymin - 1, xmax, ymax]
    assert info['instances'][0]['bbox_label'] == CLASSES.index(objs[0].find('name').text)
    # the box is tight around the instance in SegmentationObject, whose
    # 1-pixel 255 border covers the instance's outermost pixels
    obj = np.asarray(Image.open(osp.join(toy_root, 'SegmentationObject', info['img_id'] + '.png')))
    ys, xs = np.nonzero(obj == 1)
    x1, y1, x2, y2 = info['instances'][0]['bbox']
    assert x1 <= xs.min() <= x1 + 1 and y1 <= ys.min() <= y1 + 1
    assert x2 - 1 <= xs.max() + 1 <= x2 and y2 - 1 <= ys.max() + 1 <= y2


def test_seg_split_has_masks_and_no_boxes(toy_root):
    ds = build(toy_root, 'seg_train', 'seg')
    info = ds.get_data_info(0)
    assert info['ann_task'] == 'seg' and info['instances'] == []
    assert info['seg_map_path'].endswith(info['img_id'] + '.png')
    assert info['width'] == info['height'] == 128


def test_missing_image_is_a_clear_error_or_counted_skip(toy_root, tmp_path):
    root = copy_toy(toy_root, tmp_path)
    with open(osp.join(root, 'ImageSets/Main/det_train.txt'), 'a') as f:
        f.write('nope_42\n')
    with pytest.raises(FileNotFoundError, match='nope_42.jpg'):
        build(root, 'det_train', 'det')
    ds = build(root, 'det_train', 'det', on_missing='skip')
    assert len(ds) == 8 and ds.skipped['missing image'] == 1


def test_missing_mask_is_named(toy_root, tmp_path):
    root = copy_toy(toy_root, tmp_path)
    first = open(osp.join(root, 'ImageSets/Main/seg_train.txt')).read().split()[0]
    os.remove(osp.join(root, 'SegmentationClass', first + '.png'))
    with pytest.raises(FileNotFoundError, match=first + '.png'):
        build(root, 'seg_train', 'seg')


def write_xml(path, boxes, size=(128, 128)):
    root = ET.Element('annotation')
    sz = ET.SubElement(root, 'size')
    ET.SubElement(sz, 'width').text = str(size[0])
    ET.SubElement(sz, 'height').text = str(size[1])
    for b in boxes:
        o = ET.SubElement(root, 'object')
        ET.SubElement(o, 'name').text = 'ellipse'
        ET.SubElement(o, 'difficult').text = '0'
        bb = ET.SubElement(o, 'bndbox')
        for k, v in zip(('xmin', 'ymin', 'xmax', 'ymax'), b):
            ET.SubElement(bb, k).text = str(v)
    ET.ElementTree(root).write(path)


def test_boxes_outside_image_clipped_or_dropped_and_empty_images_skipped(toy_root, tmp_path):
    root = copy_toy(toy_root, tmp_path)
    ids = open(osp.join(root, 'ImageSets/Main/det_train.txt')).read().split()
    # partly outside -> clipped; fully outside -> dropped (counted)
    write_xml(osp.join(root, 'Annotations', ids[0] + '.xml'),
              [(100, 100, 200, 140), (300, 300, 310, 310)])
    # no boxes at all -> image skipped (counted) when filtering empties
    write_xml(osp.join(root, 'Annotations', ids[1] + '.xml'), [])
    ds = build(root, 'det_train', 'det', filter_cfg=dict(filter_empty_gt=True))
    assert len(ds) == 7
    assert ds.skipped['box outside image'] == 1
    assert ds.skipped['no boxes'] == 1
    info = next(d for d in map(ds.get_data_info, range(len(ds))) if d['img_id'] == ids[0])
    assert info['instances'][0]['bbox'] == [99.0, 99.0, 128, 128]
    assert len(info['instances']) == 1


def test_masks_full_of_255_skipped_but_empty_masks_kept(toy_root, tmp_path):
    root = copy_toy(toy_root, tmp_path)
    ids = open(osp.join(root, 'ImageSets/Main/seg_train.txt')).read().split()
    Image.fromarray(np.full((128, 128), 255, np.uint8)).save(
        osp.join(root, 'SegmentationClass', ids[0] + '.png'))
    Image.fromarray(np.zeros((128, 128), np.uint8)).save(
        osp.join(root, 'SegmentationClass', ids[1] + '.png'))
    ds = build(root, 'seg_train', 'seg', filter_cfg=dict(filter_empty_gt=True))
    kept = {ds.get_data_info(i)['img_id'] for i in range(len(ds))}
    assert ids[0] not in kept and ids[1] in kept
    assert ds.skipped['mask all ignore'] == 1


def test_unknown_task_rejected(toy_root):
    with pytest.raises(ValueError, match='ann_task'):
        build(toy_root, 'val', 'boxes')
