"""The real-format generator (bombo.testing.real_format and
tools/make_real_format_data.py), read back with the real readers: PIL,
ElementTree, scipy.io.loadmat and pycocotools."""
import glob
import importlib.util
import json
import os.path as osp
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bombo.testing import real_format as rf

ROOT = Path(__file__).resolve().parents[2]
YEARS = ('VOC2007', 'VOC2012')
SEED = 0


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('real_format'))
    return out, rf.make_real_format_data(out, seed=SEED)


def read_ids(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def parse_xml(path):
    """(size, objects) of a VOC XML, objects as dicts (coordinates ints)."""
    root = ET.parse(path).getroot()
    size = root.find('size')
    objects = []
    for obj in root.findall('object'):
        box = obj.find('bndbox')
        objects.append({
            'name': obj.find('name').text,
            'difficult': obj.find('difficult'),
            'truncated': int(obj.find('truncated').text),
            'pose': obj.find('pose').text,
            'raw': [box.find(k).text for k in ('xmin', 'ymin', 'xmax',
                                               'ymax')],
            'box': [int(float(box.find(k).text))
                    for k in ('xmin', 'ymin', 'xmax', 'ymax')],
            'parts': obj.findall('part')})
    return root, (int(size.find('width').text),
                  int(size.find('height').text)), objects


def voc_file(out, year, sub, img_id, ext):
    return osp.join(out, 'VOCdevkit', year, sub, f'{img_id}.{ext}')


def extent(mask):
    """1-based inclusive [xmin, ymin, xmax, ymax] of a boolean mask."""
    ys, xs = np.nonzero(mask)
    return [xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1]


def load_mat(path, name):
    from scipy.io import loadmat
    return loadmat(path, squeeze_me=True, struct_as_record=False)[name]


# ---------------------------------------------------------------------------
# layout and counts
# ---------------------------------------------------------------------------
def test_layout_and_default_counts(data):
    out, info = data
    c = info['counts']
    assert 10 <= c['voc2007_images'] <= 14
    assert 14 <= c['voc2012_images'] <= 20
    assert 10 <= c['sbd_images'] <= 12
    assert 12 <= c['coco_train2017_images'] <= 16
    assert c['coco_val2017_images'] == 6
    for year in YEARS:
        base = osp.join(out, 'VOCdevkit', year)
        for sub in ('JPEGImages', 'Annotations', 'SegmentationClass',
                    'SegmentationObject'):
            assert glob.glob(osp.join(base, sub, '*'))
        for lst in ('Main/train', 'Main/val', 'Main/trainval',
                    'Segmentation/train', 'Segmentation/val',
                    'Segmentation/trainval', 'Main/person_trainval'):
            assert osp.isfile(osp.join(base, 'ImageSets', f'{lst}.txt'))
    assert glob.glob(osp.join(out, 'SBD/dataset/cls/*.mat'))
    for f in ('SBD/dataset/train.txt', 'SBD/dataset/val.txt',
              'coco/annotations/instances_train2017.json',
              'coco/annotations/instances_val2017.json'):
        assert osp.isfile(osp.join(out, f))
    for split in ('train2017', 'val2017'):
        assert len(glob.glob(osp.join(out, 'coco', split, '*.jpg'))) == \
            len(info['coco'][split]['image_ids'])


def test_id_styles_and_lists(data):
    out, info = data
    ids07 = read_ids(osp.join(out, 'VOCdevkit/VOC2007/ImageSets/Main/'
                              'trainval.txt'))
    assert ids07 == sorted(ids07) == info['voc2007']['ids']
    assert all(re.fullmatch(r'\d{6}', i) for i in ids07)
    v12 = osp.join(out, 'VOCdevkit/VOC2012/ImageSets')
    main12 = read_ids(osp.join(v12, 'Main/trainval.txt'))
    assert all(re.fullmatch(r'20(08|09|10|11)_\d{6}', i) for i in main12)
    for year, lists in (('VOC2007', info['voc2007']['lists']),
                        ('VOC2012', info['voc2012']['lists'])):
        for key in ('Main', 'Segmentation'):
            base = osp.join(out, 'VOCdevkit', year, 'ImageSets', key)
            tr, va, tv = (read_ids(osp.join(base, f'{s}.txt'))
                          for s in ('train', 'val', 'trainval'))
            assert not set(tr) & set(va) and sorted(tr + va) == tv
            assert tv == lists[f'{key}/trainval']
    # per-class lists: "id  1" / "id -1" / "id  0"
    lines = open(osp.join(v12, 'Main/person_trainval.txt')).read().splitlines()
    assert [ln.split()[0] for ln in lines] == main12
    assert all(re.fullmatch(r'\S+ (-1| 0| 1)', ln) for ln in lines)


# ---------------------------------------------------------------------------
# VOC
# ---------------------------------------------------------------------------
def test_twins(data):
    out, info = data
    v12 = osp.join(out, 'VOCdevkit/VOC2012/ImageSets')
    seg_val = read_ids(osp.join(v12, 'Segmentation/val.txt'))
    seg_train = read_ids(osp.join(v12, 'Segmentation/train.txt'))
    main12 = set(read_ids(osp.join(v12, 'Main/trainval.txt')))
    main07 = set(read_ids(osp.join(out, 'VOCdevkit/VOC2007/ImageSets/Main/'
                                   'trainval.txt')))
    val_twins = [i for i in seg_val if i.startswith('2007_')]
    train_twins = [i for i in seg_train if i.startswith('2007_')]
    assert len(val_twins) >= 2 and len(train_twins) >= 1
    assert val_twins == info['voc2012']['twins']['val']
    assert len(seg_val) >= 5
    # non-twin seg val images are in Main/trainval, the twins are not
    assert set(seg_val) - set(val_twins) <= main12
    assert not (set(val_twins) | set(train_twins)) & main12
    for twin in val_twins + train_twins:
        orig = twin[5:]
        assert orig in main07
        for sub, ext in (('JPEGImages', 'jpg'), ('SegmentationClass', 'png'),
                         ('SegmentationObject', 'png')):
            a = Path(voc_file(out, 'VOC2012', sub, twin, ext)).read_bytes()
            b = Path(voc_file(out, 'VOC2007', sub, orig, ext)).read_bytes()
            assert a == b
        r12, s12, o12 = parse_xml(voc_file(out, 'VOC2012', 'Annotations',
                                           twin, 'xml'))
        r07, s07, o07 = parse_xml(voc_file(out, 'VOC2007', 'Annotations',
                                           orig, 'xml'))
        assert r12.find('filename').text == f'{twin}.jpg'
        assert r12.find('folder').text == 'VOC2012'
        assert s12 == s07
        keys = ('name', 'box', 'pose', 'truncated')
        assert [[o[k] for k in keys] + [o['difficult'].text] for o in o12] \
            == [[o[k] for k in keys] + [o['difficult'].text] for o in o07]


def test_masks_only_for_segmentation_lists(data):
    out, info = data
    for year in YEARS:
        base = osp.join(out, 'VOCdevkit', year)
        seg = set(read_ids(osp.join(base, 'ImageSets/Segmentation/'
                                    'trainval.txt')))
        for sub in ('SegmentationClass', 'SegmentationObject'):
            pngs = {osp.basename(p)[:-4]
                    for p in glob.glob(osp.join(base, sub, '*.png'))}
            assert pngs == seg
        for img_id in info[year.lower()]['ids']:
            root, _, _ = parse_xml(voc_file(out, year, 'Annotations', img_id,
                                            'xml'))
            assert root.find('segmented').text == str(int(img_id in seg))
    n07 = len(info['voc2007']['ids'])
    assert abs(len(info['voc2007']['lists']['Segmentation/trainval'])
               - n07 / 2) <= 1


def test_xml_schema_and_boxes(data):
    out, info = data
    found = {y: dict(difficult=0, truncated=0) for y in YEARS}
    floats = missing_difficult = parts = 0
    for year in YEARS:
        for img_id in info[year.lower()]['ids']:
            root, (w, h), objects = parse_xml(
                voc_file(out, year, 'Annotations', img_id, 'xml'))
            assert root.tag == 'annotation'
            assert root.find('filename').text == f'{img_id}.jpg'
            assert root.find('source/database').text.startswith('The VOC')
            assert root.find('size/depth').text == '3'
            img = Image.open(voc_file(out, year, 'JPEGImages', img_id, 'jpg'))
            assert img.format == 'JPEG' and img.size == (w, h)
            assert 1 <= len(objects) <= 5
            for o in objects:
                assert o['name'] in rf.VOC_CLASSES
                x1, y1, x2, y2 = o['box']
                assert 1 <= x1 <= x2 <= w and 1 <= y1 <= y2 <= h
                floats += any('.' in v for v in o['raw'])
                if o['difficult'] is None:
                    missing_difficult += 1
                    assert year == 'VOC2012' and '2007_' not in img_id
                else:
                    found[year]['difficult'] += o['difficult'].text == '1'
                if o['truncated']:
                    found[year]['truncated'] += 1
                    assert x1 == 1 or y1 == 1 or x2 == w or y2 == h
                for part in o['parts']:
                    assert o['name'] == 'person'
                    assert part.find('name').text == 'head'
                    pb = [int(float(part.find(f'bndbox/{k}').text))
                          for k in ('xmin', 'ymin', 'xmax', 'ymax')]
                    assert x1 <= pb[0] <= pb[2] <= x2
                    assert y1 <= pb[1] <= pb[3] <= y2
                    parts += 1
    assert all(v['difficult'] >= 1 and v['truncated'] >= 1
               for v in found.values()), found
    assert floats >= 1 and missing_difficult >= 1 and parts >= 1


def test_voc_masks_palette_and_consistency(data):
    out, info = data
    palette = rf.voc_palette()
    assert palette[3:6] == [128, 0, 0]
    assert palette[255 * 3:] == [224, 224, 192]
    for year in YEARS:
        for img_id in info[year.lower()]['lists']['Segmentation/trainval']:
            cls_png = Image.open(voc_file(out, year, 'SegmentationClass',
                                          img_id, 'png'))
            obj_png = Image.open(voc_file(out, year, 'SegmentationObject',
                                          img_id, 'png'))
            assert cls_png.mode == obj_png.mode == 'P'
            assert cls_png.getpalette()[:768] == palette
            cls, obj = np.array(cls_png), np.array(obj_png)
            _, (w, h), objects = parse_xml(
                voc_file(out, year, 'Annotations', img_id, 'xml'))
            assert cls.shape == obj.shape == (h, w)
            assert set(np.unique(cls)) <= set(range(21)) | {255}
            assert 255 in cls
            assert np.array_equal(cls == 255, obj == 255)  # one void band
            assert set(np.unique(obj)) - {0, 255} == \
                set(range(1, len(objects) + 1))
            for k, o in enumerate(objects):
                pix = obj == k + 1
                label = rf.VOC_CLASSES.index(o['name']) + 1
                assert (cls[pix] == label).all()
                # the box holds the object's pixels, and each of its sides
                # meets the object or the void band drawn on its outline
                x1, y1, x2, y2 = extent(pix)
                bx1, by1, bx2, by2 = o['box']
                assert bx1 <= x1 <= x2 <= bx2 and by1 <= y1 <= y2 <= by2
                near = pix | (obj == 255)
                box = near[by1 - 1:by2, bx1 - 1:bx2]
                assert box[:, 0].any() and box[:, -1].any()
                assert box[0].any() and box[-1].any()


def test_classes_cover_voc_and_every_large_split(data):
    out, info = data
    names = {}
    for year in YEARS:
        for img_id in info[year.lower()]['ids']:
            names[(year, img_id)] = {o['name'] for o in parse_xml(
                voc_file(out, year, 'Annotations', img_id, 'xml'))[2]}
    assert set().union(*names.values()) == set(rf.VOC_CLASSES)
    for year in YEARS:
        for key, ids in info[year.lower()]['lists'].items():
            if len(ids) >= 10:
                seen = set().union(*(names[(year, i)] for i in ids))
                assert len(seen) >= 8, (year, key, seen)


# ---------------------------------------------------------------------------
# SBD
# ---------------------------------------------------------------------------
def test_sbd_files(data):
    from scipy import ndimage, sparse
    from scipy.io import loadmat
    out, info = data
    sbd = osp.join(out, 'SBD/dataset')
    ids = sorted(read_ids(osp.join(sbd, 'train.txt'))
                 + read_ids(osp.join(sbd, 'val.txt')))
    assert ids == info['sbd']['ids']
    v12 = osp.join(out, 'VOCdevkit/VOC2012')
    main12 = set(read_ids(osp.join(v12, 'ImageSets/Main/trainval.txt')))
    official = {i for i in ids
                if osp.isfile(osp.join(v12, 'SegmentationClass', f'{i}.png'))}
    assert set(ids) <= main12 and len(official) == 2
    merged = 0
    for img_id in ids:
        gt = load_mat(osp.join(sbd, 'cls', f'{img_id}.mat'), 'GTcls')
        seg = gt.Segmentation
        _, (w, h), objects = parse_xml(voc_file(out, 'VOC2012',
                                                'Annotations', img_id, 'xml'))
        assert seg.dtype == np.uint8 and seg.shape == (h, w)
        assert seg.max() <= 20  # no 255 band
        present = np.atleast_1d(gt.CategoriesPresent)  # squeezed if one
        raw = loadmat(osp.join(sbd, 'cls', f'{img_id}.mat'))['GTcls'][0, 0]
        assert raw['CategoriesPresent'].dtype == np.uint8
        assert raw['CategoriesPresent'].shape == (len(present), 1)
        assert raw['Boundaries'].shape == (20, 1)
        labels = {rf.VOC_CLASSES.index(o['name']) + 1 for o in objects}
        assert set(present.tolist()) == labels == set(np.unique(seg)) - {0}
        assert len(gt.Boundaries) == 20
        for c, b in enumerate(gt.Boundaries, 1):
            assert sparse.issparse(b) and b.shape == (h, w)
            assert (b.nnz > 0) == (c in labels)
        inst = load_mat(osp.join(sbd, 'inst', f'{img_id}.mat'), 'GTinst')
        assert np.atleast_1d(inst.Categories).tolist() == \
            [rf.VOC_CLASSES.index(o['name']) + 1 for o in objects]
        for k, o in enumerate(objects):  # XML box == instance extent
            assert extent(inst.Segmentation == k + 1) == o['box']
        for c in labels:  # touching same-class instances share a component
            comp, n = ndimage.label(seg == c)
            for j in range(1, n + 1):
                merged += len(set(np.unique(
                    inst.Segmentation[comp == j]))) > 1
        jpg = osp.join(sbd, 'img', f'{img_id}.jpg')
        assert Path(jpg).read_bytes() == Path(
            voc_file(out, 'VOC2012', 'JPEGImages', img_id, 'jpg')).read_bytes()
        if img_id in official:  # the official mask agrees off its band
            cls = np.array(Image.open(osp.join(v12, 'SegmentationClass',
                                               f'{img_id}.png')))
            assert (cls[cls != 255] == seg[cls != 255]).all()
    assert merged >= 1


# ---------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------
def test_coco_json(data):
    from pycocotools.coco import COCO
    out, info = data
    cat_ids = set()
    for split, n_crowd in (('train2017', 2), ('val2017', 1)):
        path = osp.join(out, 'coco/annotations', f'instances_{split}.json')
        raw = json.load(open(path))
        assert set(raw) == {'info', 'licenses', 'images', 'annotations',
                            'categories'}
        coco = COCO(path)
        ids = sorted(c['id'] for c in raw['categories'])
        assert len(ids) == 80 and ids[-1] == 90
        assert set(range(1, 91)) - set(ids) == {12, 26, 29, 30, 45, 66, 68,
                                                69, 71, 83}
        assert coco.loadCats(90)[0]['name'] == 'toothbrush'
        assert coco.loadCats(85)[0]['name'] == 'clock'
        gray = empty = crowd = multi = 0
        for img in raw['images']:
            assert re.fullmatch(r'\d{12}\.jpg', img['file_name'])
            assert int(img['file_name'][:12]) == img['id']
            pil = Image.open(osp.join(out, 'coco', split, img['file_name']))
            assert pil.size == (img['width'], img['height'])
            gray += pil.mode == 'L'
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
            empty += not anns
            for a in anns:
                m = coco.annToMask(a).astype(bool)
                assert a['area'] == m.sum() > 0
                x, y, w, h = a['bbox']
                x1, y1, x2, y2 = extent(m)
                assert [x, y, w, h] == [x1 - 1, y1 - 1, x2 - x1 + 1,
                                        y2 - y1 + 1]
                assert all(isinstance(v, float) for v in a['bbox'])
                if a['iscrowd']:
                    crowd += 1
                    assert isinstance(a['segmentation']['counts'], list)
                    assert a['segmentation']['size'] == [img['height'],
                                                         img['width']]
                else:
                    assert all(len(p) >= 6 and len(p) % 2 == 0
                               for p in a['segmentation'])
                    multi += len(a['segmentation']) > 1
                cat_ids.add(a['category_id'])
        assert gray >= 1 and empty >= 1 and crowd >= n_crowd and multi >= 1
        assert info['coco'][split]['empty_image_ids']
    assert len(cat_ids) >= 10 and max(cat_ids) >= 85


def test_coco_train_pool_splits_in_quarters(data):
    out, _ = data
    raw = json.load(open(osp.join(out, 'coco/annotations/'
                                  'instances_train2017.json')))
    pool = {a['image_id'] for a in raw['annotations'] if not a['iscrowd']}
    assert round(len(pool) * 0.25) >= 3


def test_uncompressed_rle_matches_pycocotools():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for first in (0, 1):
        m = rng.random((7, 5)) < 0.5
        m[0, 0] = first
        rle = rf.uncompressed_rle(m)
        assert sum(rle['counts']) == m.size and rle['size'] == [7, 5]
        back = mask_utils.decode(mask_utils.frPyObjects(rle, 7, 5))
        assert np.array_equal(back.astype(bool), m)


# ---------------------------------------------------------------------------
# images, determinism, CLI
# ---------------------------------------------------------------------------
def test_images_vary_and_are_textured(data):
    out, info = data
    sizes = set()
    for img_id in info['voc2007']['ids']:
        img = np.asarray(Image.open(voc_file(out, 'VOC2007', 'JPEGImages',
                                             img_id, 'jpg')), np.float32)
        sizes.add(img.shape[:2])
        assert img.shape[0] != img.shape[1]
        assert img.std() > 8
    assert len(sizes) >= 3
    coco_sizes = {(im['width'], im['height']) for im in json.load(open(
        osp.join(out, 'coco/annotations/instances_train2017.json')))['images']}
    assert len(coco_sizes) >= 3
    # objects are textured too: no flat colour inside a visible instance
    img_id = info['sbd']['ids'][0]
    img = np.asarray(Image.open(voc_file(out, 'VOC2012', 'JPEGImages', img_id,
                                         'jpg')), np.float32)
    inst = load_mat(osp.join(out, 'SBD/dataset/inst', f'{img_id}.mat'),
                    'GTinst').Segmentation
    big = np.bincount(inst.ravel())[1:].argmax() + 1
    assert img[inst == big].std(0).max() > 2


SAMPLES = ('VOCdevkit/VOC2007/JPEGImages/{v07}.jpg',
           'VOCdevkit/VOC2012/Annotations/{v12}.xml',
           'VOCdevkit/VOC2012/SegmentationClass/{v12}.png',
           'SBD/dataset/cls/{sbd}.mat',
           'coco/annotations/instances_train2017.json')


def sample_files(out, info):
    keys = dict(v07=info['voc2007']['ids'][0],
                v12=info['voc2012']['lists']['Segmentation/val'][-1],
                sbd=info['sbd']['ids'][0])
    return [Path(out, s.format(**keys)).read_bytes() for s in SAMPLES]


def test_deterministic(data, tmp_path):
    out, info = data
    again = rf.make_real_format_data(str(tmp_path / 'a'), seed=SEED)
    assert again['counts'] == info['counts']
    assert again['voc2012']['lists'] == info['voc2012']['lists']
    assert sample_files(out, info) == sample_files(tmp_path / 'a', again)
    other = rf.make_real_format_data(str(tmp_path / 'b'), seed=SEED + 1)
    assert other['voc2007']['ids'] != info['voc2007']['ids']
    assert Path(tmp_path / 'b/coco/annotations/instances_train2017.json'
                ).read_bytes() != sample_files(out, info)[-1]


def test_scale_gives_real_sizes(tmp_path):
    info = rf.make_voc_sbd(str(tmp_path), seed=2, voc_images=6,
                           voc2012_images=6, scale=1.0)
    sizes = {Image.open(voc_file(str(tmp_path), 'VOC2007', 'JPEGImages', i,
                                 'jpg')).size for i in info['voc2007']['ids']}
    assert sizes <= set(rf.VOC_SIZES) and len(sizes) >= 2


def test_rejects_too_small_sets(tmp_path):
    with pytest.raises(ValueError):
        rf.make_voc_sbd(str(tmp_path), voc_images=4)
    with pytest.raises(ValueError):
        rf.make_coco(str(tmp_path), coco_images=3)


def _load_cli():
    spec = importlib.util.spec_from_file_location(
        'tools_make_real_format_data',
        ROOT / 'tools' / 'make_real_format_data.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli(tmp_path, capsys):
    cli = _load_cli()
    with pytest.raises(SystemExit) as e:
        cli.main(['--help'])
    assert e.value.code == 0
    assert '(default: 0.32)' in capsys.readouterr().out
    assert cli.main(['--out', str(tmp_path), '--seed', '3', '--voc-images',
                     '6', '--voc2012-images', '6', '--coco-images', '5',
                     '--coco-val-images', '4', '--num-classes-coco',
                     '12']) == 0
    text = capsys.readouterr().out
    assert 'VOC2007: 6 images' in text and 'COCO val2017: 4 images' in text
    assert len(glob.glob(str(tmp_path / 'coco/val2017/*.jpg'))) == 4
    assert cli.main(['--out', str(tmp_path), '--voc-images', '2']) == 2
