"""TIDE: injected errors land in their own column; metric path == tidecv on json files."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from bombo.evaluation.tide import (EMPTY_FIXED_AP, TIDE_ALL_ERRORS, TIDE_MAIN_ERRORS,
                                   compute_tide, format_tide_table, tide_dets_from_arrays,
                                   tide_from_coco_files, tide_gt_from_arrays)

GT_BOX = [20., 20., 60., 60.]      # every image: one 40x40 object
SHIFTED = [40., 20., 80., 60.]     # IoU 1/3 with GT_BOX (in [0.1, 0.5]: a localisation error)
NEAR = [21., 21., 61., 61.]        # IoU ~0.90 with GT_BOX
FAR = [70., 70., 95., 95.]         # IoU 0 with GT_BOX
N_IMG, N_CLS = 12, 3               # image i holds one object of class i % 3


def base_scene():
    """Perfect detections; scores decrease with the image index (so every order is fixed)."""
    gts = [dict(img_id=i, bboxes=[GT_BOX], labels=[i % N_CLS]) for i in range(N_IMG)]
    dets = [dict(img_id=i, bboxes=[GT_BOX], scores=[0.9 - 0.01 * i], labels=[i % N_CLS])
            for i in range(N_IMG)]
    return gts, dets


def add_det(dets, img, box, score, label):
    d = dets[img]
    d['bboxes'] = list(d['bboxes']) + [box]
    d['scores'] = list(d['scores']) + [score]
    d['labels'] = list(d['labels']) + [label]


def inject(error):
    """One error of the given type on image 0 (class 0)."""
    gts, dets = base_scene()
    if error == 'Cls':      # right box, wrong class
        dets[0]['labels'] = [1]
    elif error == 'Loc':    # right class, box at IoU 1/3
        dets[0]['bboxes'] = [SHIFTED]
    elif error == 'Both':   # extra detection: wrong class and IoU 1/3
        add_det(dets, 0, SHIFTED, 0.95, 1)
    elif error == 'Dupe':   # extra detection of an already detected object, scored between TPs
        add_det(dets, 0, NEAR, 0.85, 0)
    elif error == 'Bkg':    # extra detection on background
        add_det(dets, 0, FAR, 0.95, 0)
    elif error == 'Miss':   # object not detected at all
        dets[0] = dict(img_id=0, bboxes=np.zeros((0, 4)), scores=[], labels=[])
    return gts, dets


def ap101(points, n_gt):
    """Independent COCO 101-point interpolated AP (points) of [(score, is_tp)] with n_gt gt."""
    if n_gt == 0:
        return 0.0
    points = sorted(points, key=lambda p: -p[0])
    tp = np.cumsum([p[1] for p in points])
    fp = np.cumsum([not p[1] for p in points])
    rec = tp / n_gt
    prec = tp / np.maximum(tp + fp, 1)
    for i in range(len(prec) - 1, 0, -1):
        prec[i - 1] = max(prec[i - 1], prec[i])
    total = 0.0
    for r in np.linspace(0, 1, 101):
        idx = np.flatnonzero(rec >= r - 1e-12)
        total += prec[idx[0]] if idx.size else 0.0
    return 100 * total / 101


def class_points(c, extra=(), drop_img0=False):
    """(score, tp) list of class c in the base scene, image 0's TP optionally dropped."""
    pts = [(0.9 - 0.01 * i, True) for i in range(N_IMG) if i % N_CLS == c
           and not (drop_img0 and i == 0)]
    return pts + list(extra)


def expected_base_ap(error):
    """Hand-built PR lists of the injected scene -> its mAP (every fix gives back AP 100)."""
    n = N_IMG // N_CLS
    if error == 'Cls':
        aps = [ap101(class_points(0, drop_img0=True), n),
               ap101(class_points(1, [(0.9, False)]), n), 100.0]
    elif error == 'Loc':
        aps = [ap101(class_points(0, [(0.9, False)], drop_img0=True), n), 100.0, 100.0]
    elif error == 'Both':
        aps = [100.0, ap101(class_points(1, [(0.95, False)]), n), 100.0]
    elif error == 'Dupe':
        aps = [ap101(class_points(0, [(0.85, False)]), n), 100.0, 100.0]
    elif error == 'Bkg':
        aps = [ap101(class_points(0, [(0.95, False)]), n), 100.0, 100.0]
    elif error == 'Miss':
        aps = [ap101(class_points(0, drop_img0=True), n), 100.0, 100.0]
    return float(np.mean(aps))


def run_arrays(gts, dets, **kw):
    return compute_tide(tide_gt_from_arrays(gts), tide_dets_from_arrays(dets), **kw)


