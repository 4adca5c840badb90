"""COCO bbox evaluation speed: pycocotools vs faster-coco-eval on the same results.

    python benchmarks/bench_coco_eval.py [--images 500] [--classes 20] [--dets 100] [--repeat 3]
        [--gt data/toy/annotations/val.json]

Synthetic COCO-like data by default (seeded): ``--images`` images with 1-10 objects of
``--classes`` classes, and ``--dets`` detections per image (noisy copies of the objects, wrong
classes, background boxes). With ``--gt``, the ground truth of that file is used and the
detections are made from it the same way. Both backends evaluate the same results:

1. the COCO API alone (``COCO`` + ``COCOeval``: evaluate, accumulate, summarize);
2. the whole mmdet metric: mmdet's own ``CocoMetric`` (pycocotools, its Python
   ``results2json``) vs ``FastCocoMetric(backend='pycocotools')`` (numpy conversion, results
   from memory) and ``FastCocoMetric(backend='faster_coco_eval')``, in the same process;
   ``--outfile`` sets ``outfile_prefix`` (the results json is written, C encoder).

At COCO val scale: ``--images 5000 --dets 100 --classes 80 --repeat 1``.

Prints the best-of-``--repeat`` times, the speed ratios and whether the 12 COCO stats (and the
precision arrays) are identical.
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))


def make_gt(n_img, n_cls, rng):
    images, anns = [], []
    for i in range(n_img):
        images.append(dict(id=i + 1, width=640, height=480, file_name=f'{i}.jpg'))
        for _ in range(rng.integers(1, 11)):
            w, h = rng.uniform(8, 300, 2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             category_id=int(rng.integers(n_cls)) + 1, bbox=[x, y, w, h],
                             area=w * h, iscrowd=int(rng.random() < 0.02)))
    cats = [dict(id=c + 1, name=f'class{c}') for c in range(n_cls)]
    return dict(images=images, annotations=anns, categories=cats)


def make_dets(gt, n_dets, rng):
    by_img = {}
    for a in gt['annotations']:
        by_img.setdefault(a['image_id'], []).append(a)
    cat_ids = [c['id'] for c in gt['categories']]
    dets = []
    for img in gt['images']:
        anns = by_img.get(img['id'], [])
        for k in range(n_dets):
            if anns and k < 3 * len(anns):
                a = anns[k % len(anns)]
                wh = np.asarray(a['bbox'][2:] * 2)
                noise = rng.normal(0, 0.05 * (1 + k // len(anns)), 4) * wh
                x, y, w, h = np.asarray(a['bbox']) + noise
                cat = a['category_id'] if rng.random() < 0.8 else int(rng.choice(cat_ids))
                score = rng.uniform(0.2, 1.0) / (1 + k // len(anns))
            else:
                w, h = rng.uniform(4, 0.5 * min(img['width'], img['height']), 2)
                x, y = rng.uniform(0, img['width'] - w), rng.uniform(0, img['height'] - h)
                cat = int(rng.choice(cat_ids))
                score = rng.uniform(0.0, 0.5)
            dets.append(dict(image_id=img['id'], category_id=cat, score=float(score),
                             bbox=[float(x), float(y), float(abs(w)), float(abs(h))]))
    return dets


def eval_pycocotools(gt_file, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(gt_file)
        ev = COCOeval(coco, coco.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.array(ev.stats), np.asarray(ev.eval['precision'])


def eval_faster(gt_file, dets):
    from faster_coco_eval import COCO, COCOeval_faster
    coco = COCO(gt_file)
    ev = COCOeval_faster(coco, coco.loadRes(dets), 'bbox', print_function=lambda *a: None)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.array(ev.stats), np.asarray(ev.eval['precision'])


def metric_inputs(gt, dets):
    import torch
    cat_to_label = {c['id']: i for i, c in enumerate(gt['categories'])}
    per_img = {img['id']: [] for img in gt['images']}
    for d in dets:
        per_img[d['image_id']].append(d)
    samples = []
    for img in gt['images']:
        ds = per_img[img['id']]
        boxes = np.array([d['bbox'] for d in ds], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        samples.append(dict(
            img_id=img['id'], ori_shape=(img['height'], img['width']),
            pred_instances=dict(
                bboxes=torch.from_numpy(boxes),
                scores=torch.tensor([d['score'] for d in ds], dtype=torch.float32),
                labels=torch.tensor([cat_to_label[d['category_id']] for d in ds],
                                    dtype=torch.long))))
    return samples


def _old_fast_class():
    """FastCocoMetric as it was before the fast conversion: mmdet's results2json (Python loop,
    pure-Python json encoder, read back from the file), garbage collector running."""
    from mmdet.evaluation.metrics import CocoMetric

    from bombo.evaluation import fast_coco_metric as fcm

    class OldFastCocoMetric(fcm.FastCocoMetric):
        results2json = CocoMetric.results2json

        def compute_metrics(self, results):
            paused = fcm._gc_paused
            fcm._gc_paused = contextlib.nullcontext
            try:
                return super().compute_metrics(results)
            finally:
                fcm._gc_paused = paused

    return OldFastCocoMetric


def eval_metric(backend, gt_file, classes, samples, outfile_prefix=None):
    """``backend`` 'mmdet': mmdet's own CocoMetric (pycocotools, mmdet's results2json);
    otherwise FastCocoMetric with that backend."""
    from mmdet.evaluation.metrics import CocoMetric

    from bombo.evaluation.fast_coco_metric import FastCocoMetric
    OldFastCocoMetric = _old_fast_class()
    with contextlib.redirect_stdout(io.StringIO()):
        if backend == 'mmdet':
            metric = CocoMetric(ann_file=gt_file, outfile_prefix=outfile_prefix)
        elif backend == 'old_fast':
            metric = OldFastCocoMetric(ann_file=gt_file, backend='faster_coco_eval',
                                       outfile_prefix=outfile_prefix)
        else:
            metric = FastCocoMetric(ann_file=gt_file, backend=backend,
                                    outfile_prefix=outfile_prefix)
        metric.dataset_meta = dict(classes=classes)
        metric.process({}, samples)
        return metric.compute_metrics(metric.results)


def best_time(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--images', type=int, default=500,
                        help='synthetic images (COCO val: 5000)')
    parser.add_argument('--classes', type=int, default=20, help='synthetic classes')
    parser.add_argument('--dets', type=int, default=100, help='detections per image')
    parser.add_argument('--repeat', type=int, default=3, help='best of this many runs')
    parser.add_argument('--gt', default=None, help='use this COCO ground truth instead')
    parser.add_argument('--seed', type=int, default=0, help='random seed of the data')
    parser.add_argument('--skip-api', action='store_true',
                        help='time the mmdet metrics only, not the bare COCO API')
    parser.add_argument('--skip-metric', action='store_true',
                        help='time the COCO API only, not the mmdet metrics')
    parser.add_argument('--outfile', action='store_true',
                        help='metrics with outfile_prefix set (the results json is written)')
    parser.add_argument('--tide', action='store_true',
                        help='also time TIDE (tide_from_coco_files) on the same results')
    args = parser.parse_args()

    from mmengine.logging import MMLogger
    MMLogger.get_instance('bench_coco_eval', log_level='WARNING')  # quiet mmdet's info lines
    rng = np.random.default_rng(args.seed)
    tmp = tempfile.TemporaryDirectory()
    if args.gt:
        gt_file = args.gt
        gt = json.load(open(gt_file))
    else:
        gt = make_gt(args.images, args.classes, rng)
        gt_file = os.path.join(tmp.name, 'gt.json')
        json.dump(gt, open(gt_file, 'w'))
    dets = make_dets(gt, args.dets, rng)
    print(f'data: {len(gt["images"])} images, {len(gt["annotations"])} gt, '
          f'{len(gt["categories"])} classes, {len(dets)} detections; best of {args.repeat}')

    if not args.skip_api:
        t_py, (s_py, p_py) = best_time(lambda: eval_pycocotools(gt_file, dets), args.repeat)
        t_fa, (s_fa, p_fa) = best_time(lambda: eval_faster(gt_file, dets), args.repeat)
        print(f'COCO API   pycocotools {t_py:7.3f} s | faster-coco-eval {t_fa:7.3f} s | '
              f'speed-up x{t_py / t_fa:.2f}')
        print(f'  stats identical: {np.array_equal(s_py, s_fa)} (max |diff| '
              f'{np.abs(s_py - s_fa).max():.1e}); precision arrays: max |diff| '
              f'{np.abs(p_py - p_fa).max():.1e}')
        print(f'  AP {s_py[0]:.4f}  AP50 {s_py[1]:.4f}  AP75 {s_py[2]:.4f}')

    if not args.skip_metric:
        classes = tuple(c['name'] for c in gt['categories'])
        samples = metric_inputs(gt, dets)
        prefix = osp.join(tmp.name, 'results') if args.outfile else None
        runs = {}
        names = ('mmdet', 'pycocotools', 'faster_coco_eval', 'old_fast')
        for name in names:  # warm-up (imports, first calls), untimed
            eval_metric(name, gt_file, classes, samples[:20], prefix)
        for name in names:
            runs[name] = best_time(
                lambda: eval_metric(name, gt_file, classes, samples, prefix), args.repeat)
        (t_ref, r_ref), (t_mp, r_mp), (t_mf, r_mf), (t_old, r_old) = runs.values()
        where = 'json written' if args.outfile else 'no outfile_prefix'
        print(f'mmdet CocoMetric (pycocotools) {t_ref:7.3f} s | FastCocoMetric pycocotools '
              f'{t_mp:7.3f} s (x{t_ref / t_mp:.2f}) | FastCocoMetric faster-coco-eval '
              f'{t_mf:7.3f} s | speed-up x{t_ref / t_mf:.2f} ({where})')
        print(f'  metric outputs identical to CocoMetric: pycocotools {r_mp == r_ref}, '
              f'faster-coco-eval {r_mf == r_ref}  ({r_mf})')
        print(f'  FastCocoMetric faster-coco-eval before the fast conversion (mmdet results2json, '
              f'gc on) {t_old:7.3f} s: x{t_ref / t_old:.2f} CocoMetric; the fast conversion '
              f'x{t_old / t_mf:.2f}; identical: {r_old == r_ref}')
    if args.tide:
        from bombo.evaluation.tide import tide_from_coco_files
        t_td, res = best_time(lambda: tide_from_coco_files(gt, dets), args.repeat)
        print(f'TIDE (tidecv) {t_td:7.3f} s = x{t_td / t_py:.2f} the pycocotools COCO API time; '
              f'AP50 {res["AP"]:.2f}')
    tmp.cleanup()


if __name__ == '__main__':
    main()
