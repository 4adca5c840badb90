"""TIDE as an mmengine metric, for ``val_evaluator`` / ``test_evaluator`` beside CocoMetric."""
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger

from mmdet.registry import METRICS
from .tide import (TIDE_ALL_ERRORS, compute_tide, format_tide_table, norm_img_id,
                   tide_dets_from_arrays, tide_gt_from_arrays, tide_gt_from_coco,
                   write_tide_outputs)


def _to_numpy(x, dtype, tail=()) -> np.ndarray:
    if x is None:
        return np.zeros((0, ) + tail, dtype=dtype)
    if hasattr(x, 'tensor'):  # mmdet HorizontalBoxes
        x = x.tensor
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype).reshape((-1, ) + tail)


@METRICS.register_module()
class TIDEMetric(BaseMetric):
    """TIDE error analysis (Bolya et al., ECCV 2020) of box detections, as in BoMBo's Table 2.

    Reports the AP at ``pos_thr`` (AP50 by default, the paper's setting) and the dAP of the six
    main TIDE errors (Cls, Loc, Both, Dupe, Bkg, Miss) and of FP / FN, in percentage points,
    computed by tidecv (see :func:`bombo.evaluation.tide.compute_tide`). Metric names are
    ``tide/AP50``, ``tide/Cls``, ... ``tide/FN``.

    Ground truth comes either from ``ann_file`` (a COCO json; ``segmentation`` not needed; only
    the images seen during evaluation are evaluated; labels are mapped to category ids by class
    name) or, without ``ann_file``, from the data samples: ``gt_instances`` (+
    ``ignored_instances``) or the ``instances`` meta key (mmdet's raw annotation list). Boxes in
    ``gt_instances`` must be in original-image pixels, i.e. the val pipeline loads annotations
    after ``Resize`` (as mmdet's test pipelines do); ``instances`` always are. Predictions
    (``pred_instances``) are in original-image pixels (``rescale=True``).

    The JSON of the result and the summary PNG go to ``out_dir`` (default: the runner's log
    directory, found through the current ``MMLogger``'s log file; nothing is written if there is
    none).

    Args:
        ann_file (str, optional): COCO ground truth; if None, ground truth from the data samples.
        pos_thr (float): IoU threshold of a true positive. Defaults to 0.5.
        bg_thr (float): IoU under which a false positive is a background error. Defaults to 0.1.
        max_dets (int): detections kept per image. Defaults to 100.
        gt_source (str): without ``ann_file``: 'auto' (``gt_instances`` if present, else
            ``instances``), 'gt_instances' or 'instances'.
        out_dir (str, optional): where to write ``tide.json`` / ``tide_summary.png``.
        plot (bool): write the PNG. Defaults to True.
        file_stem (str): file name stem. Defaults to 'tide'.
        backend_args (dict, optional): for reading ``ann_file``.
        collect_device (str): 'cpu' or 'gpu'.
        prefix (str, optional): metric name prefix. Defaults to 'tide'.
    """
    default_prefix: Optional[str] = 'tide'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 pos_thr: float = 0.5,
                 bg_thr: float = 0.1,
                 max_dets: int = 100,
                 gt_source: str = 'auto',
                 out_dir: Optional[str] = None,
                 plot: bool = True,
                 file_stem: str = 'tide',
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 < bg_thr <= pos_thr <= 1:
            raise ValueError(f'need 0 < bg_thr <= pos_thr <= 1, got {bg_thr}, {pos_thr}')
        if gt_source not in ('auto', 'gt_instances', 'instances'):
            raise ValueError(f"gt_source must be 'auto', 'gt_instances' or 'instances', "
                             f'got {gt_source!r}')
        self.pos_thr = float(pos_thr)
        self.bg_thr = float(bg_thr)
        self.max_dets = int(max_dets)
        self.gt_source = gt_source
        self.out_dir = out_dir
        self.plot = plot
        self.file_stem = file_stem
        self._coco_gt = None
        self._json_ids = None
        if ann_file is not None:
            with get_local_path(ann_file, backend_args=backend_args) as local_path:
                with open(local_path) as f:
                    self._coco_gt = json.load(f)
        self.last_result: Optional[dict] = None

    # ------------------------------------------------------------------ process
    def _parse_gt(self, data_sample: dict) -> dict:
        source = self.gt_source
        if source == 'auto':
            source = 'gt_instances' if 'gt_instances' in data_sample else 'instances'
        if source == 'gt_instances':
            if 'gt_instances' not in data_sample:
                raise KeyError('TIDEMetric: data sample has no gt_instances; give ann_file or '
                               "keep 'instances' in PackDetInputs meta_keys")
            gt = data_sample['gt_instances']
            ign = data_sample.get('ignored_instances', None) or {}
            return dict(
                gt_bboxes=_to_numpy(gt.get('bboxes'), np.float32, (4, )),
                gt_labels=_to_numpy(gt.get('labels'), np.int64),
                ign_bboxes=_to_numpy(ign.get('bboxes'), np.float32, (4, )),
                ign_labels=_to_numpy(ign.get('labels'), np.int64))
        if 'instances' not in data_sample:
            raise KeyError('TIDEMetric: data sample has neither gt_instances nor instances; '
                           'give ann_file or load annotations in the val pipeline')
        anns = data_sample['instances']
        keep = [a for a in anns if not a.get('ignore_flag', 0)]
        ign = [a for a in anns if a.get('ignore_flag', 0)]
        return dict(
            gt_bboxes=np.array([a['bbox'] for a in keep], np.float32).reshape(-1, 4),
            gt_labels=np.array([a['bbox_label'] for a in keep], np.int64),
            ign_bboxes=np.array([a['bbox'] for a in ign], np.float32).reshape(-1, 4),
            ign_labels=np.array([a['bbox_label'] for a in ign], np.int64))

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep predictions (and ground truth when there is no ``ann_file``) as numpy arrays."""
        for data_sample in data_samples:
            if 'img_id' not in data_sample:
                raise KeyError('TIDEMetric needs img_id in the data sample metainfo')
            pred = data_sample['pred_instances']
            result = dict(
                img_id=norm_img_id(data_sample['img_id']),
                bboxes=_to_numpy(pred['bboxes'], np.float32, (4, )),
                scores=_to_numpy(pred['scores'], np.float32),
                labels=_to_numpy(pred['labels'], np.int64))
            if self._coco_gt is None:
                result.update(self._parse_gt(data_sample))
            self.results.append(result)

    # ------------------------------------------------------------------ compute
    def _label_to_cat(self) -> List[int]:
        cats = self._coco_gt.get('categories', [])
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:
            return sorted(int(c['id']) for c in cats)
        name_to_id = {c['name']: int(c['id']) for c in cats}
        missing = [c for c in classes if c not in name_to_id]
        if missing:
            raise KeyError(f'TIDEMetric: classes {missing} are not categories of ann_file')
        return [name_to_id[c] for c in classes]

    def _json_img_id(self, img_id):
        """The ann_file's id of a data sample's image: the id itself, or the int of a digit
        string (VOC-layout datasets name '000800' the image a COCO json calls 800)."""
        if self._json_ids is None:
            self._json_ids = {norm_img_id(img['id']) for img in self._coco_gt.get('images', [])}
        if img_id in self._json_ids:
            return img_id
        if isinstance(img_id, str) and img_id.isdigit() and int(img_id) in self._json_ids:
            return int(img_id)
        raise KeyError(f'TIDEMetric: image id {img_id!r} is not in ann_file')

    def _out_dir(self) -> Optional[str]:
        if self.out_dir is not None:
            return self.out_dir
        log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
        return osp.dirname(log_file) if log_file else None

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """TIDE over all processed images; returns ``AP{thr}`` and the eight dAP values."""
        logger: MMLogger = MMLogger.get_current_instance()
        seen, unique = set(), []
        for r in results:
            if r['img_id'] not in seen:
                seen.add(r['img_id'])
                unique.append(r)
        if len(unique) < len(results):
            logger.warning(f'TIDEMetric: {len(results) - len(unique)} repeated img_id results '
                           'skipped (first one kept)')
        classes = (self.dataset_meta or {}).get('classes')
        if self._coco_gt is not None:
            for r in unique:
                r['img_id'] = self._json_img_id(r['img_id'])
            gt = tide_gt_from_coco(self._coco_gt, img_ids=[r['img_id'] for r in unique],
                                   max_dets=self.max_dets)
            label_to_class = self._label_to_cat()
        else:
            gt = tide_gt_from_arrays(
                [dict(img_id=r['img_id'], bboxes=r['gt_bboxes'], labels=r['gt_labels'],
                      ignore_bboxes=r['ign_bboxes'], ignore_labels=r['ign_labels'])
                 for r in unique],
                class_names=dict(enumerate(classes)) if classes else None,
                max_dets=self.max_dets)
            label_to_class = None
        dets = tide_dets_from_arrays(unique, label_to_class=label_to_class, name='tide')
        result = compute_tide(gt, dets, pos_thr=self.pos_thr, bg_thr=self.bg_thr)
        result['name'] = 'model'
        if result.get('empty'):
            logger.warning('TIDEMetric: no ground truth and no detection; all TIDE values are 0')
        logger.info('TIDE (dAP, points)\n' + format_tide_table(result, fmt='plain'))

        out_dir = self._out_dir()
        if out_dir is not None:
            write_tide_outputs(result, out_dir, plot=self.plot, title='TIDE', stem=self.file_stem)
            logger.info(f'TIDE results written to {result["json_file"]}')
        self.last_result = result

        thr = round(100 * self.pos_thr)
        metrics = OrderedDict({f'AP{thr}': round(result['AP'], 4)})
        metrics.update((k, round(result[k], 4)) for k in TIDE_ALL_ERRORS)
        return metrics
