from .fast_coco_metric import FastCocoMetric
from .plots import plot_tide_comparison, plot_tide_summary
from .semseg_metric import SemanticIoUMetric
from .tables import (format_table, per_class_ap_from_metrics,
                     per_class_ap_table, per_class_iou_from_metrics,
                     per_class_iou_table, tide_comparison_table)
from .tide import (TIDE_MAIN_ERRORS, TIDE_SPECIAL_ERRORS, compute_tide,
                   format_tide_table, tide_from_coco_files,
                   tide_result_from_metrics)
from .tide_metric import TIDEMetric

__all__ = [
    'FastCocoMetric', 'SemanticIoUMetric', 'TIDEMetric', 'compute_tide',
    'tide_from_coco_files', 'tide_result_from_metrics', 'format_tide_table',
    'TIDE_MAIN_ERRORS', 'TIDE_SPECIAL_ERRORS', 'plot_tide_summary',
    'plot_tide_comparison', 'format_table', 'per_class_ap_table',
    'per_class_iou_table', 'per_class_ap_from_metrics',
    'per_class_iou_from_metrics', 'tide_comparison_table'
]
