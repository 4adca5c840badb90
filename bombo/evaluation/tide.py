"""TIDE error analysis (Bolya et al., ECCV 2020) as pure functions over arrays and COCO files.

The BoMBo paper (section 4.1, Table 2) reports TIDE on AP50 detection results: the AP that would be
gained by fixing each of six error types (Cls, Loc, Both, Dupe, Bkg, Miss) and the two special
errors FP (perfect precision) and FN (perfect recall). The computation itself is ``tidecv`` 1.0.1's
(``tidecv.quantify.TIDERun``: matching, error attribution, oracle fixes, 101-point AP); this module
only

* builds ``tidecv.data.Data`` objects from arrays (mmdet predictions, xyxy boxes) or from COCO
  dicts/files, without tidecv's COCO loader, which needs a ``segmentation`` field on every
  ground-truth annotation even in box mode;
* runs ``TIDERun`` directly instead of ``tidecv.TIDE``: ``TIDE()`` builds a seaborn ``Plotter``
  which calls ``sns.set()`` (changes matplotlib's global style) and creates a user data directory;
* defines the cases in which tidecv divides by zero (see :func:`compute_tide`).

All AP values are in percentage points (0-100), as in tidecv and the paper's Table 2.
"""
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

#: TIDE's main error types in tidecv's (and the paper's Table 2) order, by short name.
TIDE_MAIN_ERRORS = ('Cls', 'Loc', 'Both', 'Dupe', 'Bkg', 'Miss')
#: TIDE's special errors: FalsePos -> FP, FalseNeg -> FN (Table 2's names).
TIDE_SPECIAL_ERRORS = ('FP', 'FN')
TIDE_ALL_ERRORS = TIDE_MAIN_ERRORS + TIDE_SPECIAL_ERRORS
_SPECIAL_SHORT = {'FalsePos': 'FP', 'FalseNeg': 'FN'}

#: mAP used for an oracle-fixed set that holds no ground truth and no detection at all (tidecv
#: raises ZeroDivisionError there). Nothing is left to get wrong, so it counts as perfect.
EMPTY_FIXED_AP = 100.0


def _tidecv():
    """Import tidecv lazily (it imports pandas and seaborn through its plotting module)."""
    from tidecv import ap as tide_ap
    from tidecv import data as tide_data
    from tidecv import quantify
    return tide_data, tide_ap, quantify


def xyxy_to_xywh(bboxes: np.ndarray) -> List[List[float]]:
    """(N, 4) x1y1x2y2 boxes -> COCO [x, y, w, h] lists (w = x2 - x1, as mmdet's CocoMetric)."""
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    xywh = bboxes.copy()
    xywh[:, 2:] = bboxes[:, 2:] - bboxes[:, :2]
    return xywh.tolist()


def norm_img_id(img_id):
    """Image ids as hashable Python values: ints stay ints (numpy/torch ints converted), strings
    (VOC ids such as '2008_000123') stay strings."""
    if hasattr(img_id, 'item'):
        img_id = img_id.item()
    if isinstance(img_id, (int, str)):
        return img_id
    raise TypeError(f'image id must be an int or a str, got {type(img_id).__name__}')


def _as_array(x, dtype, shape_tail=()) -> np.ndarray:
    if x is None:
        return np.zeros((0, ) + shape_tail, dtype=dtype)
    if hasattr(x, 'tensor'):  # mmdet BaseBoxes (HorizontalBoxes)
        x = x.tensor
    if hasattr(x, 'detach'):  # torch.Tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype).reshape((-1, ) + shape_tail)


