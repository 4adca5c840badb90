"""Schedules that mean the same on any number of processes.

The paper trains on one GPU with 32 detection + 32 segmentation images per
step for 70 epochs. Under DDP every process draws its own batch, so with N
processes a step consumes N x (32 + 32) images (mmengine: real batch =
world size x ``train_dataloader.batch_size``; bombo's dataloaders hold the
two tasks, ``batch_size = 2 * per_task_batch``), and a fixed ``max_iters``
trains N x the epochs.

``scale_schedule`` rescales every quantity counted in iterations by
``base_batch_size / real_batch_size``, so that the budget stays the same
number of images (epochs): ``train_cfg.max_iters``, ``val_interval`` /
``val_begin`` / ``dynamic_intervals``, each iteration-based param
scheduler's ``begin``, ``end``, ``milestones``, ``T_max``, ``step_size``,
``periods``, ``total_steps`` (the warm-up too: 500 iterations are 2.1 of the
70 epochs on VOC and stay 2.1 epochs; kept in iterations they would be 17 of
70 epochs on 8 GPUs), the iteration-based checkpoint and logger intervals,
and the EMA hooks (``momentum`` and ``gamma`` / ``begin_iter``) so that the
EMA teacher averages over the same number of images. The learning rate is
mmengine's ``auto_scale_lr`` (linear scaling rule), enabled separately.

Pure functions on configs (they return a new config), plus
``ScheduleSummaryHook`` that logs the layout, the lr and the budget in epochs
once the datasets are built.
"""
import copy
import math
import os
from fractions import Fraction
from typing import Dict, List, Mapping, Optional, Tuple

from mmengine.hooks import Hook

INF = int(1e9)  # mmengine's "no end" for param schedulers

# keys of an iteration-based param scheduler counted in iterations
SCHEDULER_ITER_KEYS = ('begin', 'end', 'T_max', 'step_size', 'total_steps')
SCHEDULER_ITER_LIST_KEYS = ('milestones', 'periods')
# EMA hooks whose momentum is per update (mmengine EMAHook and subclasses)
EMA_HOOKS = ('EMAHook', 'TeacherEMAHook', 'MeanTeacherHook')
EMA_DEFAULT_MOMENTUM = 0.0002  # mmengine EMAHook / ExpMomentumEMA default
EMA_DEFAULT_GAMMA = 2000  # ExpMomentumEMA default


def scale_iters(value: int, factor) -> int:
    """``value * factor`` rounded half up; 0 stays 0, anything else >= 1.

    >>> scale_iters(16800, Fraction(64, 512))
    2100
    >>> scale_iters(500, Fraction(1, 8))  # 62.5
    63
    """
    if value is None or value >= INF:
        return value
    if value == 0:
        return 0
    scaled = math.floor(Fraction(value) * Fraction(factor) + Fraction(1, 2))
    return max(1, int(scaled))


def scale_ema_momentum(momentum: float, factor) -> float:
    """Per-update EMA momentum giving the same decay per image.

    One update with ``factor = base / real`` (< 1 with more processes)
    stands for ``1 / factor`` of the base updates, so
    ``1 - m' = (1 - m) ** (1 / factor)``.

    >>> round(scale_ema_momentum(0.0002, Fraction(1, 8)), 8)
    0.00159888
    """
    if not 0 < momentum < 1:
        raise ValueError(f'EMA momentum must be in (0, 1), got {momentum}')
    return 1.0 - (1.0 - momentum) ** (1.0 / float(factor))


def _first_ann_task(ds_cfg) -> Optional[str]:
    if isinstance(ds_cfg, Mapping):
        if ds_cfg.get('ann_task'):
            return ds_cfg['ann_task']
        for key in ('datasets', 'dataset'):
            sub = ds_cfg.get(key)
            subs = sub if isinstance(sub, (list, tuple)) else [sub]
            for s in subs:
                task = _first_ann_task(s)
                if task:
                    return task
    return None


