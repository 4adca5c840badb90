"""Tables for evaluation results: per-class AP (COCO), per-class IoU (semantic), runs side by side.

Pure functions: they take arrays, dicts of metric outputs or TIDE results and return strings
(markdown, CSV or plain aligned text) or rows. The per-class AP comes from the COCO evaluation's
``precision`` array (shape [T, R, K, A, M]: IoU thresholds, 101 recall points, classes, area
ranges, max-dets), averaged as detectron2/mmdet do (entries of -1 are dropped; a class with no
ground truth gets NaN).
"""
import csv
import io
import math
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np


def _fmt_cell(value, digits: int) -> str:
    if value is None:
        return ''
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return 'nan' if math.isnan(value) else f'{value:.{digits}f}'
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence], fmt: str = 'md',
                 digits: int = 2) -> str:
    """Format rows as 'md' (GitHub markdown), 'csv' or 'plain' (aligned columns).

    Args:
        headers (Sequence[str]): column names.
        rows (Sequence[Sequence]): cells (floats get ``digits`` decimals, NaN -> 'nan',
            None -> empty).
        fmt (str): 'md', 'csv' or 'plain'.
        digits (int): decimals for floats.
    """
    cells = [[_fmt_cell(c, digits) for c in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f'row {row} has {len(row)} cells for {len(headers)} headers')
    headers = [str(h) for h in headers]
    if fmt == 'csv':
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator='\n')
        writer.writerow(headers)
        writer.writerows(cells)
        return buf.getvalue().rstrip('\n')
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if fmt == 'md':
        line = lambda r: '| ' + ' | '.join(c.ljust(w) for c, w in zip(r, widths)) + ' |'  # noqa
        sep = '|' + '|'.join('-' * (w + 1) + ':' for w in widths) + '|'
        return '\n'.join([line(headers), sep] + [line(r) for r in cells])
    if fmt == 'plain':
        line = lambda r: '  '.join(c.rjust(w) for c, w in zip(r, widths))  # noqa
        rule = '-' * len(line(headers))
        return '\n'.join([line(headers), rule] + [line(r) for r in cells])
    raise ValueError(f"fmt must be 'md', 'csv' or 'plain', got {fmt!r}")


def _mean_valid(precision: np.ndarray) -> float:
    precision = precision[precision > -1]
    return float(np.mean(precision)) if precision.size else float('nan')


def per_class_ap_from_precision(precision: np.ndarray, class_names: Sequence[str],
                                iou_thrs: Optional[Sequence[float]] = None,
                                area: int = 0, max_det: int = -1) -> List[dict]:
    """Per-class AP from a COCOeval ``eval['precision']`` array.

    Args:
        precision (np.ndarray): (T, R, K, A, M) precision, -1 where undefined.
        class_names (Sequence[str]): K names, in the order of ``params.catIds``.
        iou_thrs (Sequence[float], optional): the T IoU thresholds (default 0.50:0.05:0.95).
        area (int): area-range index (0 = all).
        max_det (int): max-dets index (-1 = the largest, 100).

    Returns:
        list[dict]: per class ``class``, ``AP`` (mean over thresholds), ``AP50``, ``AP75``
        (when those thresholds are present), in [0, 1]; NaN for a class without ground truth.
    """
    precision = np.asarray(precision)
    if precision.ndim != 5:
        raise ValueError(f'precision must be (T, R, K, A, M), got shape {precision.shape}')
    T, _, K = precision.shape[:3]
    if len(class_names) != K:
        raise ValueError(f'{len(class_names)} class names for {K} classes in precision')
    if iou_thrs is None:
        iou_thrs = np.linspace(.5, .95, 10) if T == 10 else None
    rows = []
    for k, name in enumerate(class_names):
        row = {'class': name, 'AP': _mean_valid(precision[:, :, k, area, max_det])}
        if iou_thrs is not None:
            for thr, key in ((0.5, 'AP50'), (0.75, 'AP75')):
                idx = np.flatnonzero(np.isclose(np.asarray(iou_thrs), thr))
                if idx.size:
                    row[key] = _mean_valid(precision[idx[0], :, k, area, max_det])
        rows.append(row)
    return rows