def tide_gt_from_arrays(images: Sequence[dict], class_names: Optional[Dict[int, str]] = None,
                        max_dets: int = 100, name: str = 'gt'):
    """Ground truth as a ``tidecv`` Data object from per-image arrays.

    Args:
        images (Sequence[dict]): One dict per image, every evaluated image included (also those
            without objects: TIDE only visits images registered in the ground truth). Keys:
            ``img_id`` (int or str); ``bboxes`` (N, 4) x1y1x2y2 in original-image pixels;
            ``labels`` (N,) int class ids; optional ``ignore_bboxes`` (M, 4) / ``ignore_labels`` (M,) for crowd or
            ignored objects (TIDE ignore regions, as COCO ``iscrowd=1``).
        class_names (dict, optional): class id -> name.
        max_dets (int): detections kept per image (tidecv takes it from the ground truth).
        name (str): name of the Data object.

    Returns:
        tidecv.data.Data
    """
    tide_data, _, _ = _tidecv()
    data = tide_data.Data(name, max_dets=max_dets)
    for cid, cname in (class_names or {}).items():
        data.add_class(int(cid), str(cname))
    for img in images:
        img_id = norm_img_id(img['img_id'])
        data.add_image(img_id, str(img.get('file_name', img_id)))
        boxes = xyxy_to_xywh(_as_array(img.get('bboxes'), np.float64, (4, )))
        labels = _as_array(img.get('labels'), np.int64)
        if len(boxes) != len(labels):
            raise ValueError(f'image {img_id}: {len(boxes)} gt boxes but {len(labels)} labels')
        for box, label in zip(boxes, labels.tolist()):
            data.add_ground_truth(img_id, int(label), box, None)
        ign_boxes = xyxy_to_xywh(_as_array(img.get('ignore_bboxes'), np.float64, (4, )))
        ign_labels = _as_array(img.get('ignore_labels'), np.int64)
        for box, label in zip(ign_boxes, ign_labels.tolist()):
            data.add_ignore_region(img_id, int(label), box, None)
    return data


def tide_dets_from_arrays(images: Sequence[dict], label_to_class: Optional[Sequence[int]] = None,
                          name: str = 'dets'):
    """Detections as a ``tidecv`` Data object from per-image arrays (mmdet ``pred_instances``).

    Args:
        images (Sequence[dict]): One dict per image: ``img_id``; ``bboxes`` (K, 4) x1y1x2y2 in
            original-image pixels; ``scores`` (K,); ``labels`` (K,) contiguous labels.
        label_to_class (Sequence[int], optional): label -> class id (e.g. COCO category ids);
            identity if None.
        name (str): name of the Data object (the run's name).

    Returns:
        tidecv.data.Data
    """
    tide_data, _, _ = _tidecv()
    data = tide_data.Data(name)
    for img in images:
        img_id = norm_img_id(img['img_id'])
        boxes = xyxy_to_xywh(_as_array(img.get('bboxes'), np.float64, (4, )))
        scores = _as_array(img.get('scores'), np.float64).tolist()
        labels = _as_array(img.get('labels'), np.int64).tolist()
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f'image {img_id}: {len(boxes)} boxes, {len(scores)} scores, '
                             f'{len(labels)} labels')
        for box, score, label in zip(boxes, scores, labels):
            cls = int(label_to_class[label]) if label_to_class is not None else int(label)
            data.add_detection(img_id, cls, float(score), box, None)
    return data