def batch_layout(cfg) -> List[Tuple[str, int]]:
    """Images per process and step, per source: ``[('det', 32), ('seg', 32)]``.

    Read from ``train_dataloader``: a ``MultiSourceSampler`` /
    ``GroupMultiSourceSampler`` splits its ``batch_size`` by ``source_ratio``
    as mmdet does (the first source takes the remainder); any other sampler
    gives one source of ``batch_size`` images. Raises ``ValueError`` when the
    dataloader's and the sampler's batch sizes differ (mmengine would then
    count a batch that is not the one trained on).
    """
    loader = cfg.get('train_dataloader')
    if not loader or 'batch_size' not in loader:
        raise ValueError('the config has no train_dataloader.batch_size')
    batch = int(loader['batch_size'])
    sampler = loader.get('sampler') or {}
    if 'source_ratio' not in sampler:
        return [('images', batch)]
    if int(sampler.get('batch_size', batch)) != batch:
        raise ValueError(
            f'train_dataloader.batch_size ({batch}) differs from '
            f"train_dataloader.sampler.batch_size ({sampler['batch_size']}): "
            'the multi-source sampler yields sampler.batch_size images per '
            'step, set both to the same value')
    ratio = list(sampler['source_ratio'])
    num = [int(batch * r / sum(ratio)) for r in ratio]
    num[0] = batch - sum(num[1:])
    sources = (loader.get('dataset') or {}).get('datasets') or []
    names = []
    for i in range(len(num)):
        task = _first_ann_task(sources[i]) if i < len(sources) else None
        names.append(task or f'source{i}')
    return list(zip(names, num))


def images_per_step(cfg, world_size: int) -> int:
    """What mmengine's ``auto_scale_lr`` calls the real batch size:
    ``world_size * train_dataloader.batch_size``."""
    return int(world_size) * sum(n for _, n in batch_layout(cfg))


def format_layout(layout: List[Tuple[str, int]], world_size: int) -> str:
    """``'8×(32 det + 32 seg) = 512 images per step'``."""
    inner = ' + '.join(f'{n} {name}' for name, n in layout)
    total = world_size * sum(n for _, n in layout)
    return f'{world_size}×({inner}) = {total} images per step'


def launcher_world_size(launcher: str,
                        environ: Optional[Mapping[str, str]] = None) -> int:
    """The number of processes a launcher will start, read from the
    environment before ``torch.distributed`` is initialised (the variables
    mmengine's ``init_dist`` reads): ``WORLD_SIZE`` (torchrun),
    ``SLURM_NTASKS`` (srun), ``OMPI_COMM_WORLD_SIZE`` (mpirun); 1 without a
    launcher."""
    environ = os.environ if environ is None else environ
    var = dict(pytorch='WORLD_SIZE', slurm='SLURM_NTASKS',
               mpi='OMPI_COMM_WORLD_SIZE').get(launcher)
    if launcher == 'none':
        return 1
    if var is None:
        raise ValueError(f'unknown launcher {launcher!r}')
    if var not in environ:
        raise RuntimeError(f'--launcher {launcher} but ${var} is not set: '
                           'start the processes with the launcher '
                           '(tools/dist_train.sh, tools/slurm_train.sh)')
    return int(environ[var])


def _scale_key(d, key, factor, changes, prefix):
    if key in d and isinstance(d[key], (int, float)) and \
            not isinstance(d[key], bool):
        old = d[key]
        d[key] = scale_iters(int(old), factor)
        if d[key] != old:
            changes[f'{prefix}.{key}'] = (old, d[key])


