"""Tests of tools/convert_sbd.py with tiny hand-made SBD .mat files."""
import importlib.util
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    'tools_convert_sbd', ROOT / 'tools' / 'convert_sbd.py')
cs = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cs  # so that worker processes can unpickle it
_spec.loader.exec_module(cs)


def write_sbd_mat(path: Path, seg: np.ndarray):
    """An SBD-like cls file: struct GTcls with Segmentation, Boundaries and
    CategoriesPresent (as SBD's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    present = np.unique(seg[seg > 0]).astype(np.uint8)
    savemat(str(path), {'GTcls': {
        'Segmentation': seg.astype(np.uint8),
        'Boundaries': np.zeros((20, 1), dtype=object),
        'CategoriesPresent': present}})


SEG_A = np.array([[0, 0, 15, 15, 0],
                  [0, 1, 15, 15, 0],
                  [0, 1, 1, 20, 20],
                  [0, 0, 0, 20, 20]], dtype=np.uint8)
SEG_B = np.zeros((3, 4), dtype=np.uint8)
SEG_B[1, 1:3] = 7


@pytest.fixture
def tree(tmp_path):
    sbd = tmp_path / 'SBD' / 'dataset'
    voc = tmp_path / 'VOCdevkit'
    (voc / 'VOC2012').mkdir(parents=True)
    write_sbd_mat(sbd / 'cls' / '2008_000001.mat', SEG_A)
    write_sbd_mat(sbd / 'cls' / '2008_000002.mat', SEG_B)
    return sbd, voc


def out_png(voc, img_id):
    return voc / 'VOC2012' / 'SegmentationClassAug' / f'{img_id}.png'


def test_palette_matches_voc():
    pal = np.array(cs.voc_palette()).reshape(256, 3)
    assert pal[0].tolist() == [0, 0, 0]
    assert pal[1].tolist() == [128, 0, 0]       # aeroplane
    assert pal[2].tolist() == [0, 128, 0]       # bicycle
    assert pal[7].tolist() == [128, 128, 128]   # car
    assert pal[15].tolist() == [192, 128, 128]  # person
    assert pal[20].tolist() == [0, 64, 128]     # tvmonitor
    assert pal[255].tolist() == [224, 224, 192]  # ignore / border


def test_read_sbd_class_map(tree):
    sbd, _ = tree
    seg = cs.read_sbd_class_map(str(sbd / 'cls' / '2008_000001.mat'))
    assert seg.dtype == np.uint8
    np.testing.assert_array_equal(seg, SEG_A)


def test_convert_writes_palette_pngs(tree):
    sbd, voc = tree
    counts = cs.convert(str(sbd), str(voc), progress=False)
    assert counts['converted'] == 2 and counts['unreadable'] == 0
    with Image.open(out_png(voc, '2008_000001')) as im:
        assert im.mode == 'P'
        np.testing.assert_array_equal(np.asarray(im), SEG_A)
        assert im.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
        assert im.getpalette()[15 * 3:15 * 3 + 3] == [192, 128, 128]
    with Image.open(out_png(voc, '2008_000002')) as im:
        np.testing.assert_array_equal(np.asarray(im), SEG_B)


def test_official_voc_masks_take_precedence(tree):
    sbd, voc = tree
    official = np.full_like(SEG_A, 255)
    official[1:3, 1:3] = 1
    d = voc / 'VOC2012' / 'SegmentationClass'
    d.mkdir(parents=True)
    im = Image.frombytes('P', official.shape[::-1], official.tobytes())
    im.putpalette(cs.voc_palette())
    im.save(d / '2008_000001.png')
    im.save(d / '2012_000777.png')               # a VOC-only mask
    counts = cs.convert(str(sbd), str(voc), progress=False)
    assert counts['official_copied'] == 2
    for img_id in ('2008_000001', '2012_000777'):
        assert out_png(voc, img_id).read_bytes() == \
            (d / f'{img_id}.png').read_bytes()
    with Image.open(out_png(voc, '2008_000001')) as im:
        np.testing.assert_array_equal(np.asarray(im), official)
    # resumable: nothing redone, the official mask stays
    counts = cs.convert(str(sbd), str(voc), progress=False)
    assert counts['converted'] == 0 and counts['exists'] == 2
    assert counts['official_copied'] == 0 and counts['official_same'] == 2
    with Image.open(out_png(voc, '2008_000001')) as im:
        np.testing.assert_array_equal(np.asarray(im), official)


def test_unreadable_mat_is_counted_and_named(tree, capsys):
    sbd, voc = tree
    (sbd / 'cls' / '2008_000003.mat').write_bytes(b'not a mat file')
    savemat(str(sbd / 'cls' / '2008_000004.mat'), {'other': np.zeros(3)})
    write_sbd_mat(sbd / 'cls' / '2008_000005.mat',
                  np.full((2, 2), 33, dtype=np.uint8))  # not a VOC class
    rc = cs.main(['--sbd-root', str(sbd), '--voc-root', str(voc),
                  '--no-progress'])
    assert rc == 0
    cap = capsys.readouterr()
    assert '2 converted' in cap.out and '3 unreadable' in cap.out
    for i in (3, 4, 5):
        assert f'2008_00000{i}.mat' in cap.err
        assert not out_png(voc, f'2008_00000{i}').exists()
    assert 'outside 0..20' in cap.err
    assert not list((voc / 'VOC2012' / 'SegmentationClassAug').glob('.tmp_*'))


def test_overwrite_and_workers(tree):
    sbd, voc = tree
    out_png(voc, '2008_000002').parent.mkdir(parents=True)
    Image.new('P', (1, 1)).save(out_png(voc, '2008_000002'))  # stale file
    counts = cs.convert(str(sbd), str(voc), workers=2, progress=False)
    assert counts['converted'] == 1 and counts['exists'] == 1
    counts = cs.convert(str(sbd), str(voc), workers=2, overwrite=True,
                        progress=False)
    assert counts['converted'] == 2
    with Image.open(out_png(voc, '2008_000002')) as im:
        np.testing.assert_array_equal(np.asarray(im), SEG_B)


def test_missing_inputs(tmp_path, capsys):
    assert cs.main(['--sbd-root', str(tmp_path / 'nope'), '--voc-root',
                    str(tmp_path), '--no-progress']) == 1
    assert 'no .mat file' in capsys.readouterr().err


def _write_mat_raw(path: Path, seg):
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {'GTcls': {'Segmentation': seg,
                                  'CategoriesPresent': np.array([1.0])}})


def test_double_class_map(tmp_path):
    """A re-saved SBD file may hold GTcls.Segmentation as double: whole
    values are converted, others make the file unreadable (not cast)."""
    seg = np.zeros((5, 7))
    seg[1:4, 2:6] = 12.0
    seg[0, 0] = 20.0
    _write_mat_raw(tmp_path / 'ok.mat', seg)
    out = cs.read_sbd_class_map(str(tmp_path / 'ok.mat'))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, seg.astype(np.uint8))
    _write_mat_raw(tmp_path / 'i32.mat', seg.astype(np.int32))
    np.testing.assert_array_equal(
        cs.read_sbd_class_map(str(tmp_path / 'i32.mat')), out)
    for name, bad, reason in (('nan', np.nan, 'NaN'),
                              ('half', 1.5, 'non-integer'),
                              ('inf', np.inf, 'NaN or infinite')):
        b = seg.copy()
        b[2, 2] = bad
        _write_mat_raw(tmp_path / f'{name}.mat', b)
        with pytest.raises(ValueError, match=reason):
            cs.read_sbd_class_map(str(tmp_path / f'{name}.mat'))


@pytest.mark.parametrize('umask,mode', [(0o022, 0o644), (0o027, 0o640)])
def test_written_pngs_follow_the_umask(tree, umask, mode):
    sbd, voc = tree
    d = voc / 'VOC2012' / 'SegmentationClass'
    d.mkdir(parents=True)
    Image.new('P', (6, 4)).save(d / '2012_000777.png')  # official only
    old = os.umask(umask)
    try:
        cs.convert(str(sbd), str(voc), progress=False)
        assert os.umask(umask) == umask
    finally:
        os.umask(old)
    pngs = sorted((voc / 'VOC2012' / 'SegmentationClassAug').glob('*.png'))
    assert [p.stem for p in pngs] == ['2008_000001', '2008_000002',
                                      '2012_000777']
    for p in pngs:
        assert stat.S_IMODE(p.stat().st_mode) == mode, p


def test_help_every_flag_with_text_and_default(capsys):
    parser = cs.build_parser()
    fmt = cs._HelpFormatter('x')
    for action in parser._actions:
        if action.dest != 'help':
            assert action.help and '%(default)' in fmt._get_help_string(
                action), action.option_strings
    with pytest.raises(SystemExit):
        cs.main(['--help'])
    out = ' '.join(capsys.readouterr().out.split())
    assert '(default: data/SBD/dataset)' in out and 'Usage::' in out
