"""mmdet's CocoMetric with a switchable COCO backend (pycocotools or faster-coco-eval) and a fast
conversion of the detections to COCO results."""
import contextlib
import gc
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Sequence

import numpy as np

from mmdet.evaluation.metrics import CocoMetric
from mmdet.evaluation.metrics import coco_metric as _coco_metric_module
from mmdet.registry import METRICS
from .tables import per_class_ap_from_precision

BACKENDS = ('pycocotools', 'faster_coco_eval')


def bbox_results(results: Sequence[dict], cat_ids: Sequence[int]) -> List[dict]:
    """The COCO bbox results of mmdet's ``results2json`` (same order, same values), built with
    numpy: ``{'image_id', 'bbox': [x, y, w, h], 'score', 'category_id'}`` per detection.

    The values are the ones mmdet's json file gives back: the float32 boxes and scores as float64,
    ``w = x2 - x1`` and ``h = y2 - y1`` computed in float64 (mmdet's ``xyxy2xywh`` on
    ``tolist()``), and a float64 survives json's ``repr`` round trip exactly.
    """
    boxes, scores, labels, image_ids = [], [], [], []
    for idx, result in enumerate(results):
        n = len(result['labels'])
        if n == 0:
            continue
        image_id = result.get('img_id', idx)
        if isinstance(image_id, np.integer):
            image_id = int(image_id)
        boxes.append(np.asarray(result['bboxes'], dtype=np.float64).reshape(n, 4))
        scores.append(np.asarray(result['scores'], dtype=np.float64).reshape(n))
        labels.append(np.asarray(result['labels'], dtype=np.int64).reshape(n))
        image_ids.extend([image_id] * n)
    if not image_ids:
        return []
    b = np.concatenate(boxes)
    xywh = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    cats = np.asarray(cat_ids, dtype=np.int64)[np.concatenate(labels)]
    return [{'image_id': i, 'bbox': bb, 'score': sc, 'category_id': c} for i, bb, sc, c in zip(
        image_ids, xywh.tolist(), np.concatenate(scores).tolist(), cats.tolist())]


def dump_json_fast(obj, path: str) -> None:
    """``json.dumps`` (the C encoder: ``json.dump`` streams through the pure-Python one) to
    ``path`` through a temporary file and a rename. Same text as mmengine's ``dump``."""
    tmp = osp.join(osp.dirname(path) or '.', f'.{osp.basename(path)}.incomplete')
    with open(tmp, 'w') as f:
        f.write(json.dumps(obj))
    os.replace(tmp, path)


