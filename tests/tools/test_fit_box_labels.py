"""tools/fit_box_labels.py on tiny COCO and VOC inputs."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from bombo.models.task_modules.box_labels import BoxLabeler

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    'fit_box_labels', osp.join(ROOT, 'tools', 'fit_box_labels.py'))
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_coco_fit_writes_labeler_and_elbow(tmp_path):
    rng = np.random.default_rng(0)
    anns = []
    for i, (w, h) in enumerate(np.r_[rng.uniform(5, 8, (10, 2)),
                                     rng.uniform(60, 70, (10, 2)),
                                     np.c_[rng.uniform(2, 3, 10),
                                           rng.uniform(30, 40, 10)]]):
        anns.append(dict(id=i, image_id=0, category_id=1 + i // 10,
                         bbox=[3.0, 4.0, float(w), float(h)], iscrowd=0))
    anns.append(dict(id=99, image_id=0, category_id=1, iscrowd=1,
                     bbox=[0, 0, 500, 500]))  # crowd: skipped
    ann_file = tmp_path / 'train.json'
    ann_file.write_text(json.dumps(dict(
        images=[dict(id=0)], annotations=anns,
        categories=[dict(id=c, name=str(c)) for c in (1, 2, 3)])))
    boxes, labels = tool.load_coco_boxes(str(ann_file))
    assert boxes.shape == (30, 4) and labels.max() == 2
    np.testing.assert_allclose(boxes[0, :2], [3, 4])
    out, png = tmp_path / 'bl.json', tmp_path / 'elbow.png'
    tool.main(['--ann-file', str(ann_file), '--out', str(out), '--elbow',
               str(png), '--k-range', '1', '4'])
    lab = BoxLabeler.load(str(out))
    assert lab.num_clusters == 3 and lab.meta['cluster_sizes'] == [10] * 3
    assert len(lab.meta['elbow']['inertia']) == 4
    assert png.stat().st_size > 1000


def test_voc_reader(tmp_path):
    for d in ('Annotations', 'ImageSets/Main'):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / 'ImageSets/Main/train.txt').write_text('a\n')
    (tmp_path / 'Annotations/a.xml').write_text(
        '<annotation><object><name>cat</name><difficult>0</difficult>'
        '<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax>'
        '</bndbox></object><object><name>dog</name><difficult>1</difficult>'
        '<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>'
        '</bndbox></object></annotation>')
    boxes, labels = tool.load_voc_boxes([str(tmp_path)], 'Main/train')
    np.testing.assert_allclose(boxes, [[0, 1, 10, 20]])
    assert labels.tolist() == [0]


def _coco_with_sizes(tmp_path, sizes=True):
    """Three classes of box shapes on two images of different sizes."""
    rng = np.random.default_rng(1)
    images = [dict(id=0, height=120, width=200), dict(id=1, height=300,
                                                      width=90)]
    if not sizes:
        images = [dict(id=0), dict(id=1)]
    anns = []
    for i in range(30):
        w, h = [(6, 7), (60, 65), (3, 35)][i // 10] + rng.uniform(0, 2, 2)
        anns.append(dict(id=i, image_id=i % 2, category_id=1 + i // 10,
                         bbox=[float(i), 2.0 * i, float(w), float(h)],
                         iscrowd=0))
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=c, name=str(c)) for c in (1, 2, 3)])))
    return path


def test_xcycwh_relevance_fitted_on_the_training_set(tmp_path):
    """With image sizes, the file holds TG-MATL's xcycwh min-max and MI
    fitted on every training box with its own image's (H, W)."""
    from bombo.models.losses.tg_matl import TGMATLRelevance
    ann = _coco_with_sizes(tmp_path)
    boxes, labels, sizes = tool.load_coco_boxes(str(ann), with_sizes=True)
    assert sizes.shape == (30, 2)
    assert sizes[0].tolist() == [120, 200] and sizes[1].tolist() == [300, 90]
    out = tmp_path / 'bl.json'
    tool.main(['--ann-file', str(ann), '--out', str(out)])
    fitted = BoxLabeler.load(str(out)).relevance_fits['xcycwh']
    ref = TGMATLRelevance.fit(boxes, labels, 'xcycwh', sizes, seed=0)
    np.testing.assert_allclose(fitted['mutual_info'], ref.mutual_info)
    np.testing.assert_allclose(fitted['feat_min'], ref.feat_min)
    # the range of xc / W over the boxes, each with its own image's width
    xc_over_w = (boxes[:, 0] + boxes[:, 2]) / 2 / sizes[:, 1]
    assert fitted['feat_min'][0] == pytest.approx(xc_over_w.min())
    assert fitted['feat_max'][0] == pytest.approx(xc_over_w.max())
    assert fitted['mode'] == 'xcycwh'


def test_xcycwh_relevance_needs_sizes(tmp_path, capsys):
    ann = _coco_with_sizes(tmp_path, sizes=False)
    out = tmp_path / 'bl.json'
    tool.main(['--ann-file', str(ann), '--out', str(out)])  # default: note
    assert 'image sizes missing' in capsys.readouterr().out
    assert BoxLabeler.load(str(out)).relevance_fits == {}
    with pytest.raises(SystemExit) as e:  # asked for explicitly: an error
        tool.main(['--ann-file', str(ann), '--out', str(out),
                   '--relevance-features', 'xcycwh'])
    assert e.value.code == 2
    assert 'needs the image sizes' in capsys.readouterr().err
    tool.main(['--ann-file', str(ann), '--out', str(out),
               '--relevance-features', 'shape'])  # shape only: fine


def test_voc_reader_sizes(tmp_path):
    for d in ('Annotations', 'ImageSets/Main'):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / 'ImageSets/Main/train.txt').write_text('a\nb\n')
    obj = ('<object><name>cat</name><difficult>0</difficult><bndbox>'
           '<xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax>'
           '</bndbox></object>')
    (tmp_path / 'Annotations/a.xml').write_text(
        '<annotation><size><width>500</width><height>375</height>'
        f'<depth>3</depth></size>{obj}</annotation>')
    (tmp_path / 'Annotations/b.xml').write_text(
        '<annotation><size><width>333</width><height>500</height>'
        f'<depth>3</depth></size>{obj}{obj}</annotation>')
    _, _, sizes = tool.load_voc_boxes([str(tmp_path)], 'Main/train',
                                      with_sizes=True)
    assert sizes.tolist() == [[375, 500], [500, 333], [500, 333]]
    (tmp_path / 'Annotations/b.xml').write_text(
        f'<annotation>{obj}</annotation>')  # no <size>
    _, _, sizes = tool.load_voc_boxes([str(tmp_path)], 'Main/train',
                                      with_sizes=True)
    assert sizes is None
