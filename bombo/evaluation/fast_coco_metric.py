"""mmdet's CocoMetric with a switchable COCO backend (pycocotools or faster-coco-eval)."""
import contextlib
from typing import Dict

import numpy as np

from mmdet.evaluation.metrics import CocoMetric
from mmdet.evaluation.metrics import coco_metric as _coco_metric_module
from mmdet.registry import METRICS
from .tables import per_class_ap_from_precision

BACKENDS = ('pycocotools', 'faster_coco_eval')


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
        with _coco_backend(backend):
            super().__init__(*args, **kwargs)

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
        with _coco_backend(self.backend, on_eval=evals.append):
            eval_results = super().compute_metrics(results)
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