def tide_gt_from_coco(coco: dict, img_ids: Optional[Iterable[int]] = None, max_dets: int = 100,
                      name: str = 'gt'):
    """Ground truth Data from a COCO dict, box mode: needs ``bbox``, not ``segmentation``.

    Same content as ``tidecv.datasets.COCO`` in box mode (``iscrowd`` -> ignore region, category
    names registered), without its requirement of a segmentation field on every annotation.

    Args:
        coco (dict): COCO ground truth (``images``, ``annotations``, ``categories``).
        img_ids (Iterable[int], optional): evaluate only these images (in this order); all
            images of the file if None.
        max_dets (int): detections kept per image.
        name (str): name of the Data object.
    """
    tide_data, _, _ = _tidecv()
    data = tide_data.Data(name, max_dets=max_dets)
    images = {norm_img_id(img['id']): img for img in coco.get('images', [])}
    if img_ids is None:
        keep = list(images)
    else:
        keep = [norm_img_id(i) for i in img_ids]
        missing = [i for i in keep if i not in images]
        if missing:
            raise KeyError(f'{len(missing)} image ids are not in the ground truth, '
                           f'e.g. {missing[:5]}')
    keep_set = set(keep)
    for img_id in keep:
        data.add_image(img_id, str(images[img_id].get('file_name', img_id)))
    for cat in coco.get('categories', None) or []:
        data.add_class(int(cat['id']), str(cat.get('name', cat['id'])))
    for ann in coco.get('annotations', None) or []:
        img_id = norm_img_id(ann['image_id'])
        if img_id not in keep_set:
            continue
        box = [float(v) for v in ann['bbox']]
        if ann.get('iscrowd', 0) or ann.get('ignore', 0):
            data.add_ignore_region(img_id, int(ann['category_id']), box, None)
        else:
            data.add_ground_truth(img_id, int(ann['category_id']), box, None)
    return data


def tide_dets_from_coco(dets: Sequence[dict], name: str = 'dets'):
    """Detection Data from a COCO results list (image_id, category_id, bbox, score)."""
    tide_data, _, _ = _tidecv()
    data = tide_data.Data(name)
    for det in dets:
        data.add_detection(norm_img_id(det['image_id']), int(det['category_id']),
                           float(det['score']), [float(v) for v in det['bbox']], None)
    return data


def _safe_map(ap_data) -> float:
    """mAP of a ``ClassedAPDataObject``; :data:`EMPTY_FIXED_AP` where tidecv divides by zero."""
    aps = [obj.get_ap() for obj in ap_data.objs.values() if not obj.is_empty()]
    return sum(aps) / len(aps) if aps else EMPTY_FIXED_AP


def empty_tide_result(pos_thr: float = 0.5, bg_thr: float = 0.1) -> dict:
    """The result for an evaluation with no ground truth and no detection: every number 0."""
    result = OrderedDict(AP=0.0)
    result.update((k, 0.0) for k in TIDE_ALL_ERRORS)
    result.update(counts={k: 0 for k in TIDE_ALL_ERRORS}, num_images=0, num_gt=0, num_dets=0,
                  pos_thr=float(pos_thr), bg_thr=float(bg_thr), empty=True)
    return result


