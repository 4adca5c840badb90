"""TIDE figure, result tables and the metric's default output folder."""
import math

import matplotlib
import pytest

from bombo.evaluation.plots import TIDE_COLORS, plot_tide_comparison, plot_tide_summary
from bombo.evaluation.tables import (format_table, iou_from_areas, per_class_ap_from_metrics,
                                     per_class_iou_from_metrics, per_class_iou_table,
                                     tide_comparison_table)
from bombo.evaluation.tide import TIDE_MAIN_ERRORS

RESULT = dict(AP=41.5, Cls=6.0, Loc=7.0, Both=3.5, Dupe=2.5, Bkg=1.5, Miss=22.0, FP=16.0,
              FN=30.5, pos_thr=0.5, counts=dict(Cls=1, Loc=1, Both=1, Dupe=1, Bkg=2, Miss=2))


def test_summary_figure_bars_hold_the_values(tmp_path):
    rc_before = dict(matplotlib.rcParams)
    fig = plot_tide_summary(RESULT, title='run')
    main_ax, special_ax = fig.axes
    assert [p.get_width() for p in main_ax.patches] == [RESULT[k] for k in TIDE_MAIN_ERRORS]
    assert [p.get_height() for p in special_ax.patches] == [16.0, 30.5]
    assert main_ax.get_xlim()[1] == 25.0  # 22 rounded up to a multiple of 5 (tidecv's rule)
    assert special_ax.get_ylim()[1] == 35.0
    assert matplotlib.colors.to_hex(main_ax.patches[0].get_facecolor()) == TIDE_COLORS['Cls']
    assert 'AP50 = 41.50' in fig._suptitle.get_text()
    out = plot_tide_summary(RESULT, str(tmp_path / 'sub' / 'tide.png'))
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert dict(matplotlib.rcParams) == rc_before  # no global style change


def test_summary_figure_with_nan_and_zero_result(tmp_path):
    res = {k: 0.0 for k in TIDE_MAIN_ERRORS}
    res.update(FP=float('nan'), FN=0.0)
    fig = plot_tide_summary(res)
    assert fig.axes[1].patches[0].get_height() == 0.0
    assert plot_tide_comparison({'a': RESULT, 'b': res}, str(tmp_path / 'c.png')).endswith('c.png')


def test_format_table_md_csv_plain():
    rows = [['a', 0.12345, 3, None, float('nan')]]
    headers = ['run', 'x', 'n', 'empty', 'v']
    assert format_table(headers, rows, 'csv') == 'run,x,n,empty,v\na,0.12,3,,nan'
    md = format_table(headers, rows, 'md', digits=3).splitlines()
    assert md[0] == '| run | x     | n | empty | v   |' and md[2].startswith('| a   | 0.123 |')
    assert format_table(headers, rows, 'plain').splitlines()[1].startswith('---')
    with pytest.raises(ValueError, match='fmt'):
        format_table(headers, rows, 'html')
    with pytest.raises(ValueError, match='cells'):
        format_table(headers, [['a']], 'md')


def test_per_class_iou_table_and_helpers():
    iou = iou_from_areas([5, 0, 3], [10, 0, 4])
    assert iou[0] == 0.5 and math.isnan(iou[1]) and iou[2] == 0.75
    table = per_class_iou_table(iou, ['background', 'ellipse', 'triangle'], scale=100)
    assert table.splitlines()[-1] == '| mIoU       | 62.50 |'  # NaN class left out of the mean
    metrics = {'sem/IoU_rectangle': 71.0, 'sem/IoU.ellipse': 60.0, 'sem/mIoU': 65.5}
    found = per_class_iou_from_metrics(metrics, ['rectangle', 'ellipse', 'triangle'])
    assert found['rectangle'] == 71.0 and found['ellipse'] == 60.0 and math.isnan(found['triangle'])
    assert 'triangle' in per_class_iou_table(found, fmt='csv')


def test_per_class_ap_from_mmdet_classwise_keys():
    metrics = {'coco/bbox_mAP': 0.5, 'coco/rectangle_precision': 0.6,
               'coco/bbox_rectangle_AP50': 0.9, 'coco/ellipse_precision': 0.4}
    rows = per_class_ap_from_metrics(metrics, ['rectangle', 'ellipse'])
    assert rows[0] == dict(**{'class': 'rectangle', 'AP': 0.6, 'AP50': 0.9})
    assert rows[1]['AP'] == 0.4 and 'AP50' not in rows[1]


def test_tide_comparison_table_rows_in_order():
    table = tide_comparison_table({'Baseline': RESULT, 'L': dict(RESULT, Cls=2.76)}, fmt='csv')
    lines = table.splitlines()
    assert lines[0] == 'run,AP50,Cls,Loc,Both,Dupe,Bkg,Miss,FP,FN'
    assert lines[1].startswith('Baseline,41.50,6.00') and lines[2].startswith('L,41.50,2.76')


def test_metric_writes_into_the_runner_log_dir(tmp_path):
    import torch
    from mmengine.logging import MMLogger
    from bombo.evaluation.tide_metric import TIDEMetric
    (tmp_path / 'ts').mkdir()
    MMLogger.get_instance('test_tide_log_dir', log_file=str(tmp_path / 'ts' / 'ts.log'))
    metric = TIDEMetric(plot=False)
    metric.dataset_meta = dict(classes=('a', ))
    box = torch.tensor([[0., 0., 10., 10.]])
    metric.process({}, [dict(img_id=1, gt_instances=dict(bboxes=box, labels=torch.tensor([0])),
                             pred_instances=dict(bboxes=box, scores=torch.tensor([0.5]),
                                                 labels=torch.tensor([0])))])
    out = metric.compute_metrics(metric.results)
    assert out['AP50'] == pytest.approx(100.0) and out['Miss'] == 0.0
    assert (tmp_path / 'ts' / 'tide.json').is_file()
    assert not (tmp_path / 'ts' / 'tide_summary.png').exists()
    with pytest.raises(KeyError, match='gt_instances nor instances'):
        metric.process({}, [dict(img_id=2, pred_instances=dict(
            bboxes=box, scores=torch.tensor([0.5]), labels=torch.tensor([0])))])
    with pytest.raises(ValueError, match='bg_thr'):
        TIDEMetric(pos_thr=0.05)


def test_tide_result_from_metrics_round_trip():
    from bombo.evaluation.tide import format_tide_table, tide_result_from_metrics
    metrics = {'coco/bbox_mAP': 0.3, 'tide/AP50': 41.5, 'tide/Cls': 6.0, 'tide/FN': 30.5}
    res = tide_result_from_metrics(metrics)
    assert res == dict(Cls=6.0, AP=41.5, pos_thr=0.5, FN=30.5)
    row = format_tide_table(res, fmt='csv').splitlines()[1]
    assert row == 'run,41.50,6.00,nan,nan,nan,nan,nan,nan,30.50'
    assert tide_result_from_metrics({'AP75': 1.0, 'Loc': 2.0})['pos_thr'] == 0.75
    with pytest.raises(KeyError, match='no TIDE'):
        tide_result_from_metrics({'coco/bbox_mAP': 0.3})