def scale_schedule(cfg, base_batch_size: int, real_batch_size: int
                   ) -> Tuple[object, Dict[str, tuple]]:
    """Rescale the iteration budget of ``cfg`` by base / real batch size.

    Returns ``(new_cfg, changes)``: a deep copy of ``cfg`` with every
    iteration-counted quantity (see the module docstring) multiplied by
    ``base_batch_size / real_batch_size`` (rounded half up, 0 kept, at least
    1), and ``{key: (old, new)}`` of what changed. ``cfg`` is not modified.
    Epoch-based loops and schedulers (``by_epoch=True``) already count
    epochs and are left alone. Example: 16,800 iterations of 1×(32+32)
    images are 2,100 iterations of 8×(32+32).
    """
    if base_batch_size <= 0 or real_batch_size <= 0:
        raise ValueError(f'batch sizes must be positive, got base '
                         f'{base_batch_size}, real {real_batch_size}')
    factor = Fraction(int(base_batch_size), int(real_batch_size))
    cfg = copy.deepcopy(cfg)
    changes: Dict[str, tuple] = {}
    if factor == 1:
        return cfg, changes

    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('by_epoch', False) or \
            'Epoch' in str(train_cfg.get('type', '')):
        return cfg, changes  # an epoch-based loop counts epochs already
    for key in ('max_iters', 'val_interval'):
        _scale_key(train_cfg, key, factor, changes, 'train_cfg')
    if train_cfg.get('val_begin', 1) > 1:
        _scale_key(train_cfg, 'val_begin', factor, changes, 'train_cfg')
    if train_cfg.get('dynamic_intervals'):
        old = train_cfg['dynamic_intervals']
        train_cfg['dynamic_intervals'] = [
            (scale_iters(i, factor), scale_iters(v, factor)) for i, v in old]
        changes['train_cfg.dynamic_intervals'] = (
            old, train_cfg['dynamic_intervals'])

    schedulers = cfg.get('param_scheduler')
    if isinstance(schedulers, Mapping):
        schedulers = [schedulers]
    for i, sched in enumerate(schedulers or []):
        if sched.get('by_epoch', True):
            continue  # mmengine's default is by_epoch=True
        prefix = f'param_scheduler.{i}'
        for key in SCHEDULER_ITER_KEYS:
            _scale_key(sched, key, factor, changes, prefix)
        for key in SCHEDULER_ITER_LIST_KEYS:
            if key in sched:
                old = list(sched[key])
                sched[key] = [scale_iters(int(v), factor) for v in old]
                if sched[key] != old:
                    changes[f'{prefix}.{key}'] = (old, sched[key])

    hooks = cfg.get('default_hooks') or {}
    logger = hooks.get('logger')
    if logger:  # LoggerHook counts iterations
        _scale_key(logger, 'interval', factor, changes,
                   'default_hooks.logger')
    ckpt = hooks.get('checkpoint')
    if ckpt and not ckpt.get('by_epoch', True):  # mmengine's default: True
        _scale_key(ckpt, 'interval', factor, changes,
                   'default_hooks.checkpoint')

    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        hook_type = str(hook.get('type', '')).split('.')[-1]
        if hook_type not in EMA_HOOKS:
            continue
        prefix = f'custom_hooks.{i}'
        old = hook.get('momentum', EMA_DEFAULT_MOMENTUM)
        hook['momentum'] = scale_ema_momentum(old, factor)
        changes[f'{prefix}.momentum'] = (old, hook['momentum'])
        default_ema = ('ForeachExpMomentumEMA'
                       if hook_type == 'TeacherEMAHook'
                       else 'ExponentialMovingAverage')
        if 'gamma' in hook or \
                'ExpMomentum' in str(hook.get('ema_type', default_ema)):
            old = hook.get('gamma', EMA_DEFAULT_GAMMA)
            hook['gamma'] = float(old) * float(factor)  # in updates
            changes[f'{prefix}.gamma'] = (old, hook['gamma'])
        _scale_key(hook, 'begin_iter', factor, changes, prefix)
    return cfg, changes


def schedule_epochs(max_iters: int, world_size: int,
                    layout: List[Tuple[str, int]],
                    sizes: List[int]) -> List[Tuple[str, int, float]]:
    """``[(source, images, epochs)]``: epochs of each source in
    ``max_iters`` steps of ``world_size × layout`` images."""
    return [(name, size, max_iters * world_size * n / size if size else
             math.inf) for (name, n), size in zip(layout, sizes)]