def compute_tide(gt, dets, pos_thr: float = 0.5, bg_thr: float = 0.1, mode: str = 'bbox') -> dict:
    """TIDE summary of detections against ground truth (tidecv Data objects).

    Numbers are those of ``tidecv.TIDE().evaluate(gt, dets, pos_threshold=pos_thr,
    background_threshold=bg_thr); get_all_errors()``: main errors are fixed one at a time against
    the original AP and clipped at 0 (tidecv's rule); FP/FN are not clipped. Cases where tidecv
    raises ZeroDivisionError are defined instead:

    * no ground truth and no detection on the evaluated images: :func:`empty_tide_result`;
    * an oracle fix that leaves no ground truth and no detection (e.g. fixing Miss with zero
      detections, or Bkg with zero ground truth): the fixed mAP is :data:`EMPTY_FIXED_AP` (100),
      so the error gets the whole AP gap.

    Args:
        gt (tidecv.data.Data): ground truth; its images define the evaluated set, its
            ``max_dets`` the number of detections kept per image.
        dets (tidecv.data.Data): detections (those on images outside ``gt`` are not counted).
        pos_thr (float): IoU for a true positive (0.5 -> AP50, as the paper).
        bg_thr (float): IoU under which a false positive is background.
        mode (str): 'bbox' (tidecv's 'mask' needs masks in the Data objects).

    Returns:
        dict: ``AP`` (AP at pos_thr, points), ``Cls Loc Both Dupe Bkg Miss FP FN`` (dAP, points),
        ``counts`` (number of errors of each type; FP = unmatched detections, FN = unmatched gt),
        ``num_images``, ``num_gt``, ``num_dets``, ``pos_thr``, ``bg_thr``, ``empty``.
    """
    _, tide_ap, quantify = _tidecv()

    class _SafeClassedAP(tide_ap.ClassedAPDataObject):
        def get_mAP(self) -> float:
            aps = [x.get_ap() for x in self.objs.values() if not x.is_empty()]
            return sum(aps) / len(aps) if aps else 0.0

    class _SafeTIDERun(quantify.TIDERun):
        def _run(self):
            self.ap_data = _SafeClassedAP()
            super()._run()

    if mode not in (quantify.TIDE.BOX, quantify.TIDE.MASK):
        raise ValueError(f"mode must be 'bbox' or 'mask', got {mode!r}")
    image_ids = list(gt.images)
    num_gt = sum(1 for a in gt.annotations if not a['ignore'])
    num_dets = sum(len(dets.images[i]['anns']) for i in image_ids if i in dets.images)
    if num_gt == 0 and num_dets == 0:
        result = empty_tide_result(pos_thr, bg_thr)
        result['num_images'] = len(image_ids)
        return result

    run = _SafeTIDERun(gt, dets, pos_thr, bg_thr, mode, gt.max_dets, True)
    if not any(not obj.is_empty() for obj in run.ap_data.objs.values()):
        # every detection fell in an ignore region and there is no ground truth
        result = empty_tide_result(pos_thr, bg_thr)
        result.update(num_images=len(image_ids), num_dets=num_dets)
        return result
    base_ap = run.ap

    result = OrderedDict(AP=float(base_ap))
    # main errors: tidecv's TIDERun.fix_main_errors(progressive=False) with a safe mAP
    for error in quantify.TIDE._error_types:
        fixed = run.fix_errors(lambda err, e=error: isinstance(err, e), ap_data=run.ap_data)
        result[error.short_name] = float(max(_safe_map(fixed) - base_ap, 0))
    # special errors: tidecv's TIDERun.fix_special_errors with a safe mAP
    fp_fixed = run.fix_errors(transform=quantify.FalsePositiveError.fix)
    fn_fixed = run.fix_errors(false_neg_dict=run.false_negatives)
    result['FP'] = float(_safe_map(fp_fixed) - base_ap)
    result['FN'] = float(_safe_map(fn_fixed) - base_ap)

    counts = {err.short_name: int(n) for err, n in run.count_errors().items()}
    counts['FP'] = int(sum(1 for obj in run.ap_data.objs.values()
                           for (_, correct, _) in obj.data_points.values() if not correct))
    counts['FN'] = int(sum(len(v) for v in run.false_negatives.values()))
    result.update(counts=counts, num_images=len(image_ids), num_gt=int(num_gt),
                  num_dets=int(num_dets), pos_thr=float(pos_thr), bg_thr=float(bg_thr), empty=False)
    return result


def _load_json(path_or_obj):
    if isinstance(path_or_obj, (str, os.PathLike)):
        with open(path_or_obj) as f:
            return json.load(f)
    return path_or_obj


