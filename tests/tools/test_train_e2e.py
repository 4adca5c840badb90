"""End to end: a few iterations on a tiny toy set, evaluation, test.py."""
import json
import os.path as osp

import pytest

from conftest import TOY_CONFIG, tiny_overrides


def test_demo_trains_evaluates_and_writes_summary(toy_root, tmp_path):
    import demo
    work_dir = str(tmp_path / 'demo')
    summary = demo.run(TOY_CONFIG, work_dir,
                       tiny_overrides(toy_root, work_dir, max_iters=4))
    on_disk = json.load(open(osp.join(work_dir, 'summary.json')))
    assert on_disk == summary
    for k in ('bbox_mAP', 'bbox_mAP_50', 'voc_mAP_50', 'mIoU'):
        assert 0.0 <= summary[k] <= 1.0, k
    assert summary['train_seconds'] > 0 and summary['iterations'] == 4
    table = demo.format_table(summary)
    assert 'mIoU' in table and 'bbox mAP@50' in table
    # the demo ends with the TIDE analysis: table, numbers and plot
    assert set(summary['tide']) >= {'Cls', 'Loc', 'Both', 'Dupe', 'Bkg',
                                    'Miss', 'FP', 'FN'}
    assert 'Miss' in summary['tide_table']
    assert osp.getsize(osp.join(work_dir, 'tide_summary.png')) > 1000

    # tools/test.py evaluates the saved checkpoint (loaded weights-only)
    import test as test_tool
    args = [TOY_CONFIG, osp.join(work_dir, 'iter_4.pth'),
            '--work-dir', str(tmp_path / 'test'), '--cfg-options']
    args += [f'{k}={v}' for k, v in tiny_overrides(toy_root, str(tmp_path / 't'), 4).items()
             if not k.startswith(('param_scheduler', 'work_dir'))]
    metrics = test_tool.main(args)
    assert metrics['seg/mIoU'] == pytest.approx(summary['mIoU'], abs=1e-6)
    assert metrics['coco/bbox_mAP'] == pytest.approx(summary['bbox_mAP'],
                                                     abs=1e-6)


def test_test_tool_names_a_missing_checkpoint(tmp_path):
    import test as test_tool
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        test_tool.main([TOY_CONFIG, str(tmp_path / 'nope.pth')])