@contextlib.contextmanager
def _in_memory_results(memory: Dict[str, Callable[[], list]]):
    """mmdet's ``compute_metrics`` reads the results back with ``load(result_files[metric])``:
    inside the block, a path of ``memory`` gives a fresh list made by its function (no json
    parsing, and no file needed); other paths load as before."""
    saved = _coco_metric_module.load

    def load(file, *args, **kwargs):
        if isinstance(file, str) and file in memory:
            return memory[file]()
        return saved(file, *args, **kwargs)

    _coco_metric_module.load = load
    try:
        yield
    finally:
        _coco_metric_module.load = saved


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection inside the block (restored after). Building and indexing
    500k result dicts (ours, then the COCO API's ``loadRes`` / ``createIndex``) makes the
    collector scan the whole heap again and again: 5x the time of the building itself. Nothing
    is leaked: cycles made meanwhile are collected at the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _coco_backend(backend: str, on_eval=None):
    """Swap the ``COCO`` / ``COCOeval`` names used by mmdet's coco_metric module, then restore.

    ``on_eval`` receives every COCOeval instance created inside the block (to keep its
    ``eval['precision']`` for per-class tables). Not re-entrant across threads; mmengine
    evaluates metrics one after another in one thread.
    """
    saved = (_coco_metric_module.COCO, _coco_metric_module.COCOeval)
    if backend == 'faster_coco_eval':
        from faster_coco_eval import COCO as coco_cls
        from faster_coco_eval import COCOeval_faster as eval_cls
    else:
        coco_cls, eval_cls = saved

    def make_eval(*args, **kwargs):
        if backend == 'faster_coco_eval':
            kwargs.setdefault('print_function', lambda *a, **k: None)
        coco_eval = eval_cls(*args, **kwargs)
        if on_eval is not None:
            on_eval(coco_eval)
        return coco_eval

    _coco_metric_module.COCO, _coco_metric_module.COCOeval = coco_cls, make_eval
    try:
        yield
    finally:
        _coco_metric_module.COCO, _coco_metric_module.COCOeval = saved


@METRICS.register_module()
class FastCocoMetric(CocoMetric):
    """mmdet ``CocoMetric`` whose COCO API backend is switchable.

    ``backend='faster_coco_eval'`` runs faster-coco-eval's C++ ``COCOeval_faster`` (and its
    ``COCO``) in place of pycocotools, with mmdet's own conversion, parameters and outputs
    unchanged; ``backend='pycocotools'`` is exactly mmdet's CocoMetric. Both give the same AP on
    the same results (checked in ``tests/evaluation/test_fast_coco_metric.py``; speed in
    ``benchmarks/bench_coco_eval.py``). ``use_mp_eval`` is mmdet's pycocotools multiprocess path and
    is only allowed with the pycocotools backend.

    With no detection at all, pycocotools cannot load the results and mmdet returns nothing; here
    the missing AP items are set to 0.0 (faster-coco-eval evaluates them: 0.0, or -1.0 for an
    area range without ground truth, COCO's "undefined").

    Results are converted fast (both backends): mmdet's ``results2json`` builds one dict per
    detection in a Python loop and writes it with the pure-Python json encoder, then reads it back
    (54 % of the evaluation time at COCO val scale, 500k detections). Here the bbox results are
    built with numpy (:func:`bbox_results`, the same values in the same order) and handed to the
    COCO API from memory; the ``<outfile_prefix>.bbox.json`` file is written (C json encoder, the
    same text as mmdet's) only when ``outfile_prefix`` is set. Instance-mask (``segm``) results
    keep mmdet's conversion. The cyclic garbage collector is paused during the evaluation (it
    would rescan the heap for every few hundred of the 500k result dicts).

    With ``classwise=True`` it also returns ``{metric}_{class}_AP50`` (and mmdet's
    ``{class}_precision``) and keeps ``self.per_class[metric]`` (rows of
    :func:`bombo.evaluation.tables.per_class_ap_from_precision`) and ``self.last_precision``.

    Args:
        backend (str): 'faster_coco_eval' (default) or 'pycocotools'.
        **kwargs: mmdet ``CocoMetric`` arguments.
    """

    def __init__(self, *args, backend: str = 'faster_coco_eval', **kwargs) -> None:
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        if backend == 'faster_coco_eval' and kwargs.get('use_mp_eval', False):
            raise ValueError('use_mp_eval is a pycocotools option; use one backend or the other')
        self.backend = backend
        self.last_precision: Dict[str, np.ndarray] = {}
        self.per_class: Dict[str, list] = {}
        self.ann_file_given = kwargs.get('ann_file', args[0] if args else None) is not None
        self._img_id_map: Dict = {}
        self._memory: Dict[str, Callable[[], list]] = {}
        with _coco_backend(backend):
            super().__init__(*args, **kwargs)

    def results2json(self, results: Sequence[dict], outfile_prefix: str) -> dict:
        """mmdet's ``results2json`` for boxes, fast (see the class docstring): the file is written
        only when ``outfile_prefix`` is set; ``compute_metrics`` reads the results from memory."""
        if len(results) and 'masks' in results[0]:
            return super().results2json(results, outfile_prefix)
        path = f'{outfile_prefix}.bbox.json'
        cat_ids = list(self.cat_ids)
        if self.outfile_prefix is not None:
            dump_json_fast(bbox_results(results, cat_ids), path)
        # a fresh list per read: pycocotools' loadRes adds keys to the dicts it gets
        self._memory[path] = lambda: bbox_results(results, cat_ids)
        return dict(bbox=path, proposal=path)

    def _int_image_ids(self, results: list) -> list:
        """faster-coco-eval takes integer image ids only; VOC-layout datasets give strings
        ('2008_000123'). Without ``ann_file`` mmdet builds the ground truth json from the same
        samples, so every id is mapped to a stable integer (kept across evaluations, since
        mmdet caches the converted ground truth)."""
        if all(isinstance(gt['img_id'], (int, np.integer)) for gt, _ in results):
            return results
        if self.ann_file_given:
            raise TypeError('faster_coco_eval needs integer image ids; the data samples have '
                            "string ids: use backend='pycocotools' or integer ids")
        mapped = []
        for gt, pred in results:
            new_id = self._img_id_map.setdefault(gt['img_id'], len(self._img_id_map) + 1)
            mapped.append((dict(gt, img_id=new_id), dict(pred, img_id=new_id)))
        return mapped

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if self.backend == 'faster_coco_eval':
            results = self._int_image_ids(results)
        evals = []
        self._memory.clear()
        try:
            with _coco_backend(self.backend, on_eval=evals.append), \
                    _in_memory_results(self._memory), _gc_paused():
                eval_results = super().compute_metrics(results)
        finally:
            self._memory.clear()  # do not keep the results alive
        if not self.format_only and sum(len(r[1]['labels']) for r in results) == 0:
            # pycocotools' loadRes cannot take an empty result list (mmdet then returns {}):
            # define every AP item as 0 so that best-checkpoint hooks and logs keep their keys
            items = self.metric_items or ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l']
            for metric in self.metrics:
                if metric in ('bbox', 'segm'):
                    for item in items:
                        eval_results.setdefault(f'{metric}_{item}', 0.0)
        if self.classwise:
            names = [self._coco_api.loadCats(c)[0]['name'] for c in self.cat_ids]
            for coco_eval in evals:
                # proposal evaluation runs class-agnostic (useCats = 0): no per-class AP
                if not coco_eval.params.useCats or 'precision' not in coco_eval.eval:
                    continue
                metric = coco_eval.params.iouType
                precision = np.asarray(coco_eval.eval['precision'])
                rows = per_class_ap_from_precision(
                    precision, names, iou_thrs=coco_eval.params.iouThrs)
                self.last_precision[metric] = precision
                self.per_class[metric] = rows
                for row in rows:
                    if 'AP50' in row:
                        eval_results[f'{metric}_{row["class"]}_AP50'] = round(row['AP50'], 3)
        return eval_results
