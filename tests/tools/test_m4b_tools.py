"""Tests of tools/analysis_tools/m4b_quality.py and vis_mask_for_box.py on
a two-image VOC-layout dataset written by hand."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / 'tools' / 'analysis_tools'


def _load(name):
    sys.path.insert(0, str(TOOLS))
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _xml(objects):
    objs = ''.join(
        f'<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin>'
        f'<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax>'
        '</bndbox></object>' for n, b in objects)
    return f'<annotation>{objs}</annotation>'


@pytest.fixture
def toy(tmp_path):
    """Image 0: two touching rectangles merged in the mask; image 1: an
    ellipse cut in two by a vertical ignore line."""
    for d in ('JPEGImages', 'Annotations', 'SegmentationClass',
              'ImageSets/Main'):
        (tmp_path / d).mkdir(parents=True)
    m0 = np.zeros((64, 64), np.uint8)
    m0[10:30, 10:50] = 1  # instances [10,10,30,30] and [30,10,50,30]
    m1 = np.zeros((64, 64), np.uint8)
    m1[20:40, 10:50] = 2
    m1[20:40, 29:31] = 255  # cuts one instance [10,20,50,40] in two
    objects = [[('rectangle', (11, 11, 30, 30)),
                ('rectangle', (31, 11, 50, 30))],
               [('ellipse', (11, 21, 50, 40))]]
    for i, (m, objs) in enumerate(zip((m0, m1), objects)):
        Image.fromarray(m).save(tmp_path / f'SegmentationClass/{i:06d}.png')
        Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(
            tmp_path / f'JPEGImages/{i:06d}.jpg')
        (tmp_path / f'Annotations/{i:06d}.xml').write_text(_xml(objs))
    (tmp_path / 'ImageSets/Main/seg_train.txt').write_text(
        '000000\n000001\n')
    return tmp_path


def test_load_toy_image_converts_voc_boxes(toy):
    q = _load('m4b_quality')
    mask, boxes, labels = q.load_toy_image(str(toy), '000000')
    assert mask.shape == (64, 64) and mask.max() == 1
    np.testing.assert_array_equal(boxes, [[10, 10, 30, 30], [30, 10, 50, 30]])
    assert labels.tolist() == [0, 0]


def test_match_counts_is_one_to_one():
    q = _load('m4b_quality')
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    # one pseudo-box covering both (IoU 1/3 each), two copies of the first
    pseudo = np.array([[0, 0, 30, 10], [0, 0, 10, 10], [0, 0, 10, 11]],
                      float)
    out = q.match_counts(pseudo, np.array([0, 0, 0]), gt, np.array([0, 0]))
    assert out == {0.5: 1, 0.75: 1}
    out = q.match_counts(pseudo, np.array([1, 1, 1]), gt, np.array([0, 0]))
    assert out == {0.5: 0, 0.75: 0}


class _PerfectTeacher:
    """Returns the true instance boxes with score 0.9."""

    def __init__(self, q, root):
        self.q, self.root = q, root

    def __call__(self, img_path, num_classes):
        img_id = Path(img_path).stem
        _, boxes, labels = self.q.load_toy_image(self.root, img_id)
        scores = np.zeros((len(boxes), num_classes))
        scores[np.arange(len(boxes)), labels] = 0.9
        return boxes, scores


def test_evaluate_refined_beats_mask_boxes_with_good_teacher(toy, tmp_path):
    q = _load('m4b_quality')
    res = q.evaluate(str(toy), teacher=_PerfectTeacher(q, str(toy)))
    t = res['table']
    # Mask boxes: one box over two rectangles (IoU 0.5 with each: matched
    # at 0.5 once, at 0.75 never) and two halves of the ellipse (IoU 19/40
    # and 19/40 < 0.5): 1 of 3 matched at 0.5.
    assert t['mask_boxes']['n_gt'] == 3 and t['mask_boxes']['n_pseudo'] == 3
    assert t['mask_boxes']['matched@0.5'] == 1
    assert t['mask_boxes']['matched@0.75'] == 0
    # M4B splits image 0 in two; in image 1 the prediction touches three
    # sides of each half, so case A crops each half to the whole ellipse
    # (the duplicate is removed by NMS): all three instances at 0.75.
    assert t['m4b']['matched@0.75'] == 3 and t['m4b']['n_pseudo'] == 3
    assert res['m4b_cases'] == {'split': 3, 'merge': 0, 'add': 0,
                                'leftover': 0}
    assert 'R@0.75' in q.format_table(res)


class _TwoModeTeacher(_PerfectTeacher):
    """Post-NMS: the true boxes; dense: nothing (so that the two rows of
    ``teacher_boxes='both'`` must differ)."""

    def __call__(self, img_path, num_classes, mode='nms'):
        if mode == 'dense':
            return np.zeros((0, 4)), np.zeros((0, num_classes))
        return super().__call__(img_path, num_classes)


def test_evaluate_teacher_boxes_both_routes_each_input(toy):
    q = _load('m4b_quality')
    res = q.evaluate(str(toy), teacher=_TwoModeTeacher(q, str(toy)),
                     teacher_boxes='both')
    t = res['table']
    assert set(t) == {'mask_boxes', 'm4b[nms]', 'm4b[dense]', 'teacher>0.7'}
    assert t['m4b[nms]']['matched@0.75'] == 3
    # no teacher box: Algorithm 1 keeps the mask boxes (leftovers)
    assert t['m4b[dense]']['n_pseudo'] == t['mask_boxes']['n_pseudo'] == 3
    assert t['m4b[dense]']['matched@0.75'] == 0
    assert res['m4b_cases_by_input']['m4b[dense]'] == {
        'split': 0, 'merge': 0, 'add': 0, 'leftover': 3}
    assert res['m4b_cases'] == res['m4b_cases_by_input']['m4b[nms]']
    assert 'm4b[dense] boxes by case' in q.format_table(res)
    # the unbiased-teacher row always uses the post-NMS detections
    assert t['teacher>0.7']['n_pseudo'] == 3  # score 0.9 > 0.7
    with pytest.raises(ValueError, match='checkpoint teacher'):
        q.evaluate(str(toy), teacher=None, teacher_boxes='dense')
    with pytest.raises(SystemExit):
        q.main(['--data', str(toy), '--synthetic-teacher',
                '--teacher-boxes', 'both'])


def test_evaluate_classes_option(toy):
    q = _load('m4b_quality')
    with pytest.raises(ValueError):  # 'ellipse' is not a class of this list
        q.evaluate(str(toy), teacher=None, classes=('rectangle', 'box'))
    res = q.evaluate(str(toy), teacher=None,
                     classes=('rectangle', 'ellipse', 'triangle', 'cross'))
    assert res['table']['mask_boxes']['n_gt'] == 3


def test_quality_main_synthetic_writes_json(toy, tmp_path):
    q = _load('m4b_quality')
    out = tmp_path / 'q.json'
    res = q.main(['--data', str(toy), '--synthetic-teacher', '--variants',
                  '--out', str(out)])
    saved = json.loads(out.read_text())
    assert saved['table'] == json.loads(json.dumps(res['table']))
    assert set(saved['table']) == {'mask_boxes', 'm4b', 'm4b+merge_iou0.5',
                                   'm4b+unmatched', 'm4b+both',
                                   'teacher>0.7'}
    with pytest.raises(SystemExit):
        q.main(['--data', str(toy)])  # neither teacher nor --synthetic


def test_vis_writes_four_panel_pngs(toy, tmp_path):
    v = _load('vis_mask_for_box')
    out = tmp_path / 'vis'
    written = v.main(['--data', str(toy), '--synthetic-teacher', '--num',
                      '2', '--out-dir', str(out), '--scale', '2',
                      '--show-gt'])
    assert len(written) == 2
    img = np.array(Image.open(written[0]))
    assert img.shape == (128, 4 * 128 + 3 * 6, 3)
