#!/usr/bin/env python
"""Evaluate a checkpoint, as mmdetection's ``tools/test.py``.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
                         [--out results.pkl] [--cfg-options k=v ...]

Checkpoints load with torch's default ``weights_only=True``; one that torch
refuses (written by a plain mmengine / mmdet run) stops with an error naming
``tools/misc/convert_checkpoint.py``, which converts a trusted file once.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from bombo.engine.checkpoint_io import checkpoint_errors  # noqa: E402
from bombo.utils.config import load_config  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from train import finish_distributed, setup_cpu_distributed  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and eval) a model',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (loaded with '
                        'weights_only=True; convert a trusted plain mmdet '
                        'one with tools/misc/convert_checkpoint.py)')
    parser.add_argument('--work-dir', help='the dir to save evaluation logs '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--out', help='dump predictions to a pickle file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config values, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='rank of this process (set by the launcher)')
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} not found')
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl file')
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(
            cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpDetResults',
                                       out_file_path=args.out))
    setup_cpu_distributed(cfg, args.launcher)  # gloo when there is no CUDA
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
        RUNNERS.build(cfg)
    with checkpoint_errors(args.checkpoint):  # names the converter
        metrics = runner.test()
    finish_distributed()
    return metrics


if __name__ == '__main__':
    main()
