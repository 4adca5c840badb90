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