def tide_from_coco_files(gt_json: Union[str, dict], det_json: Union[str, list],
                         out_dir: Optional[str] = None, pos_thr: float = 0.5, bg_thr: float = 0.1,
                         name: Optional[str] = None, plot: bool = True,
                         img_ids: Optional[Iterable[int]] = None, max_dets: int = 100) -> dict:
    """TIDE for COCO files on disk (e.g. mmdet ``CocoMetric(outfile_prefix=...)`` output).

    Args:
        gt_json (str | dict): COCO ground truth file (or its loaded dict). ``segmentation`` is not
            needed.
        det_json (str | list): COCO results file (``*.bbox.json``) or its loaded list.
        out_dir (str, optional): if given, ``tide.json`` (the returned dict) and, if ``plot``,
            ``tide_summary.png`` are written there.
        pos_thr (float): IoU threshold of a true positive (0.5: AP50 as in the paper).
        bg_thr (float): background IoU threshold.
        name (str, optional): run name for the plot title (default: results file name).
        plot (bool): write the summary PNG when ``out_dir`` is given.
        img_ids (Iterable[int], optional): evaluate only these images.
        max_dets (int): detections kept per image.

    Returns:
        dict: see :func:`compute_tide`, plus ``name`` and, when written, ``json_file`` and
        ``plot_file``.
    """
    if name is None:
        name = (osp.splitext(osp.basename(det_json))[0]
                if isinstance(det_json, (str, os.PathLike)) else 'dets')
    gt = tide_gt_from_coco(_load_json(gt_json), img_ids=img_ids, max_dets=max_dets)
    dets = tide_dets_from_coco(_load_json(det_json), name=name)
    result = compute_tide(gt, dets, pos_thr=pos_thr, bg_thr=bg_thr)
    result['name'] = name
    if out_dir is not None:
        write_tide_outputs(result, out_dir, plot=plot, title=name)
    return result


def write_tide_outputs(result: dict, out_dir: str, plot: bool = True, title: Optional[str] = None,
                       stem: str = 'tide') -> dict:
    """Write ``<stem>.json`` and (if ``plot``) ``<stem>_summary.png`` into ``out_dir``.

    Adds ``json_file`` / ``plot_file`` to ``result`` and returns it.
    """
    os.makedirs(out_dir, exist_ok=True)
    if plot:
        from .plots import plot_tide_summary
        result['plot_file'] = plot_tide_summary(
            result, osp.join(out_dir, f'{stem}_summary.png'), title=title)
    json_file = osp.join(out_dir, f'{stem}.json')
    result['json_file'] = json_file
    with open(json_file, 'w') as f:
        json.dump(result, f, indent=2)
    return result


def format_tide_table(results: Union[dict, Dict[str, dict]], fmt: str = 'plain',
                      digits: int = 2) -> str:
    """The TIDE table: one row per run, columns AP, Cls Loc Both Dupe Bkg Miss, FP FN.

    Args:
        results (dict): one result of :func:`compute_tide` or ``{run_name: result}`` (rows in
            the paper's Table 2 layout).
        fmt (str): 'plain', 'md' or 'csv'.
        digits (int): decimals.
    """
    from .tables import format_table
    if 'Cls' in results:  # a single result
        results = {results.get('name', 'run'): results}
    thr = {round(100 * r.get('pos_thr', 0.5)) for r in results.values()}
    ap_col = f'AP{thr.pop()}' if len(thr) == 1 else 'AP'
    headers = ['run', ap_col] + list(TIDE_ALL_ERRORS)
    rows = [[run] + [r.get('AP', float('nan'))] + [r.get(k, float('nan')) for k in TIDE_ALL_ERRORS]
            for run, r in results.items()]
    return format_table(headers, rows, fmt=fmt, digits=digits)


def tide_result_from_metrics(metrics: Dict[str, float], prefix: str = 'tide') -> dict:
    """A TIDE result (for :func:`format_tide_table` / ``plot_tide_summary``) from evaluator
    outputs such as ``{'tide/AP50': .., 'tide/Cls': .., ...}`` or the same keys unprefixed.

    Raises ``KeyError`` if no TIDE error is found.
    """
    result = OrderedDict()
    for key, value in metrics.items():
        head, _, name = key.rpartition('/')
        if head not in ('', prefix):
            continue
        if name in TIDE_ALL_ERRORS:
            result[name] = float(value)
        elif name.startswith('AP') and name[2:].isdigit():
            result['AP'] = float(value)
            result['pos_thr'] = int(name[2:]) / 100
    if not any(k in result for k in TIDE_ALL_ERRORS):
        raise KeyError(f'no TIDE values (prefix {prefix!r}) in {sorted(metrics)}')
    return result
