"""FastCocoMetric: faster-coco-eval gives mmdet CocoMetric's numbers; per-class AP; empty input."""
import json

import numpy as np
import pytest
import torch

from bombo.evaluation.fast_coco_metric import FastCocoMetric
from bombo.evaluation.tables import per_class_ap_from_precision, per_class_ap_table

CLASSES = ('rectangle', 'ellipse', 'triangle')


def random_scene(seed=0, n_img=12):
    """Random gt (1-4 objects, some crowd) and noisy detections with false positives."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for i in range(n_img):
        n = rng.integers(1, 5)
        xy = rng.uniform(0, 80, (n, 2))
        wh = rng.uniform(8, 60, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(0, 3, n)
        crowd = rng.random(n) < 0.1
        gts.append(dict(img_id=i + 1, bboxes=boxes, labels=labels, crowd=crowd))
        keep = rng.random(n) < 0.8
        det = boxes[keep] + rng.normal(0, 4, (keep.sum(), 4))
        det_labels = np.where(rng.random(keep.sum()) < 0.85, labels[keep], rng.integers(0, 3))
        m = rng.integers(0, 4)
        fxy = rng.uniform(0, 100, (m, 2))
        fp = np.concatenate([fxy, fxy + rng.uniform(5, 40, (m, 2))], 1)
        preds.append(dict(bboxes=np.concatenate([det, fp]).astype(np.float32),
                          labels=np.concatenate([det_labels, rng.integers(0, 3, m)]),
                          scores=rng.uniform(0.05, 1, keep.sum() + m).astype(np.float32)))
    return gts, preds


def samples(gts, preds):
    out = []
    for g, p in zip(gts, preds):
        out.append(dict(
            img_id=g['img_id'], ori_shape=(120, 140),
            instances=[dict(bbox=b.tolist(), bbox_label=int(l), ignore_flag=int(c))
                       for b, l, c in zip(g['bboxes'], g['labels'], g['crowd'])],
            pred_instances=dict(bboxes=torch.from_numpy(p['bboxes']),
                                scores=torch.from_numpy(p['scores']),
                                labels=torch.from_numpy(np.asarray(p['labels'], np.int64)))))
    return out


def run(metric, data):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, data)
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('classwise', [False, True])
def test_backends_give_identical_numbers(classwise):
    from mmdet.evaluation.metrics import CocoMetric
    data = samples(*random_scene())
    ref = run(CocoMetric(classwise=classwise), data)
    slow = run(FastCocoMetric(backend='pycocotools', classwise=classwise), data)
    fast_metric = FastCocoMetric(backend='faster_coco_eval', classwise=classwise)
    fast = run(fast_metric, data)
    assert 0.05 < ref['bbox_mAP'] < 0.95  # a non-trivial result
    for key, value in ref.items():
        assert slow[key] == value and fast[key] == value, key
    if classwise:
        # precision arrays, not only rounded summaries (equal up to float rounding, 1 ulp)
        pyc = FastCocoMetric(backend='pycocotools', classwise=True)
        run(pyc, data)
        np.testing.assert_allclose(pyc.last_precision['bbox'],
                                   fast_metric.last_precision['bbox'], rtol=0, atol=1e-12)
        assert {f'bbox_{c}_AP50' for c in CLASSES} <= set(fast)


def test_ann_file_backend_equal(tmp_path):
    gts, preds = random_scene(seed=1)
    images = [dict(id=g['img_id'], width=140, height=120, file_name='') for g in gts]
    anns = []
    for g in gts:
        for b, l, c in zip(g['bboxes'], g['labels'], g['crowd']):
            anns.append(dict(id=len(anns) + 1, image_id=g['img_id'], category_id=int(l) + 1,
                             bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]], iscrowd=int(c),
                             area=float((b[2] - b[0]) * (b[3] - b[1]))))
    gt_file = tmp_path / 'gt.json'
    gt_file.write_text(json.dumps(dict(images=images, annotations=anns, categories=[
        dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)])))
    data = samples(gts, preds)
    slow = run(FastCocoMetric(ann_file=str(gt_file), backend='pycocotools'), data)
    fast = run(FastCocoMetric(ann_file=str(gt_file), backend='faster_coco_eval'), data)
    assert slow == fast and slow['bbox_mAP'] > 0


def test_per_class_ap50_hand_computed():
    box = np.array([[10, 10, 50, 50]], np.float32)
    gts = [dict(img_id=i + 1, bboxes=box.astype(float), labels=np.array([i // 2]),
                crowd=np.array([False])) for i in range(4)]  # class 0: imgs 1, 2; class 1: 3, 4
    preds = [dict(bboxes=box, labels=np.array([g['labels'][0]]), scores=np.array([0.9], np.float32))
             for g in gts]
    preds[3] = dict(bboxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                    scores=np.zeros(0, np.float32))  # class 1 half detected
    metric = FastCocoMetric(backend='faster_coco_eval', classwise=True)
    res = run(metric, samples(gts, preds))
    assert res['bbox_rectangle_AP50'] == 1.0
    assert res['bbox_ellipse_AP50'] == round(51 / 101, 3)  # recall 0..0.5 at precision 1
    rows = metric.per_class['bbox']
    assert np.isnan(rows[2]['AP50'])  # no triangle ground truth
    table = per_class_ap_table(rows)
    assert '| triangle' in table and 'nan' in table
    assert f'{100 * (1 + 51 / 101) / 2:.2f}' in table.splitlines()[-1]  # mean over defined classes


@pytest.mark.parametrize('backend', ['pycocotools', 'faster_coco_eval'])
def test_empty_results_do_not_crash(backend):
    gts, preds = random_scene(n_img=3)
    for p in preds:
        p.update(bboxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                 scores=np.zeros(0, np.float32))
    res = run(FastCocoMetric(backend=backend), samples(gts, preds))
    assert res['bbox_mAP'] == 0.0 and res['bbox_mAP_50'] == 0.0
    assert {'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l'} <= set(res)


def test_backend_is_restored_and_validated():
    from mmdet.evaluation.metrics import coco_metric
    before = (coco_metric.COCO, coco_metric.COCOeval)
    run(FastCocoMetric(backend='faster_coco_eval'), samples(*random_scene(n_img=2)))
    assert (coco_metric.COCO, coco_metric.COCOeval) == before
    with pytest.raises(ValueError, match='backend'):
        FastCocoMetric(backend='detectron2')


def test_per_class_ap_from_precision_by_hand():
    prec = -np.ones((10, 101, 2, 4, 3))
    prec[:, :, 0, 0, -1] = 0.5
    prec[0, :, 0, 0, -1] = 1.0  # IoU 0.5
    rows = per_class_ap_from_precision(prec, ['a', 'b'])
    assert rows[0]['AP50'] == 1.0 and rows[0]['AP75'] == 0.5
    assert rows[0]['AP'] == pytest.approx((1.0 + 9 * 0.5) / 10)
    assert np.isnan(rows[1]['AP'])


def test_string_image_ids_voc_style():
    """VOC ids are strings; faster-coco-eval only takes ints: they are mapped, same numbers."""
    gts, preds = random_scene(seed=2)
    for g in gts:
        g['img_id'] = f'2008_{g["img_id"]:06d}'
    data = samples(gts, preds)
    slow = run(FastCocoMetric(backend='pycocotools'), data)
    fast_metric = FastCocoMetric(backend='faster_coco_eval')
    fast = run(fast_metric, data)
    assert slow == fast and slow['bbox_mAP'] > 0
    from mmdet.evaluation.metrics import CocoMetric
    assert run(CocoMetric(), data) == slow  # string ids through the fast conversion too
    again = fast_metric.compute_metrics(fast_metric.results)  # cached gt: same id mapping
    assert again == fast


# ---------------------------------------------------------------------------
# fast results conversion (numpy, from memory; the json written only when asked)
def test_bbox_results_equal_mmdet_results2json(tmp_path):
    """The same dicts, in the same order, with the same float64 values as mmdet's json file."""
    from mmdet.evaluation.metrics import CocoMetric

    from bombo.evaluation.fast_coco_metric import bbox_results
    gts, preds = random_scene(seed=3)
    preds[2] = dict(bboxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                    scores=np.zeros(0, np.float32))  # an image without detections
    ref = CocoMetric()
    ref.cat_ids = [4, 7, 9]  # not 1..C: the label -> category map matters
    results = [dict(p, img_id=np.int64(g['img_id'])) for g, p in zip(gts, preds)]
    files = ref.results2json(results, str(tmp_path / 'ref'))
    with open(files['bbox']) as f:
        expected = json.load(f)
    got = bbox_results(results, ref.cat_ids)
    assert got == expected and len(got) == sum(len(p['labels']) for p in preds)
    assert all(type(d['image_id']) is int for d in got)
    assert {d['category_id'] for d in got} <= {4, 7, 9}


