"""Semantic segmentation IoU for detectors that also predict a label map."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """(num_classes, num_classes) counts, rows = ground truth."""
    valid = gt != ignore_index
    if pred.shape != gt.shape:
        raise ValueError(f'prediction {tuple(pred.shape)} and ground truth '
                         f'{tuple(gt.shape)} differ in shape')
    bad = valid & ((gt < 0) | (gt >= num_classes))
    if bad.any():
        raise ValueError(f'ground truth holds labels outside [0, '
                         f'{num_classes}) other than {ignore_index}: '
                         f'{torch.unique(gt[bad]).tolist()}')
    idx = gt[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(idx, minlength=num_classes**2).reshape(
        num_classes, num_classes)


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU; NaN for classes absent from both gt and predictions."""
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


@METRICS.register_module()
class SemanticIoUMetric(BaseMetric):
    """Mean IoU of ``pred_sem_seg`` against ``gt_sem_seg`` (the conventional
    IoU score of the BoMBo paper, Sec. 4.1).

    Classes are ``('background',) + dataset_meta['classes']`` (label 0 is the
    background, object class ``k`` is label ``k + 1``), ``ignore_index``
    pixels do not count. IoU is accumulated over the whole dataset (one
    confusion matrix), and the mean is over the classes present in the
    ground truth or the predictions. mmdet's ``SemSegMetric`` is not used: it
    takes its class list from ``dataset_meta['classes']``, i.e. without the
    background of a detection dataset.

    Reports (fractions in [0, 1]): ``mIoU``, ``aAcc`` and ``IoU_<class>``.

    Args:
        ignore_index (int): label ignored. Default 255.
        class_names (Sequence[str], optional): overrides the class list,
            background included.
    """

    default_prefix = 'seg'

    def __init__(self, ignore_index: int = 255,
                 class_names: Optional[Sequence[str]] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index
        self._class_names = tuple(class_names) if class_names else None

    @property
    def class_names(self):
        if self._class_names is not None:
            return self._class_names
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise ValueError('SemanticIoUMetric needs dataset_meta["classes"]'
                             ' or class_names')
        return ('background', ) + tuple(self.dataset_meta['classes'])

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        n = len(self.class_names)
        for sample in data_samples:
            if 'gt_sem_seg' not in sample:
                continue  # an image annotated for detection only
            pred = sample['pred_sem_seg']['sem_seg'].squeeze(0).cpu()
            gt = sample['gt_sem_seg']['sem_seg'].squeeze(0).cpu()
            try:
                conf = confusion_matrix(pred, gt, n, self.ignore_index)
            except ValueError as e:
                raise ValueError(f'{sample.get("img_path", "?")}: {e}') from e
            self.results.append(conf.numpy())

    def compute_metrics(self, results: list) -> Dict[str, float]:
        names = self.class_names
        if not results:
            MMLogger.get_current_instance().warning(
                'SemanticIoUMetric: no image with a semantic ground truth')
            return dict(mIoU=float('nan'), aAcc=float('nan'))
        conf = np.sum(results, axis=0)
        iou = iou_from_confusion(conf)
        out = dict(mIoU=float(np.nanmean(iou)) if not np.isnan(iou).all()
                   else float('nan'),
                   aAcc=float(np.diag(conf).sum() / max(conf.sum(), 1)))
        lines = [f'{"class":<16}{"IoU":>8}']
        for name, v in zip(names, iou):
            out[f'IoU_{name}'] = float(v)
            lines.append(f'{name:<16}{v * 100:>8.2f}')
        lines.append(f'{"mIoU":<16}{out["mIoU"] * 100:>8.2f}')
        MMLogger.get_current_instance().info('\n' + '\n'.join(lines))
        return out
