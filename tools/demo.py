#!/usr/bin/env python
"""Train a config, evaluate it and summarise the result: the demo behind
``make demo`` (training, on the CPU by default; to run a trained model on
images, see ``tools/image_demo.py``).

    python tools/demo.py configs/toy/toy_r18_fpn_mtl.py --work-dir work_dirs/demo

It trains with mmengine's ``Runner`` for the config's ``max_iters``,
evaluates once on the validation split after training (outside the timed
part), prints a results table and writes ``WORK_DIR/summary.json``:
``bbox_mAP``, ``bbox_mAP_50`` (COCO-style, fractions), ``mIoU`` (fraction),
``train_seconds`` and ``iterations``, plus the TIDE error table and
``WORK_DIR/tide_summary.png`` when the config's evaluator has a
``TIDEMetric``. ``tools/train.py`` trains without the summary.
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

SUMMARY_KEYS = dict(bbox_mAP='coco/bbox_mAP', bbox_mAP_50='coco/bbox_mAP_50',
                    bbox_mAP_75='coco/bbox_mAP_75', voc_mAP_50='pascal_voc/mAP',
                    mIoU='seg/mIoU',
                    aAcc='seg/aAcc')


def summarise(metrics: dict, train_seconds: float, iterations: int,
              config: str) -> dict:
    summary = {k: float(metrics[v]) for k, v in SUMMARY_KEYS.items()
               if v in metrics}
    if 'coco/bbox_mAP' not in metrics and 'seg/mIoU' in metrics:
        # mmdet's CocoMetric reports nothing when the model detected nothing
        # at all: that is an AP of 0, said so in the summary
        summary.update(bbox_mAP=0.0, bbox_mAP_50=0.0, bbox_mAP_75=0.0,
                       note='no detection above the score threshold')
    summary = {k: summary[k] for k in SUMMARY_KEYS if k in summary} | {
        k: v for k, v in summary.items() if k not in SUMMARY_KEYS}
    missing = [k for k in ('bbox_mAP', 'bbox_mAP_50', 'mIoU')
               if k not in summary]
    if missing:
        raise KeyError(f'evaluation did not report {missing}; metrics: '
                       f'{sorted(metrics)}')
    summary.update(train_seconds=round(train_seconds, 1),
                   iterations=iterations, config=config)
    tide = {k.split('/', 1)[1]: float(v) for k, v in metrics.items()
            if k.startswith('tide/')}
    if tide:
        summary['tide'] = tide
    return summary


def format_table(summary: dict) -> str:
    rows = [('bbox mAP (COCO)', summary['bbox_mAP']),
            ('bbox mAP@50', summary['bbox_mAP_50'])]
    if 'voc_mAP_50' in summary:
        rows.append(('bbox mAP@50 (VOC, area)', summary['voc_mAP_50']))
    rows.append(('mIoU', summary['mIoU']))
    lines = ['| metric | value |', '|---|---|']
    lines += [f'| {name} | {value * 100:.1f} |' for name, value in rows]
    lines.append(f'| training time | {summary["train_seconds"]:.0f} s '
                 f'({summary["iterations"]} iterations) |')
    return '\n'.join(lines)


def run(config: str, work_dir: str, cfg_options=None) -> dict:
    from bombo.utils.config import load_config
    cfg = load_config(config, cfg_options)
    cfg.work_dir = work_dir
    max_iters = cfg.train_cfg.max_iters
    # evaluate once, after training, outside the timed part
    cfg.train_cfg.val_interval = max_iters + 1
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_seconds = time.perf_counter() - start
    metrics = runner.val_loop.run()
    summary = summarise(metrics, train_seconds, max_iters, config)
    if any(k.startswith('tide/') for k in metrics):
        from bombo.evaluation.plots import plot_tide_summary
        from bombo.evaluation.tide import (format_tide_table,
                                           tide_result_from_metrics)
        tide = tide_result_from_metrics(metrics)
        summary['tide_table'] = format_tide_table(tide)
        plot_tide_summary(tide, osp.join(work_dir, 'tide_summary.png'))
    with open(osp.join(work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    return summary


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults after every flag, the description as written."""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument('config', help='the config to train and evaluate '
                        '(e.g. configs/toy/toy_r18_fpn_mtl.py)')
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='folder for the logs, checkpoints, '
                        'summary.json and tide_summary.png')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (e.g. '
                        'train_cfg.max_iters=100); data_root and '
                        'num_classes propagate as in every bombo tool')
    args = parser.parse_args(argv)
    summary = run(args.config, args.work_dir, args.cfg_options)
    print('\n' + format_table(summary))
    if 'tide_table' in summary:
        print('\nTIDE error analysis (AP50; dAP per error type):\n' +
              summary['tide_table'])
        print(f'TIDE plot: {osp.join(args.work_dir, "tide_summary.png")}')
    print(f'\nsummary written to {osp.join(args.work_dir, "summary.json")}')
    return summary


if __name__ == '__main__':
    main()