@pytest.mark.parametrize('backend', ['pycocotools', 'faster_coco_eval'])
@pytest.mark.parametrize('with_prefix', [False, True])
def test_identical_to_mmdet_with_and_without_outfile(tmp_path, backend, with_prefix):
    from mmdet.evaluation.metrics import CocoMetric
    from mmdet.evaluation.metrics import coco_metric as module
    data = samples(*random_scene(seed=4, n_img=20))
    kwargs = dict(metric=['bbox', 'proposal'], classwise=True)
    ref_prefix = str(tmp_path / 'ref') if with_prefix else None
    fast_prefix = str(tmp_path / 'fast') if with_prefix else None
    ref = run(CocoMetric(outfile_prefix=ref_prefix, **kwargs), data)
    load_before = module.load
    fast = run(FastCocoMetric(backend=backend, outfile_prefix=fast_prefix, **kwargs), data)
    assert module.load is load_before  # restored
    assert 0.05 < ref['bbox_mAP'] < 0.95 and 'AR@100' in ref
    for key, value in ref.items():
        assert fast[key] == value, key
    if with_prefix:  # the json file is written, with mmdet's exact text
        with open(f'{ref_prefix}.bbox.json') as f1, open(f'{fast_prefix}.bbox.json') as f2:
            assert f1.read() == f2.read()
        assert not [f for f in tmp_path.iterdir() if f.name.endswith('.incomplete')]
    else:
        assert list(tmp_path.iterdir()) == []


def test_format_only_writes_the_json(tmp_path):
    from mmdet.evaluation.metrics import CocoMetric
    data = samples(*random_scene(seed=5))
    assert run(CocoMetric(format_only=True, outfile_prefix=str(tmp_path / 'a')), data) == {}
    assert run(FastCocoMetric(format_only=True, outfile_prefix=str(tmp_path / 'b')), data) == {}
    assert (tmp_path / 'a.bbox.json').read_text() == (tmp_path / 'b.bbox.json').read_text()


def test_gc_state_is_restored():
    import gc
    data = samples(*random_scene(seed=6, n_img=3))
    assert gc.isenabled()
    run(FastCocoMetric(), data)
    assert gc.isenabled()
    gc.disable()
    try:
        run(FastCocoMetric(), data)
        assert not gc.isenabled()
    finally:
        gc.enable()
