#!/usr/bin/env python
"""Train a bombo (or any mmdet) config, as mmdetection's ``tools/train.py``.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]
                          [--amp] [--auto-scale-lr] [--scale-schedule]
                          [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NUM_GPUS [...]   # torchrun + DDP

Without CUDA, distributed runs use the gloo backend on the CPU.

The paper configs are written for ONE process with 32 detection + 32
segmentation images per step (``auto_scale_lr.base_batch_size = 64``). On N
processes each step holds N×64 images: ``--auto-scale-lr`` multiplies the lr
by N (mmengine's linear scaling rule) and ``--scale-schedule`` divides the
iteration budget by N (``bombo/utils/schedule.py``), so that the run is the
paper's 70 epochs; give both. The log states the layout, the lr and the
budget in epochs (docs/training_at_scale.md).
"""
import argparse
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from bombo.utils.config import load_config  # noqa: E402
from bombo.utils.schedule import (ScheduleSummaryHook,  # noqa: E402
                                  batch_layout, format_layout,
                                  images_per_step, launcher_world_size,
                                  scale_schedule)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default once (some help texts state theirs in words)."""

    def _get_help_string(self, action):
        if '(default:' in (action.help or ''):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a detector', formatter_class=_HelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir',
                        help='the dir to save logs and models (default: '
                        "the config's work_dir, else "
                        './work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the lr by (processes × train_dataloader.batch_size) / '
        "auto_scale_lr.base_batch_size (mmengine's linear scaling rule; the "
        "paper configs' base is 1×(32+32) = 64 images)")
    parser.add_argument(
        '--scale-schedule', action='store_true',
        help='divide every iteration count (max_iters, val/checkpoint/'
        'logger intervals, lr scheduler begin/end/milestones, warm-up '
        'included, EMA momentum and gamma) by the same ratio, so that the '
        'run keeps the epochs of the config; use with --auto-scale-lr')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest '
        'checkpoint of the work dir when no path is given (default: no '
        'resume)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher (tools/dist_train.sh: pytorch, '
                        'tools/slurm_train.sh: slurm)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='rank of this process on its node (set by the '
                        'launcher)')
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_cpu_distributed(cfg, launcher: str) -> None:
    """Distributed training without CUDA: gloo, and DDP without device ids.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP
    wrapper passes ``device_ids``; neither exists on a CPU-only machine, so
    the process group is created here (mmengine then sees it initialised)
    and the wrapper is told to use no device ids.
    """
    import torch
    import torch.distributed as dist
    if launcher != 'pytorch' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def build_cfg(args, world_size=None):
    """The config ``args`` ask for, ready for the Runner (see ``prepare``)."""
    return prepare(args, world_size)[0]


def prepare(args, world_size=None):
    """``(cfg, schedule)``: the config ``args`` ask for, ready for the
    Runner, and what was scaled (the ``ScheduleSummaryHook`` arguments).

    ``world_size`` (default: read from the launcher's environment, see
    ``launcher_world_size``) is the number of processes the lr and the
    schedule are scaled for.
    """
    # --cfg-options merged, then data_root / num_classes / metainfo given to
    # every copy in the config (bombo/utils/config.py)
    cfg = load_config(args.config, args.cfg_options)
    if world_size is None:
        world_size = launcher_world_size(args.launcher)
    cfg, schedule = scale_for_world_size(cfg, world_size, args.auto_scale_lr,
                                         args.scale_schedule)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg, schedule


def scale_for_world_size(cfg, world_size: int, auto_scale_lr: bool,
                         scale_iterations: bool):
    """``(cfg, schedule)``: mmengine's lr scaling enabled and the iteration
    budget rescaled for ``world_size`` processes (each step: world_size ×
    train_dataloader.batch_size images, against
    ``auto_scale_lr.base_batch_size``)."""
    flags = auto_scale_lr or scale_iterations
    base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
    schedule = dict(base_batch_size=base, lr_scaled=False,
                    schedule_scaled=False, expected_world_size=world_size,
                    changes=None)
    if flags and not base:
        flag = '--auto-scale-lr' if auto_scale_lr else '--scale-schedule'
        raise RuntimeError(
            f'{flag} needs `auto_scale_lr = dict(enable=False, '
            'base_batch_size=...)` in the config (the images per step its lr '
            'and schedule were set for; bombo configs inherit it from '
            'configs/_base_/schedules/sgd_70e.py or '
            'configs/_base_/datasets/toy_partial.py)')
    try:
        layout = batch_layout(cfg)
    except ValueError as e:
        if flags:
            raise
        print_log(f'batch layout unknown: {e}', logger='current',
                  level=logging.WARNING)
        return cfg, schedule
    real = images_per_step(cfg, world_size)
    if auto_scale_lr:
        cfg.auto_scale_lr.enable = True
        schedule['lr_scaled'] = True
    if scale_iterations and real != base:
        cfg, changes = scale_schedule(cfg, base, real)
        schedule['schedule_scaled'] = True
        schedule['changes'] = changes  # logged by ScheduleSummaryHook
    if base and real != base and not (auto_scale_lr and scale_iterations):
        missing = [f for f, on in (('--auto-scale-lr', auto_scale_lr),
                                   ('--scale-schedule', scale_iterations))
                   if not on]
        print_log(f'{format_layout(layout, world_size)}, but the config is '
                  f'set for {base} images per step; without '
                  f'{" and ".join(missing)} this run is not the config\'s '
                  'schedule (docs/training_at_scale.md)',
                  logger='current', level=logging.WARNING)
    return cfg, schedule


def main(argv=None):
    args = parse_args(argv)
    cfg, schedule = prepare(args)
    setup_cpu_distributed(cfg, args.launcher)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    # one log line: layout, lr after scaling, budget in epochs
    runner.register_hook(ScheduleSummaryHook(**schedule))
    runner.train()
    finish_distributed()
    return runner


def finish_distributed() -> None:
    """Wait for every rank (rank 0 may still be writing its last
    checkpoint) and tear the process group down before the interpreter
    exits: a rank that exits while its peer is busy can abort in the gloo /
    NCCL destructors ("terminate called without an active exception",
    seen with 2 CPU processes on a loaded machine)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
