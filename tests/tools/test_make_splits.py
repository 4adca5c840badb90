"""Tests of tools/make_splits.py on a tiny fake VOC tree and COCO json."""
import argparse
import importlib.util
import json
import os
import os.path as osp
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'tools_{name}', ROOT / 'tools' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ms = _load_tool('make_splits')


# ---------------------------------------------------------------------------
# fake data
# ---------------------------------------------------------------------------
def touch(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'x')


def write_list(path: Path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{i}\n' for i in ids))


IDS07 = [f'{i:06d}' for i in range(1, 11)]          # 10 trainval
MASK07 = IDS07[:4]                                   # 4 with a mask
IDS12 = [f'2008_{i:06d}' for i in range(1, 13)]     # 12 trainval
VAL12 = IDS12[9:] + ['2008_000099']                  # 3 in trainval + 1 not
MASK12 = IDS12[:7]                                   # 7 of the 9 left


def make_voc(root: Path) -> Path:
    voc = root / 'VOCdevkit'
    for year, ids, masks, mdir in (
            ('2007', IDS07, MASK07, 'SegmentationClass'),
            ('2012', IDS12 + ['2008_000099'], MASK12,
             'SegmentationClassAug')):
        base = voc / f'VOC{year}'
        for i in ids:
            touch(base / 'JPEGImages' / f'{i}.jpg')
            touch(base / 'Annotations' / f'{i}.xml')
        for i in masks:
            touch(base / mdir / f'{i}.png')
    write_list(voc / 'VOC2007/ImageSets/Main/trainval.txt', IDS07)
    write_list(voc / 'VOC2012/ImageSets/Main/trainval.txt', IDS12)
    write_list(voc / 'VOC2012/ImageSets/Segmentation/val.txt', VAL12)
    for i in VAL12:
        touch(voc / 'VOC2012/SegmentationClass' / f'{i}.png')
        touch(voc / 'VOC2012/SegmentationClassAug' / f'{i}.png')
    return voc


def read(path: Path):
    return path.read_text().split()


def partial(voc: Path, year: str, name: str):
    return read(voc / f'VOC{year}' / 'ImageSets' / 'Partial' / f'{name}.txt')


# ---------------------------------------------------------------------------
# pure functions
# ---------------------------------------------------------------------------
def test_round_half_up():
    assert ms.round_half_up(2.5) == 3      # Python's round gives 2
    assert ms.round_half_up(9.5) == 10
    assert ms.round_half_up(3.49) == 3
    assert ms.round_half_up(117243 / 8) == 14655
    assert ms.round_half_up(2 * 117243 / 8) == 29311


def test_seeded_order_is_a_fixed_permutation():
    a = ms.seeded_order(50, 0)
    assert sorted(a) == list(range(50))
    assert a == ms.seeded_order(50, 0)
    assert a != ms.seeded_order(50, 1)
    assert a != list(range(50))


def test_voc_pool_excludes_val_and_dedups():
    pool = ms.voc_pool({'2007': ['b', 'a', 'a'], '2012': ['x', 'v', 'y']},
                       {'2012': ['v', 'w']})
    assert pool == [('2007', 'a'), ('2007', 'b'), ('2012', 'x'),
                    ('2012', 'y')]


def test_draw_voc_split_masked_only_disjoint_counts():
    pool = [('2007', f'{i:03d}') for i in range(100)]
    masked = {p for j, p in enumerate(pool) if j % 5 != 0}   # 80 masked
    det, seg = ms.draw_voc_split(pool, masked, 0.5, seed=0)
    assert len(seg) == 50 and len(det) == 50
    assert set(seg) <= masked
    assert not set(det) & set(seg)
    assert sorted(det + seg) == sorted(pool)
    # every unmasked image is in the detection half
    assert set(pool) - masked <= set(det)
    assert (det, seg) == ms.draw_voc_split(list(reversed(pool)), masked, 0.5,
                                           seed=0)
    assert seg != ms.draw_voc_split(pool, masked, 0.5, seed=1)[1]


def test_draw_voc_split_rounding_and_errors():
    pool = [('2007', str(i)) for i in range(5)]
    det, seg = ms.draw_voc_split(pool, set(pool), 0.5, seed=3)
    assert len(seg) == 3 and len(det) == 2           # round_half_up(2.5)
    with pytest.raises(ValueError, match='only 2 pool images have a mask'):
        ms.draw_voc_split(pool, set(pool[:2]), 0.5, seed=0)
    with pytest.raises(ValueError, match='seg_fraction'):
        ms.draw_voc_split(pool, set(pool), 1.5, seed=0)


def fake_coco():
    images = [dict(id=i, file_name=f'{i:012d}.jpg', width=10, height=10)
              for i in range(1, 25)]
    anns, k = [], 1
    for i in range(1, 21):                 # images 1..20: one normal box
        anns.append(dict(id=k, image_id=i, category_id=1 + i % 3,
                         bbox=[0, 0, 4, 4], area=16, iscrowd=0))
        k += 1
    anns.append(dict(id=k, image_id=21, category_id=1, bbox=[0, 0, 4, 4],
                     area=16, iscrowd=1))  # 21: crowd only -> not in pool
    anns.append(dict(id=k + 1, image_id=5, category_id=2, bbox=[1, 1, 2, 2],
                     area=4, iscrowd=1))   # crowd next to a normal one
    cats = [dict(id=c, name=n) for c, n in ((1, 'a'), (2, 'b'), (3, 'c'),
                                            (7, 'unused'))]
    return dict(info=dict(description='fake'), licenses=[], images=images,
                annotations=anns, categories=cats)


def test_coco_pool_non_crowd_only():
    assert ms.coco_pool(fake_coco()) == list(range(1, 21))


def test_draw_coco_split():
    pool = list(range(1, 21))
    det, seg = ms.draw_coco_split(pool, 0.125, seed=0)
    # N f = 2.5 -> 3 ; 2 N f = 5 -> 5: sizes 3 and 2
    assert len(det) == 3 and len(seg) == 2
    assert not set(det) & set(seg) and set(det + seg) <= set(pool)
    assert det == sorted(det) and seg == sorted(seg)
    assert (det, seg) == ms.draw_coco_split(pool[::-1], 0.125, seed=0)
    pool = list(range(1000))
    a = ms.draw_coco_split(pool, 0.125, seed=0)
    b = ms.draw_coco_split(pool, 0.125, seed=1)
    assert len(a[0]) == len(a[1]) == 125 and a != b
    with pytest.raises(ValueError):
        ms.draw_coco_split(pool, 0.6, seed=0)


def test_coco_subset_and_matching():
    coco = fake_coco()
    sub = ms.coco_subset(coco, [5, 2, 99])
    assert [im['id'] for im in sub['images']] == [2, 5]
    assert sorted(a['id'] for a in sub['annotations']) == [2, 5, 22]
    assert sub['categories'] == coco['categories']
    assert sub['info'] == coco['info']
    ids, missing = ms.match_coco_entries(
        coco, ['3', '000000000004', '000000000005.jpg',
               'train2017/000000000006.jpg', '424242', 'nope.jpg'])
    assert ids == [3, 4, 5, 6] and missing == ['424242', 'nope.jpg']


# ---------------------------------------------------------------------------
# command line, VOC
# ---------------------------------------------------------------------------
def test_voc_draw_writes_split_files(tmp_path, capsys):
    voc = make_voc(tmp_path)
    assert ms.main(['voc', '--voc-root', str(voc), '--seed', '0']) == 0
    out = capsys.readouterr().out
    det07, seg07 = partial(voc, '2007', 'det_train'), partial(
        voc, '2007', 'seg_train')
    det12, seg12 = partial(voc, '2012', 'det_train'), partial(
        voc, '2012', 'seg_train')
    # pool = 10 + (12 - 3 val) = 19; seg = round_half_up(9.5) = 10 of the 11
    # masked; det = the 9 others
    assert len(seg07) + len(seg12) == 10
    assert len(det07) + len(det12) == 9
    assert set(seg07) <= set(MASK07) and set(seg12) <= set(MASK12)
    assert sorted(det07 + seg07) == IDS07
    assert sorted(det12 + seg12) == IDS12[:9]
    assert partial(voc, '2012', 'val') == VAL12
    assert 'total: det 9  seg 10' in out and 'val (VOC2012): 4' in out
    # same seed -> same files; different seed -> a different draw
    assert ms.main(['voc', '--voc-root', str(voc), '--seed', '0']) == 0
    assert partial(voc, '2012', 'seg_train') == seg12
    seen = set()
    for seed in range(6):
        assert ms.main(['voc', '--voc-root', str(voc), '--seed',
                        str(seed)]) == 0
        seen.add(tuple(partial(voc, '2007', 'seg_train')
                       + partial(voc, '2012', 'seg_train')))
    assert len(seen) > 1


def test_voc_draw_needs_masks(tmp_path, capsys):
    voc = make_voc(tmp_path)
    rc = ms.main(['voc', '--voc-root', str(voc), '--seg-fraction', '0.9'])
    assert rc == 1
    assert 'only 11 pool images have a mask' in capsys.readouterr().err
    assert not (voc / 'VOC2007/ImageSets/Partial/seg_train.txt').exists()


def test_voc_draw_missing_image(tmp_path, capsys):
    voc = make_voc(tmp_path)
    (voc / 'VOC2007/JPEGImages/000005.jpg').unlink()
    assert ms.main(['voc', '--voc-root', str(voc)]) == 1
    err = capsys.readouterr().err
    assert '000005.jpg' in err and 'missing image' in err
    assert not (voc / 'VOC2007/ImageSets/Partial').exists()
    assert ms.main(['voc', '--voc-root', str(voc), '--allow-missing']) == 0
    ids = partial(voc, '2007', 'det_train') + partial(voc, '2007',
                                                      'seg_train')
    assert sorted(ids) == [i for i in IDS07 if i != '000005']


def make_paper_lists(root: Path):
    lists = root / 'multas'
    det07, seg07 = IDS07[4:], IDS07[:3]
    det12, seg12 = IDS12[7:9], IDS12[:7]
    write_list(lists / 'VOC2007/ImageSets/MXEdet/train.txt', det07)
    write_list(lists / 'VOC2007/ImageSets/MXEseg/train.txt', seg07)
    write_list(lists / 'VOC2012/ImageSets/MXEdet/train.txt', det12)
    write_list(lists / 'VOC2012/ImageSets/MXEseg/train.txt', seg12)
    write_list(lists / 'VOC2012/ImageSets/MXEseg/val.txt', VAL12[:3])
    return lists, dict(det07=det07, seg07=seg07, det12=det12, seg12=seg12)


def test_voc_from_lists_directory(tmp_path, capsys):
    voc = make_voc(tmp_path)
    lists, want = make_paper_lists(tmp_path)
    assert ms.main(['voc', '--voc-root', str(voc), '--from-lists',
                    str(lists)]) == 0
    assert partial(voc, '2007', 'det_train') == want['det07']
    assert partial(voc, '2007', 'seg_train') == want['seg07']
    assert partial(voc, '2012', 'det_train') == want['det12']
    assert partial(voc, '2012', 'seg_train') == want['seg12']
    assert partial(voc, '2012', 'val') == VAL12[:3]
    out = capsys.readouterr().out
    assert 'total: det 8  seg 10' in out


def test_voc_from_lists_missing_ids(tmp_path, capsys):
    voc = make_voc(tmp_path)
    lists, want = make_paper_lists(tmp_path)
    # a seg image without a mask, a det image that does not exist
    write_list(lists / 'VOC2007/ImageSets/MXEseg/train.txt',
               want['seg07'] + [IDS07[9]])
    write_list(lists / 'VOC2012/ImageSets/MXEdet/train.txt',
               want['det12'] + ['2011_999999'])
    rc = ms.main(['voc', '--voc-root', str(voc), '--from-lists', str(lists)])
    err = capsys.readouterr().err
    assert rc == 1
    assert f'SegmentationClass{osp.sep}{IDS07[9]}.png' in err
    assert '2011_999999.jpg' in err and '2011_999999.xml' in err
    assert not (voc / 'VOC2007/ImageSets/Partial').exists()
    rc = ms.main(['voc', '--voc-root', str(voc), '--from-lists', str(lists),
                  '--allow-missing'])
    assert rc == 0
    assert partial(voc, '2007', 'seg_train') == want['seg07']
    assert partial(voc, '2012', 'det_train') == want['det12']
    assert 'dropped (missing files): 3' in capsys.readouterr().out


def test_voc_from_lists_key_value(tmp_path):
    voc = make_voc(tmp_path)
    lists, want = make_paper_lists(tmp_path)
    args = ['voc', '--voc-root', str(voc), '--from-lists']
    for key, rel in (('det2007', 'VOC2007/ImageSets/MXEdet/train.txt'),
                     ('seg2007', 'VOC2007/ImageSets/MXEseg/train.txt'),
                     ('det2012', 'VOC2012/ImageSets/MXEdet/train.txt'),
                     ('seg2012', 'VOC2012/ImageSets/MXEseg/train.txt')):
        args.append(f'{key}={lists / rel}')
    assert ms.main(args) == 0
    assert partial(voc, '2012', 'seg_train') == want['seg12']
    assert ms.main(['voc', '--voc-root', str(voc), '--from-lists',
                    'bad=x']) == 1


# ---------------------------------------------------------------------------
# command line, COCO
# ---------------------------------------------------------------------------
def make_coco(root: Path) -> Path:
    coco_root = root / 'coco'
    coco = fake_coco()
    (coco_root / 'annotations').mkdir(parents=True)
    (coco_root / 'annotations/instances_train2017.json').write_text(
        json.dumps(coco))
    for im in coco['images']:
        touch(coco_root / 'train2017' / im['file_name'])
    return coco_root


def load_split(coco_root: Path, name: str) -> dict:
    return json.loads(
        (coco_root / 'annotations/partial' / f'{name}.json').read_text())


def test_coco_draw(tmp_path, capsys):
    coco_root = make_coco(tmp_path)
    argv = ['coco', '--coco-root', str(coco_root), '--fraction', '0.25']
    assert ms.main(argv) == 0
    det, seg = load_split(coco_root, 'det_train'), load_split(
        coco_root, 'seg_train')
    det_ids = [im['id'] for im in det['images']]
    seg_ids = [im['id'] for im in seg['images']]
    assert len(det_ids) == len(seg_ids) == 5          # 20 * 0.25
    assert not set(det_ids) & set(seg_ids)
    assert set(det_ids + seg_ids) <= set(range(1, 21))
    for sub, ids in ((det, det_ids), (seg, seg_ids)):
        assert {a['image_id'] for a in sub['annotations']} == set(ids)
        assert len(sub['categories']) == 4
    assert 'det 5  seg 5' in capsys.readouterr().out
    before = (coco_root / 'annotations/partial/det_train.json').read_bytes()
    assert ms.main(argv) == 0
    assert (coco_root / 'annotations/partial/det_train.json').read_bytes() \
        == before
    assert ms.main(argv + ['--seed', '1']) == 0
    assert [im['id'] for im in load_split(coco_root, 'det_train')['images']] \
        != det_ids


def test_coco_from_lists_and_missing(tmp_path, capsys):
    coco_root = make_coco(tmp_path)
    write_list(tmp_path / 'det.txt', ['1', '000000000002.jpg'])
    write_list(tmp_path / 'seg.txt', ['3', '4', '999'])
    argv = ['coco', '--coco-root', str(coco_root), '--from-lists',
            f'det={tmp_path / "det.txt"}', f'seg={tmp_path / "seg.txt"}']
    assert ms.main(argv) == 1
    assert '999' in capsys.readouterr().err
    assert not (coco_root / 'annotations/partial').exists()
    assert ms.main(argv + ['--allow-missing']) == 0
    assert [im['id'] for im in load_split(coco_root, 'det_train')['images']] \
        == [1, 2]
    assert [im['id'] for im in load_split(coco_root, 'seg_train')['images']] \
        == [3, 4]
    # a listed image whose file is absent
    (coco_root / 'train2017/000000000002.jpg').unlink()
    write_list(tmp_path / 'seg.txt', ['3', '4'])
    assert ms.main(argv) == 1
    assert '000000000002.jpg' in capsys.readouterr().err
    assert ms.main(argv + ['--no-check-images']) == 0


# ---------------------------------------------------------------------------
# VOC2007 / VOC2012 twins: VOC2012 '2007_NNNNNN' is VOC2007 'NNNNNN'
# ---------------------------------------------------------------------------
def test_photo_id_and_twins():
    assert ms.photo_id(('2012', '2007_000032')) == ('2007', '000032')
    assert ms.photo_id(('2007', '000032')) == ('2007', '000032')
    assert ms.photo_id(('2012', '2008_000032')) == ('2012', '2008_000032')
    assert ms.is_twin(('2012', '2007_000001'))
    assert not ms.is_twin(('2007', '000001'))
    kept, dropped = ms.merge_twins([('2012', '2007_000001'),
                                    ('2007', '000001'), ('2012', '2007_02'),
                                    ('2007', '000003')])
    assert kept == [('2007', '000001'), ('2012', '2007_02'),
                    ('2007', '000003')]
    assert dropped == [('2012', '2007_000001')]
    # the pool: val twins excluded in either year, repeats merged
    rep = ms.leak_free_pool(
        {'2007': ['000001', '000002', '000003'],
         '2012': ['2007_000003', '2008_000001', '2008_000002']},
        {'2012': ['2007_000002', '2008_000002']})
    assert rep.pool == [('2007', '000001'), ('2007', '000003'),
                        ('2012', '2008_000001')]
    assert rep.excluded_val == [('2007', '000002'), ('2012', '2008_000002')]
    assert rep.merged_twins == [('2012', '2007_000003')]
    assert ms.voc_pool({'2007': ['000002']}, {'2012': ['2007_000002']}) == []


def make_voc_with_twins(root: Path) -> Path:
    """make_voc + VOC2012 seg val images that are VOC2007 photos
    (2007_000003, 2007_000004: VOC2007 trainval 000003, 000004), and a
    2007_000005 in VOC2012 Main/trainval (real VOC never has one)."""
    voc = make_voc(root)
    twins = ['2007_000003', '2007_000004']
    for i in twins + ['2007_000005']:
        for sub, ext in (('JPEGImages', 'jpg'), ('Annotations', 'xml'),
                         ('SegmentationClass', 'png'),
                         ('SegmentationClassAug', 'png')):
            touch(voc / 'VOC2012' / sub / f'{i}.{ext}')
    write_list(voc / 'VOC2012/ImageSets/Segmentation/val.txt', VAL12 + twins)
    write_list(voc / 'VOC2012/ImageSets/Main/trainval.txt',
               IDS12 + ['2007_000005'])
    return voc


def test_voc_draw_is_leak_free_across_years(tmp_path, capsys):
    voc = make_voc_with_twins(tmp_path)
    assert ms.main(['voc', '--voc-root', str(voc), '--seed', '0']) == 0
    out = capsys.readouterr().out
    train07 = partial(voc, '2007', 'det_train') + partial(voc, '2007',
                                                          'seg_train')
    train12 = partial(voc, '2012', 'det_train') + partial(voc, '2012',
                                                          'seg_train')
    # the VOC2007 copies of val images are not trained on
    assert '000003' not in train07 and '000004' not in train07
    assert sorted(train07) == [i for i in IDS07 if i not in ('000003',
                                                             '000004')]
    # 2007_000005 is VOC2007's 000005, which is in the pool already
    assert '2007_000005' not in train12 and '000005' in train07
    assert sorted(train12) == IDS12[:9]
    assert partial(voc, '2012', 'val') == VAL12 + ['2007_000003',
                                                   '2007_000004']
    assert ('twins: 2 val images are VOC2007 photos (2007_NNNNNN); 2 '
            'VOC2007 copies of val images excluded from the pool; 1 twin '
            'repeats in Main/trainval merged') in out
    assert 'pool: 17 images' in out


def test_voc_from_lists_drops_val_photos(tmp_path, capsys):
    voc = make_voc_with_twins(tmp_path)
    lists, want = make_paper_lists(tmp_path)
    # the authors' val holds 2007_000003 / 2007_000004; their VOC2007 det
    # list 000005..000010 and seg list 000001..000003: 000003 is a val photo
    write_list(lists / 'VOC2012/ImageSets/MXEseg/val.txt',
               VAL12[:3] + ['2007_000003', '2007_000004'])
    # a VOC2012 det entry that is VOC2007's 000006, already in det 2007,
    # and VOC2012 seg 2007_000007 = VOC2007 det 000007 (in both halves)
    for i in ('2007_000006', '2007_000007'):
        for sub, ext in (('JPEGImages', 'jpg'), ('Annotations', 'xml'),
                         ('SegmentationClassAug', 'png')):
            touch(voc / 'VOC2012' / sub / f'{i}.{ext}')
    write_list(lists / 'VOC2012/ImageSets/MXEdet/train.txt',
               want['det12'] + ['2007_000006'])
    write_list(lists / 'VOC2012/ImageSets/MXEseg/train.txt',
               want['seg12'] + ['2007_000007'])
    assert ms.main(['voc', '--voc-root', str(voc), '--from-lists',
                    str(lists)]) == 0
    cap = capsys.readouterr()
    assert partial(voc, '2007', 'seg_train') == ['000001', '000002']
    assert partial(voc, '2007', 'det_train') == want['det07']
    assert partial(voc, '2012', 'det_train') == want['det12']
    assert partial(voc, '2012', 'seg_train') == want['seg12'] + [
        '2007_000007']
    assert partial(voc, '2012', 'val') == VAL12[:3] + ['2007_000003',
                                                       '2007_000004']
    assert ('warning: 1 training image(s) of the lists are validation '
            'photos') in cap.err and 'VOC2007/000003 (seg)' in cap.err
    assert 'listed twice in one half' in cap.err
    assert 'VOC2012/2007_000006 (det)' in cap.err
    assert 'in both the detection and the segmentation list' in cap.err
    assert 'VOC2007/000007' in cap.err
    assert ('twins: 2 val images are VOC2007 photos (2007_NNNNNN); 1 '
            'training images dropped as val photos') in cap.out


def test_voc_from_lists_without_val_list_copies_segmentation_val(
        tmp_path, capsys):
    """The tool always writes VOC2012/ImageSets/Partial/val.txt, the list
    the VOC configs evaluate on."""
    voc = make_voc(tmp_path)
    lists, _ = make_paper_lists(tmp_path)
    (lists / 'VOC2012/ImageSets/MXEseg/val.txt').unlink()
    assert ms.main(['voc', '--voc-root', str(voc), '--from-lists',
                    str(lists)]) == 0
    assert partial(voc, '2012', 'val') == VAL12
    out = capsys.readouterr().out
    assert f'val list: {voc}/VOC2012/ImageSets/Partial/val.txt' in out
    assert 'Segmentation/val.txt' in out
    # the seeded run: a copy minus the images with missing files
    (voc / 'VOC2012/SegmentationClass/2008_000099.png').unlink()
    assert ms.main(['voc', '--voc-root', str(voc), '--allow-missing']) == 0
    assert partial(voc, '2012', 'val') == VAL12[:3]


@pytest.mark.parametrize('umask,mode', [(0o022, 0o644), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    voc, coco_root = make_voc(tmp_path), make_coco(tmp_path)
    old = os.umask(umask)
    try:
        assert ms.main(['voc', '--voc-root', str(voc)]) == 0
        assert ms.main(['coco', '--coco-root', str(coco_root)]) == 0
        assert os.umask(umask) == umask  # the tool set it back
    finally:
        os.umask(old)
    files = list(voc.glob('VOC*/ImageSets/Partial/*.txt')) + list(
        (coco_root / 'annotations/partial').glob('*.json'))
    assert len(files) == 7
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == mode, f


def test_coco_missing_ann_file_says_where_to_download(tmp_path, capsys):
    assert ms.main(['coco', '--coco-root', str(tmp_path / 'coco')]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / 'coco' / 'annotations/instances_train2017.json') \
        in err
    assert 'annotations_trainval2017.zip' in err
    assert 'http://images.cocodataset.org/' in err


def _options_without_default(parser):
    """Option strings of the actions whose help lacks text or default."""
    fmt = ms._HelpFormatter('x')
    bad = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                bad += _options_without_default(sub)
        elif action.option_strings and action.dest != 'help':
            text = fmt._get_help_string(action) or ''
            if not action.help or '%(default)' not in text:
                bad.append(action.option_strings[0])
    return bad


def test_help_every_flag_with_text_and_default(capsys):
    parser = ms.build_parser()
    assert _options_without_default(parser) == []
    for argv in (['-h'], ['voc', '-h'], ['coco', '-h']):
        with pytest.raises(SystemExit):
            ms.main(argv)
        out = capsys.readouterr().out
        assert 'usage:' in out
    with pytest.raises(SystemExit):
        ms.main(['voc', '-h'])
    out = ' '.join(capsys.readouterr().out.split())
    assert '(default: data/VOCdevkit)' in out
    assert 'VOC2012/ImageSets/Partial/val.txt' in out
    assert 'the VOC configs read' in out