class ScheduleSummaryHook(Hook):
    """Logs one line at ``before_train``: the batch layout (processes ×
    (det + seg) images), the learning rate after ``auto_scale_lr`` and the
    iteration budget in epochs of the larger split.

    ``expected_world_size`` (the one the schedule was scaled for) is checked
    against the real one: a mismatch would train another number of epochs.
    ``changes`` (from ``scale_schedule``) are logged on the line before.
    Registered by ``tools/train.py``; not a config hook.

    Resuming. Every checkpoint records the run's layout
    (``meta['bombo_schedule']``: processes, images per step, ``max_iters``,
    whether the lr / iterations were scaled). A resumed run (``--resume``)
    with another number of images per step would continue the saved
    iteration counter on a different schedule (with ``--scale-schedule``:
    different ``max_iters``, milestones and EMA constants; without: other
    epochs per iteration), so it stops with an error that names both layouts
    when either run scaled its schedule, and warns otherwise. Loading
    weights with ``load_from`` (no resume) is not checked; checkpoints
    without the record (older ones) are accepted as they are.
    """

    priority = 'VERY_LOW'

    def __init__(self, base_batch_size: Optional[int] = None,
                 lr_scaled: bool = False, schedule_scaled: bool = False,
                 expected_world_size: Optional[int] = None,
                 changes: Optional[Dict[str, tuple]] = None):
        self.base_batch_size = base_batch_size
        self.changes = changes or {}
        self.lr_scaled = lr_scaled
        self.schedule_scaled = schedule_scaled
        self.expected_world_size = expected_world_size
        self.summary = None

    @staticmethod
    def _per_source(runner) -> List[int]:
        loader = runner.train_dataloader
        sampler = getattr(loader, 'sampler', None)
        return list(getattr(sampler, 'num_per_source', None) or
                    [loader.batch_size])

    def _record(self, runner) -> Dict:
        """The layout this run trains with (``meta['bombo_schedule']``)."""
        from mmengine.dist import get_world_size
        world = get_world_size()
        per_source = self._per_source(runner)
        return dict(world_size=world, per_source=per_source,
                    images_per_step=world * sum(per_source),
                    max_iters=int(runner.max_iters),
                    base_batch_size=self.base_batch_size,
                    lr_scaled=self.lr_scaled,
                    schedule_scaled=self.schedule_scaled)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['bombo_schedule'] = \
            self._record(runner)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # load_from: weights only, any layout
        saved = (checkpoint.get('meta') or {}).get('bombo_schedule')
        if not saved:
            return
        now = self._record(runner)
        if saved.get('images_per_step') == now['images_per_step']:
            return

        def describe(r):
            return (f"{r.get('world_size')} process(es) × "
                    f"{' + '.join(map(str, r.get('per_source') or []))} = "
                    f"{r.get('images_per_step')} images per step, "
                    f"max_iters {r.get('max_iters')}"
                    + (', --scale-schedule' if r.get('schedule_scaled')
                       else ''))

        msg = (f'resuming a checkpoint trained with {describe(saved)}, now '
               f'{describe(now)}: the saved iteration counter would continue '
               'on another schedule. Resume with the same number of '
               'processes and batch (docs/training_at_scale.md), or start a '
               'new run from these weights with --cfg-options load_from=CKPT '
               '(no --resume)')
        if saved.get('schedule_scaled') or self.schedule_scaled:
            raise RuntimeError(msg)
        runner.logger.warning(msg)

    def before_train(self, runner) -> None:
        from mmengine.dist import get_world_size
        world = get_world_size()
        if self.schedule_scaled and self.expected_world_size is not None \
                and world != self.expected_world_size:
            raise RuntimeError(
                f'the schedule was scaled for {self.expected_world_size} '
                f'processes but {world} are running')
        loader = runner.train_dataloader
        per_source = self._per_source(runner)
        try:
            names = [n for n, _ in batch_layout(runner.cfg)]
        except ValueError:
            names = []
        if len(names) != len(per_source):
            names = [f'source{i}' for i in range(len(per_source))] \
                if len(per_source) > 1 else ['images']
        layout = list(zip(names, per_source))
        dataset = loader.dataset
        subsets = getattr(dataset, 'datasets', None)
        sizes = ([len(d) for d in subsets] if subsets is not None and
                 len(subsets) == len(layout) else [len(dataset)])
        if len(sizes) != len(layout):
            layout = [('images', sum(per_source))]
        epochs = schedule_epochs(runner.max_iters, world, layout, sizes)
        groups = getattr(runner.optim_wrapper, 'param_groups', None)
        if groups:  # the base lr, before the warm-up's factor
            lr = groups[0].get('initial_lr', groups[0]['lr'])
        else:  # OptimWrapperDict: one lr per optimizer
            lr = float('nan')
        largest = max(epochs, key=lambda e: e[1])
        how = ('linear scaling, --auto-scale-lr' if self.lr_scaled
               else 'not scaled')
        others = ', '.join(f'{e:.1f} of {name} ({size:,} images)'
                           for name, size, e in epochs if name != largest[0])
        line = (f'batch layout {format_layout(layout, world)}'
                + (f' (lr base {self.base_batch_size})'
                   if self.base_batch_size else '')
                + f'; lr {lr:.4g} ({how}); budget {runner.max_iters:,} '
                f'iterations = {largest[2]:.1f} epochs of {largest[0]} '
                f'({largest[1]:,} images)'
                + (f', {others}' if others else '')
                + ('' if self.schedule_scaled else
                   ' (iterations not scaled)'))
        self.summary = dict(world_size=world, layout=layout, lr=lr,
                            max_iters=runner.max_iters, epochs=epochs)
        if self.changes:
            runner.logger.info('--scale-schedule (× {}): '.format(
                f'{self.base_batch_size}/'
                f'{world * sum(per_source)}') + ', '.join(
                    f'{k} {old} -> {new:.6g}' if isinstance(new, float)
                    else f'{k} {old} -> {new}'
                    for k, (old, new) in self.changes.items()))
        runner.logger.info(line)
