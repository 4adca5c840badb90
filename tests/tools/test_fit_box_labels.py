"""tools/fit_box_labels.py on tiny COCO and VOC inputs."""
import importlib.util
import json
import os.path as osp

import numpy as np

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