def test_perfect_detections_have_no_error():
    res = run_arrays(*base_scene())
    assert res['AP'] == pytest.approx(100.0)
    assert all(res[k] == pytest.approx(0.0, abs=1e-9) for k in TIDE_ALL_ERRORS)


@pytest.mark.parametrize('error', TIDE_MAIN_ERRORS)
def test_injected_error_shows_in_its_own_column(error):
    res = run_arrays(*inject(error))
    base = expected_base_ap(error)
    assert res['AP'] == pytest.approx(base, abs=1e-9)
    # the injected type takes the whole gap back to AP 100 (one error, fixed -> perfect)
    assert res[error] == pytest.approx(100.0 - base, abs=1e-9)
    assert 1.0 < res[error] < 30.0  # order of magnitude: one error of 12 objects
    assert res['counts'][error] == 1
    for other in TIDE_MAIN_ERRORS:
        if other != error:
            assert res[other] == pytest.approx(0.0, abs=1e-9), other
            assert res['counts'][other] == 0, other
    # special errors: extra detections only hurt precision; a missed object only recall
    if error in ('Both', 'Dupe', 'Bkg'):
        assert res['FP'] > 1.0 and res['FN'] == pytest.approx(0.0, abs=1e-9)
    elif error == 'Miss':
        assert res['FN'] > 1.0 and res['FP'] == pytest.approx(0.0, abs=1e-9)
    else:  # Cls / Loc: one FP and one FN
        assert res['FP'] > 1.0 and res['FN'] > 1.0


# ----------------------------------------------------------------- reference (tidecv) equality
def mixed_scene():
    """Every error type at once, plus an image without detections and a class absent from
    the detections (class 3 has ground truth on image 12 only and is never predicted)."""
    gts, dets = base_scene()
    dets[0]['labels'] = [1]                      # Cls
    dets[1]['bboxes'] = [SHIFTED]                # Loc
    add_det(dets, 2, SHIFTED, 0.95, 0)           # Both (class 0 on a class-2 object)
    add_det(dets, 3, NEAR, 0.85, 0)              # Dupe
    add_det(dets, 4, FAR, 0.97, 1)               # Bkg
    dets[5] = dict(img_id=5, bboxes=np.zeros((0, 4)), scores=[], labels=[])  # Miss, no dets
    gts.append(dict(img_id=12, bboxes=[GT_BOX, FAR], labels=[3, 0]))
    dets.append(dict(img_id=12, bboxes=[[70., 70., 94., 95.]], scores=[0.5], labels=[0]))
    gts.append(dict(img_id=13, bboxes=np.zeros((0, 4)), labels=[]))  # image without objects
    dets.append(dict(img_id=13, bboxes=[FAR], scores=[0.3], labels=[2]))
    return gts, dets