def per_class_ap_from_metrics(metrics: Mapping[str, float], class_names: Sequence[str],
                              iou_type: str = 'bbox') -> List[dict]:
    """Per-class AP from mmdet ``CocoMetric(classwise=True)`` outputs.

    mmdet 3.3 stores the per-class AP@[.5:.95] as ``'{prefix}/{class}_precision'`` (rounded to
    3 decimals; the same key for bbox and segm, so pass one metric's outputs). Our
    :class:`~bombo.evaluation.fast_coco_metric.FastCocoMetric` also stores
    ``'{prefix}/{iou_type}_{class}_AP50'``, used when present.
    """
    rows = []
    for name in class_names:
        row = {'class': name, 'AP': float('nan')}
        for key, value in metrics.items():
            tail = key.split('/')[-1]
            if tail == f'{name}_precision':
                row['AP'] = float(value)
            elif tail == f'{iou_type}_{name}_AP50':
                row['AP50'] = float(value)
            elif tail == f'{iou_type}_{name}_AP':
                row['AP'] = float(value)
        rows.append(row)
    return rows


def per_class_ap_table(rows: Sequence[dict], fmt: str = 'md', scale: float = 100.0,
                       digits: int = 2) -> str:
    """Format per-class AP rows (from :func:`per_class_ap_from_precision` or ``..._metrics``).

    Values are multiplied by ``scale`` (100: percentage points as in the paper). A last row holds
    the mean over classes with a defined AP (COCO's mAP).
    """
    keys = [k for k in ('AP', 'AP50', 'AP75') if any(k in r for r in rows)]
    body = [[r['class']] + [scale * r.get(k, float('nan')) for k in keys] for r in rows]
    means = []
    for k in keys:
        vals = np.array([r.get(k, np.nan) for r in rows], dtype=float)
        means.append(scale * float(np.nanmean(vals)) if np.isfinite(vals).any() else float('nan'))
    body.append(['mean'] + means)
    return format_table(['class'] + keys, body, fmt=fmt, digits=digits)


_IOU_KEY_PATTERNS = ('IoU_{}', 'IoU.{}', '{}_IoU', 'IoU-{}', '{}')


def per_class_iou_from_metrics(metrics: Mapping[str, float], class_names: Sequence[str]
                               ) -> Dict[str, float]:
    """Find per-class IoU in a semantic metric's outputs.

    Looks, after any ``prefix/``, for ``IoU_<class>``, ``IoU.<class>``, ``<class>_IoU``,
    ``IoU-<class>`` or ``<prefix>/IoU/<class>`` keys (case-sensitive class names). Missing
    classes get NaN.
    """
    out = {}
    for name in class_names:
        out[name] = float('nan')
        wanted = {p.format(name) for p in _IOU_KEY_PATTERNS[:-1]}
        for key, value in metrics.items():
            parts = key.split('/')
            if parts[-1] in wanted or (len(parts) >= 2 and parts[-2] == 'IoU'
                                       and parts[-1] == name):
                out[name] = float(value)
    return out


def iou_from_areas(area_intersect: np.ndarray, area_union: np.ndarray) -> np.ndarray:
    """Per-class IoU = intersection / union; NaN for a class absent from both (union 0)."""
    inter = np.asarray(area_intersect, dtype=np.float64)
    union = np.asarray(area_union, dtype=np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)


def per_class_iou_table(ious: Union[Mapping[str, float], Sequence[float], np.ndarray],
                        class_names: Optional[Sequence[str]] = None, fmt: str = 'md',
                        scale: float = 1.0, digits: int = 2) -> str:
    """Per-class IoU table with a final ``mIoU`` row (NaN classes excluded from the mean).

    Args:
        ious (dict | array): class name -> IoU, or a (C,) array with ``class_names``.
        class_names (Sequence[str], optional): names for an array input (background included if
            the array holds it).
        fmt (str): 'md', 'csv' or 'plain'.
        scale (float): multiply values (100 for IoU given in [0, 1]; mmdet's SemSegMetric already
            reports percentages).
    """
    if isinstance(ious, Mapping):
        names, vals = list(ious.keys()), [float(v) for v in ious.values()]
    else:
        vals = [float(v) for v in np.asarray(ious, dtype=float).reshape(-1)]
        names = list(class_names) if class_names is not None else [str(i) for i in range(len(vals))]
        if len(names) != len(vals):
            raise ValueError(f'{len(names)} class names for {len(vals)} IoU values')
    arr = np.array(vals, dtype=float)
    mean = float(np.nanmean(arr)) if np.isfinite(arr).any() else float('nan')
    rows = [[n, scale * v] for n, v in zip(names, vals)] + [['mIoU', scale * mean]]
    return format_table(['class', 'IoU'], rows, fmt=fmt, digits=digits)


def tide_comparison_table(results: Mapping[str, dict], fmt: str = 'md', digits: int = 2) -> str:
    """Several runs' TIDE results side by side (the paper's Table 2 layout)."""
    from .tide import format_tide_table
    return format_tide_table(dict(results), fmt=fmt, digits=digits)
