import importlib
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tool():
    # a real import (not from a spec) so that workers can pickle its
    # functions
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    return importlib.import_module('make_pseudo_masks')


XML = """<annotation><size><width>{w}</width><height>{h}</height>
<depth>3</depth></size>{objs}</annotation>"""
OBJ = """<object><name>{name}</name><difficult>0</difficult><bndbox>
<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>
</bndbox></object>"""


def make_voc(root, corrupt=True):
    for d in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (root / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = []
    objs = {
        'i0': [('ellipse', 8, 10, 30, 28)],
        'i1': [('rectangle', 4, 4, 36, 36), ('triangle', 10, 10, 20, 20)],
        'i2': [('ellipse', 20, 5, 38, 30), ('rectangle', 1, 1, 2, 2)],
    }
    for k, obj in objs.items():
        img = rng.integers(90, 110, (40, 44, 3)).astype(np.uint8)
        for _, x1, y1, x2, y2 in obj:
            img[y1 + 2:y2 - 2, x1 + 2:x2 - 2] = (20, 200, 40)
        cv2.imwrite(str(root / 'JPEGImages' / f'{k}.jpg'), img)
        (root / 'Annotations' / f'{k}.xml').write_text(XML.format(
            w=44, h=40, objs=''.join(
                OBJ.format(name=n, x1=a, y1=b, x2=c, y2=d)
                for n, a, b, c, d in obj)))
        ids.append(k)
    if corrupt:
        (root / 'JPEGImages' / 'bad.jpg').write_bytes(b'not a jpeg')
        (root / 'Annotations' / 'bad.xml').write_text(XML.format(
            w=44, h=40, objs=OBJ.format(name='ellipse', x1=1, y1=1, x2=9,
                                        y2=9)))
        ids.append('bad')
    split = root / 'ImageSets' / 'Main' / 'det_train.txt'
    split.write_text('\n'.join(ids) + '\n')
    return split


CLASSES = ['rectangle', 'ellipse', 'triangle']


def test_tool_parallel_resumable(tool, tmp_path, capsys):
    split = make_voc(tmp_path / 'voc')
    out, box_out = tmp_path / 'pm', tmp_path / 'pb'
    argv = [str(split), '--out', str(out), '--box-out', str(box_out),
            '--workers', '2', '--classes', *CLASSES, '--iterations', '2',
            '--no-progress']
    s = tool.main(argv)
    assert s['images'] == 4 and s['written'] == 3
    assert s['unreadable'] == [str(tmp_path / 'voc' / 'JPEGImages' /
                                   'bad.jpg')]
    assert s['boxes'] == 6  # 5 in readable images + 1 in bad.jpg
    assert s['fallback'].get('too_small') == 1  # the 1x2 box
    printed = capsys.readouterr().out
    assert 'unreadable image' in printed and 'bad.jpg' in printed
    assert 'too_small: 1' in printed
    for k in ('i0', 'i1', 'i2'):
        mc = cv2.imread(str(out / f'{k}.png'), cv2.IMREAD_UNCHANGED)
        mb = cv2.imread(str(box_out / f'{k}.png'), cv2.IMREAD_UNCHANGED)
        assert mc.shape == mb.shape == (40, 44) and mc.dtype == np.uint8
        assert not mc[mb == 0].any()
    mb = cv2.imread(str(box_out / 'i1.png'), cv2.IMREAD_UNCHANGED)
    # VOC 1-based inclusive (10..20) -> 0-based pixels 9..19; class 3
    assert (mb[9:20, 9:20] == 3).all() and mb[8, 9] == 1
    assert not list(out.glob('*.tmp*'))
    assert not (out / 'bad.png').exists()
    # resume: everything that was written is skipped, bad.jpg retried
    s2 = tool.main(argv)
    assert s2['already_done'] == 3 and s2['written'] == 0
    assert len(s2['unreadable']) == 1
    assert osp.exists(out / 'summary.json')


def test_tool_one_worker_same_output(tool, tmp_path):
    split = make_voc(tmp_path / 'voc', corrupt=False)
    entries, skips = tool.entries_from_split(str(split), CLASSES)
    assert [e['key'] for e in entries] == ['i0', 'i1', 'i2'] and not skips
    a = tool.make_pseudo_masks(entries, str(tmp_path / 'a'), workers=1,
                               progress=False)
    b = tool.make_pseudo_masks(entries, str(tmp_path / 'b'), workers=2,
                               progress=False)
    assert a['written'] == b['written'] == 3
    for k in ('i0', 'i1', 'i2'):
        np.testing.assert_array_equal(
            cv2.imread(str(tmp_path / 'a' / f'{k}.png'), -1),
            cv2.imread(str(tmp_path / 'b' / f'{k}.png'), -1))
    with pytest.raises(ValueError, match='ImageSets'):
        tool.entries_from_split(str(tmp_path / 'x.txt'))


def test_tool_from_config(tool, tmp_path):
    """A config: the detection dataset of a ConcatDataset, the cache folder
    of its LoadPseudoMask."""
    split = make_voc(tmp_path / 'voc', corrupt=False)
    cache = tmp_path / 'cache'
    det = dict(type='PartialVOCDataset', data_root=str(tmp_path / 'voc'),
               ann_file=str(split), ann_task='det',
               metainfo=dict(classes=tuple(CLASSES)),
               pipeline=[dict(type='LoadPseudoMask',
                              pseudo_mask_dir=str(cache))])
    seg = dict(det, ann_task='seg', pipeline=[])
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('train_dataloader = dict(dataset=dict('
                   f'type="ConcatDataset", datasets=[{det!r}, {seg!r}]))\n')
    s = tool.main([str(cfg), '--no-progress', '--iterations', '1'])
    assert s['written'] == 3 and s['boxes'] == 5
    assert sorted(p.name for p in cache.glob('*.png')) == [
        'i0.png', 'i1.png', 'i2.png']


# ----------------------------------------------------------------------------
# configs: every leaf dataset with LoadPseudoMask
CLASSES5 = ('rectangle', 'ellipse', 'triangle', 'star', 'ring')


def make_year(root, objs, sizes):
    """A VOC-layout folder: images of several non-square sizes with the
    given objects ``(name, x1, y1, x2, y2, difficult)``."""
    for d in ('JPEGImages', 'Annotations', 'ImageSets/Partial'):
        (root / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(objs))
    for (k, obj), (h, w) in zip(objs.items(), sizes):
        img = rng.integers(90, 110, (h, w, 3)).astype(np.uint8)
        for _, x1, y1, x2, y2, _ in obj:
            img[y1 + 2:y2 - 2, x1 + 2:x2 - 2] = (20, 200, 40)
        cv2.imwrite(str(root / 'JPEGImages' / f'{k}.jpg'), img)
        (root / 'Annotations' / f'{k}.xml').write_text(XML.format(
            w=w, h=h, objs=''.join(
                OBJ.format(name=n, x1=a, y1=b, x2=c, y2=d).replace(
                    '<difficult>0', f'<difficult>{diff}')
                for n, a, b, c, d, diff in obj)))
    split = root / 'ImageSets' / 'Partial' / 'det_train.txt'
    split.write_text('\n'.join(objs) + '\n')
    (root / 'ImageSets' / 'Partial' / 'seg_train.txt').write_text(
        '\n'.join(objs) + '\n')
    return split


OBJS07 = {'000005': [('star', 4, 4, 30, 20, 0), ('ring', 30, 10, 44, 30, 1)],
          '000007': [('ring', 6, 8, 24, 40, 0)]}
OBJS12 = {'2008_000001': [('triangle', 3, 3, 20, 25, 0),
                          ('ellipse', 22, 6, 50, 30, 0)],
          '2008_000002': [('rectangle', 10, 4, 40, 18, 0)],
          '2008_000003': [('star', 2, 2, 12, 14, 0)]}


def nested_config(tmp_path, cache07, cache12, repeat=False, extra=''):
    """ConcatDataset[ConcatDataset[det07, det12], ConcatDataset[seg07,
    seg12]] as in configs/_base_/datasets/voc_partial_b4m.py; the seg
    leaves have a LoadPseudoMask too (tasks=('det',): not cached)."""
    voc = tmp_path / 'VOCdevkit'
    make_year(voc / 'VOC2007', OBJS07, [(36, 48), (44, 30)])
    make_year(voc / 'VOC2012', OBJS12, [(32, 56), (24, 44), (20, 16)])

    def leaf(year, task, cache):
        pipeline = [dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations', with_bbox=True),
                    dict(type='LoadPseudoMask', pseudo_mask_dir=cache)]
        return dict(type='PartialVOCDataset',
                    data_root=f'{voc}/VOC{year}/',
                    ann_file=f'ImageSets/Partial/{task}_train.txt',
                    ann_task=task, metainfo=dict(classes=CLASSES5),
                    pipeline=pipeline)

    det12 = leaf(2012, 'det', cache12)
    if repeat:
        det12 = dict(type='RepeatDataset', times=2, dataset=det12)
    det = dict(type='ConcatDataset', datasets=[leaf(2007, 'det', cache07),
                                               det12])
    seg = dict(type='ConcatDataset', datasets=[leaf(2007, 'seg', cache07),
                                               leaf(2012, 'seg', cache07)])
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(extra + 'train_dataloader = dict(dataset=dict('
                   f'type="ConcatDataset", datasets=[{det!r}, {seg!r}]))\n')
    return cfg, voc


def test_config_caches_every_leaf_of_a_nested_concat(tool, tmp_path, capsys):
    """The VOC2012 half too (it was left out: FileNotFoundError at
    training); ignored (difficult) boxes are 255; counts per dataset."""
    cache = tmp_path / 'cache'
    cfg, voc = nested_config(tmp_path, str(cache), str(cache))
    s = tool.main([str(cfg), '--no-progress', '--iterations', '1'])
    assert sorted(p.name for p in cache.glob('*.png')) == sorted(
        f'{k}.png' for k in [*OBJS07, *OBJS12])
    assert s['complete'] and s['missing_cache'] == []
    assert s['images'] == 5 and s['written'] == 5
    assert s['boxes'] == 6 and s['ignored_boxes'] == 1
    assert [(d['path'], d['images']) for d in s['datasets']] == [
        ('train_dataloader.dataset.datasets[0].datasets[0]', 2),
        ('train_dataloader.dataset.datasets[0].datasets[1]', 3)]
    out = capsys.readouterr().out
    assert f'{voc}/VOC2012/ImageSets/Partial/det_train.txt: 3 images' in out
    assert f'{voc}/VOC2007/ImageSets/Partial/det_train.txt: 2 images' in out
    assert 'check: all 5 images of 2 dataset(s) have their cache file' in out
    assert 'not cached: train_dataloader.dataset.datasets[1].datasets[0]' \
        in out
    # 000005: the difficult ring (x 30..44, y 10..30, 1-based) is 255
    # outside the star's box (x 4..30, y 4..20)
    mc = cv2.imread(str(cache / '000005.png'), cv2.IMREAD_UNCHANGED)
    assert mc.shape == (36, 48)
    assert (mc[20:30, 30:44] == 255).all()
    assert (mc[10:20, 30:44] == 255).all()  # column 30 (1-based) is 29
    assert not (mc == 5).any()  # the ring's class never appears
    assert set(np.unique(mc[4:20, 4:29])) <= {0, 4}
    assert cv2.imread(str(cache / '2008_000003.png'), -1).shape == (20, 16)


def test_config_groups_by_pseudo_mask_dir(tool, tmp_path):
    """Two cache dirs, a RepeatDataset in between; --out only with one."""
    a, b = tmp_path / 'a', tmp_path / 'b'
    cfg, _ = nested_config(tmp_path, str(a), str(b), repeat=True)
    with pytest.raises(SystemExit, match='caches into 2 folders'):
        tool.main([str(cfg), '--out', str(tmp_path / 'c'), '--no-progress'])
    s = tool.main([str(cfg), '--no-progress', '--iterations', '1'])
    assert sorted(p.stem for p in a.glob('*.png')) == sorted(OBJS07)
    assert sorted(p.stem for p in b.glob('*.png')) == sorted(OBJS12)
    assert [c['out'] for c in s['caches']] == [str(a), str(b)]
    assert s['images'] == 5 and s['complete']
    assert (a / 'summary.json').exists() and (b / 'summary.json').exists()
    assert s['caches'][1]['datasets'][0]['path'] == \
        'train_dataloader.dataset.datasets[0].datasets[1].dataset'


def test_config_cfg_options_move_data_root(tool, tmp_path):
    """--cfg-options data_root=... re-roots every dataset and the cache
    (bombo.utils.config.load_config)."""
    cfg, voc = nested_config(tmp_path, str(tmp_path / 'cache'),
                             str(tmp_path / 'cache'))
    moved = tmp_path / 'moved'
    moved.mkdir()
    voc.rename(moved / 'VOCdevkit')
    text = cfg.read_text().replace(str(tmp_path), '/nowhere')
    cfg.write_text("data_root = '/nowhere/'\nbase_data_root = data_root\n"
                   + text)
    s = tool.main([str(cfg), '--no-progress', '--iterations', '1',
                   '--cfg-options', f'data_root={moved}/'])
    assert s['complete'] and s['images'] == 5
    assert len(list((moved / 'cache').glob('*.png'))) == 5


def test_config_key_collision_across_datasets_of_one_dir(tool, tmp_path):
    cache = tmp_path / 'cache'
    cfg, voc = nested_config(tmp_path, str(cache), str(cache))
    # a VOC2012 image with the file name of a VOC2007 one
    for d, ext in (('JPEGImages', 'jpg'), ('Annotations', 'xml')):
        (voc / 'VOC2012' / d / f'2008_000003.{ext}').rename(
            voc / 'VOC2012' / d / f'000005.{ext}')
    (voc / 'VOC2012/ImageSets/Partial/det_train.txt').write_text(
        '2008_000001\n2008_000002\n000005\n')
    with pytest.raises(ValueError, match='collide') as e:
        tool.main([str(cfg), '--no-progress', '--iterations', '1'])
    assert 'VOC2007' in str(e.value) and 'VOC2012' in str(e.value)


def test_config_without_b4m_pipeline(tool, tmp_path):
    cfg, _ = nested_config(tmp_path, 'x', 'x')
    cfg.write_text(cfg.read_text().replace("'LoadPseudoMask'",
                                           "'LoadAnnotations'"))
    with pytest.raises(SystemExit) as e:
        tool.main([str(cfg), '--no-progress'])
    msg = str(e.value)
    assert 'no Box-for-Mask pipeline' in msg
    assert 'ImageSets/Partial/det_train.txt --out' in msg


def test_check_after_run_names_images_without_cache(tool, tmp_path, capsys):
    split = make_voc(tmp_path / 'voc')  # holds an unreadable bad.jpg
    s = tool.main([str(split), '--out', str(tmp_path / 'pm'), '--classes',
                   *CLASSES, '--iterations', '1', '--no-progress'])
    assert not s['complete']
    assert s['missing_cache'] == [str(tmp_path / 'voc/JPEGImages/bad.jpg')]
    out = capsys.readouterr().out
    assert 'check: 1 of 4 images of 1 dataset(s) have NO cache file' in out


def test_help_every_flag_with_default(tool, capsys):
    with pytest.raises(SystemExit):
        tool.main(['--help'])
    out = capsys.readouterr().out
    for flag in ('--out', '--box-out', '--workers', '--iterations',
                 '--margin', '--max-side', '--min-size', '--classes',
                 '--cfg-options', '--no-progress'):
        assert flag in out
    assert out.count('(default: ') == 10
    assert '--dataset-index' not in out