def write_coco(gts, dets, tmp_path, cat_offset=1):
    """COCO gt (with the box polygon as segmentation, which tidecv's loader needs) + results."""
    images, anns = [], []
    for g in gts:
        images.append(dict(id=g['img_id'], width=100, height=100, file_name=f'{g["img_id"]}.jpg'))
        for box, label in zip(np.asarray(g['bboxes']).reshape(-1, 4).tolist(), g['labels']):
            x1, y1, x2, y2 = box
            anns.append(dict(id=len(anns) + 1, image_id=g['img_id'], category_id=label + cat_offset,
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                             iscrowd=0, segmentation=[[x1, y1, x2, y1, x2, y2, x1, y2]]))
    cats = [dict(id=c + cat_offset, name=f'c{c}') for c in range(4)]
    results = []
    for d in dets:
        boxes = np.asarray(d['bboxes'], dtype=np.float32).reshape(-1, 4)
        for box, score, label in zip(boxes.tolist(), d['scores'], d['labels']):
            results.append(dict(image_id=d['img_id'], category_id=int(label) + cat_offset,
                                bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                score=float(np.float32(score))))
    gt_file, det_file = str(tmp_path / 'gt.json'), str(tmp_path / 'res.bbox.json')
    with open(gt_file, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    with open(det_file, 'w') as f:
        json.dump(results, f)
    return gt_file, det_file


def reference_tide(gt_file, det_file, pos_thr=0.5):
    """tidecv itself, its own COCO loaders, as documented in its README."""
    import matplotlib
    from tidecv import TIDE, datasets
    with matplotlib.rc_context():  # TIDE() calls seaborn.set(); keep the global style
        tide = TIDE(pos_threshold=pos_thr)
        run = tide.evaluate(datasets.COCO(gt_file), datasets.COCOResult(det_file), mode=TIDE.BOX)
        errors = tide.get_all_errors()
    name = list(errors['main'])[0]
    out = dict(errors['main'][name])
    out.update(FP=errors['special'][name]['FalsePos'], FN=errors['special'][name]['FalseNeg'])
    out['AP'] = run.ap
    return out


def data_samples(gts, dets, with_instances=False):
    """Data samples as mmengine's Evaluator hands them to metrics (DetDataSample.to_dict())."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.structures import InstanceData
    out = []
    for g, d in zip(gts, dets):
        meta = dict(img_id=g['img_id'], ori_shape=(100, 100), img_shape=(200, 200),
                    scale_factor=(2.0, 2.0))
        if with_instances:
            meta['instances'] = [dict(bbox=list(b), bbox_label=int(l), ignore_flag=0)
                                 for b, l in zip(np.asarray(g['bboxes']).reshape(-1, 4).tolist(),
                                                 g['labels'])]
        ds = DetDataSample(metainfo=meta)
        if not with_instances:
            gi = InstanceData()
            gi.bboxes = HorizontalBoxes(torch.tensor(np.asarray(g['bboxes']).reshape(-1, 4),
                                                     dtype=torch.float32))
            gi.labels = torch.tensor(g['labels'], dtype=torch.long)
            ds.gt_instances = gi
        pi = InstanceData()
        pi.bboxes = torch.tensor(np.asarray(d['bboxes'], dtype=np.float32).reshape(-1, 4))
        pi.scores = torch.tensor(np.asarray(d['scores'], dtype=np.float32))
        pi.labels = torch.tensor(np.asarray(d['labels'], dtype=np.int64))
        ds.pred_instances = pi
        out.append(ds)
    return out


def evaluate_metric(samples, tmp_path, **kw):
    from mmengine.evaluator import Evaluator
    from bombo.evaluation.tide_metric import TIDEMetric
    metric = TIDEMetric(out_dir=str(tmp_path / 'tide_out'), **kw)
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = dict(classes=('c0', 'c1', 'c2', 'c3'))
    for i in range(0, len(samples), 4):  # batches of 4
        evaluator.process(data_samples=samples[i:i + 4])
    return evaluator.evaluate(len(samples)), metric


def assert_same(ours, ref, keys=('AP', ) + TIDE_ALL_ERRORS):
    for k in keys:
        assert ours[k] == pytest.approx(ref[k], abs=1e-4), k


@pytest.mark.parametrize('with_instances', [False, True])
def test_metric_equals_tidecv_on_json(tmp_path, with_instances):
    gts, dets = mixed_scene()
    gt_file, det_file = write_coco(gts, dets, tmp_path)
    ref = reference_tide(gt_file, det_file)
    assert all(ref[k] > 0 for k in TIDE_ALL_ERRORS)  # every column is exercised
    metrics, metric = evaluate_metric(data_samples(gts, dets, with_instances), tmp_path)
    ours = {k.split('/')[1]: v for k, v in metrics.items()}
    ours['AP'] = ours.pop('AP50')
    assert_same(ours, ref)
    assert set(metrics) == {'tide/AP50'} | {f'tide/{k}' for k in TIDE_ALL_ERRORS}
    # unrounded numbers are the reference's to float precision
    for k in TIDE_ALL_ERRORS:
        assert metric.last_result[k] == pytest.approx(ref[k], abs=1e-9)
    assert osp.isfile(tmp_path / 'tide_out' / 'tide.json')
    assert osp.getsize(tmp_path / 'tide_out' / 'tide_summary.png') > 1000


def test_metric_with_ann_file_and_files_tool_equal_tidecv(tmp_path):
    gts, dets = mixed_scene()
    gt_file, det_file = write_coco(gts, dets, tmp_path, cat_offset=5)  # category ids 5..8
    ref = reference_tide(gt_file, det_file)
    metrics, metric = evaluate_metric(data_samples(gts, dets), tmp_path, ann_file=gt_file)
    assert_same(metric.last_result, ref, keys=('AP', ) + TIDE_ALL_ERRORS)
    files = tide_from_coco_files(gt_file, det_file, out_dir=str(tmp_path / 'files'))
    for k in ('AP', ) + TIDE_ALL_ERRORS:
        assert files[k] == pytest.approx(ref[k], abs=1e-9), k
    assert osp.isfile(files['plot_file']) and osp.isfile(files['json_file'])
    table = format_tide_table(files)
    assert 'AP50' in table and 'Dupe' in table and f'{files["Miss"]:.2f}' in table


def test_ann_file_without_segmentation(tmp_path):
    gts, dets = mixed_scene()
    gt_file, det_file = write_coco(gts, dets, tmp_path)
    ref = tide_from_coco_files(gt_file, det_file)
    coco = json.load(open(gt_file))
    for ann in coco['annotations']:
        del ann['segmentation']
    res = tide_from_coco_files(coco, det_file)  # tidecv's own loader raises KeyError here
    assert_same(res, ref)


def test_pos_thr_changes_the_result(tmp_path):
    gts, dets = mixed_scene()
    gt_file, det_file = write_coco(gts, dets, tmp_path)
    ours = tide_from_coco_files(gt_file, det_file, pos_thr=0.3)
    assert_same(ours, reference_tide(gt_file, det_file, pos_thr=0.3))
    # at IoU 0.3 the shifted box (IoU 1/3) is a true positive: no Loc error left
    assert ours['Loc'] == 0.0 and tide_from_coco_files(gt_file, det_file)['Loc'] > 0


# ----------------------------------------------------------------- edge cases
def test_no_detections_at_all():
    gts, dets = base_scene()
    dets = [dict(img_id=d['img_id']) for d in dets]
    res = run_arrays(gts, dets)  # tidecv raises ZeroDivisionError here
    assert res['AP'] == 0.0
    assert res['Miss'] == EMPTY_FIXED_AP and res['FN'] == EMPTY_FIXED_AP
    assert all(res[k] == 0.0 for k in ('Cls', 'Loc', 'Both', 'Dupe', 'Bkg', 'FP'))
    assert res['counts']['Miss'] == N_IMG and res['num_dets'] == 0


def test_no_ground_truth_only_background_detections():
    gts = [dict(img_id=0, bboxes=np.zeros((0, 4)), labels=[])]
    dets = [dict(img_id=0, bboxes=[FAR], scores=[0.5], labels=[1])]
    res = run_arrays(gts, dets)
    assert res['AP'] == 0.0 and res['Bkg'] == EMPTY_FIXED_AP and res['counts']['Bkg'] == 1


def test_nothing_at_all(tmp_path):
    res = run_arrays([dict(img_id=0)], [dict(img_id=0)])
    assert res['empty'] and res['AP'] == 0.0 and all(res[k] == 0.0 for k in TIDE_ALL_ERRORS)
    metrics, _ = evaluate_metric(data_samples([dict(img_id=0, bboxes=np.zeros((0, 4)), labels=[])],
                                              [dict(img_id=0, bboxes=np.zeros((0, 4)), scores=[],
                                                    labels=[])]), tmp_path)
    assert metrics['tide/AP50'] == 0.0 and metrics['tide/Miss'] == 0.0


def test_detections_outside_the_ground_truth_images_are_not_counted():
    gts, dets = base_scene()
    ref = run_arrays(gts, dets)
    dets.append(dict(img_id=99, bboxes=[FAR], scores=[0.99], labels=[0]))
    res = run_arrays(gts, dets)
    assert res['num_dets'] == N_IMG and res['AP'] == ref['AP'] and res['Bkg'] == 0.0


def test_ignored_instances_are_ignore_regions():
    gts, dets = base_scene()
    add_det(dets, 0, FAR, 0.95, 0)  # a Bkg error ...
    gts[0]['ignore_bboxes'], gts[0]['ignore_labels'] = [FAR], [0]  # ... inside a crowd region
    res = run_arrays(gts, dets)
    assert res['AP'] == pytest.approx(100.0) and res['FP'] == pytest.approx(0.0, abs=1e-9)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match='labels'):
        tide_gt_from_arrays([dict(img_id=0, bboxes=[GT_BOX, GT_BOX], labels=[0])])
    with pytest.raises(ValueError, match='scores'):
        tide_dets_from_arrays([dict(img_id=0, bboxes=[GT_BOX], scores=[], labels=[0])])


def test_voc_string_image_ids(tmp_path):
    """VOC-layout datasets give ids like '000012'; a COCO ann_file of the same images says 12."""
    gts, dets = mixed_scene()
    gt_file, det_file = write_coco(gts, dets, tmp_path)
    ref = reference_tide(gt_file, det_file)
    samples = data_samples(gts, dets)
    for s in samples:
        s.set_metainfo(dict(img_id=f'{s.img_id:06d}'))
    _, m1 = evaluate_metric(samples, tmp_path)                     # gt from the samples
    _, m2 = evaluate_metric(samples, tmp_path, ann_file=gt_file)   # gt from the json
    assert_same(m1.last_result, ref)
    assert_same(m2.last_result, ref)
    samples[0].set_metainfo(dict(img_id='abc'))
    with pytest.raises(KeyError, match="'abc' is not in ann_file"):
        evaluate_metric(samples, tmp_path, ann_file=gt_file)
