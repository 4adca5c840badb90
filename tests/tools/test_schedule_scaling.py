"""Schedules that mean the same on any number of processes
(bombo/utils/schedule.py, tools/train.py --auto-scale-lr --scale-schedule).
The expected numbers are worked by hand in the comments."""
import copy
import os
import os.path as osp
import subprocess
import sys
from fractions import Fraction
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from bombo.utils.schedule import (ScheduleSummaryHook, batch_layout,
                                  format_layout, images_per_step,
                                  launcher_world_size, scale_ema_momentum,
                                  scale_iters, scale_schedule,
                                  schedule_epochs)
from conftest import ROOT, TOY_CONFIG, tiny_overrides

VOC = osp.join(ROOT, 'configs/bombo/bombo_r18_fpn_voc.py')
COCO = osp.join(ROOT, 'configs/bombo/mtl_r18_fpn_coco.py')


def test_scale_iters_rounds_half_up_and_keeps_zero():
    assert scale_iters(16800, Fraction(64, 512)) == 2100
    assert scale_iters(500, Fraction(1, 8)) == 63  # 62.5
    assert scale_iters(50, Fraction(1, 8)) == 6  # 6.25
    assert scale_iters(3, Fraction(1, 8)) == 1  # 0.375, never 0
    assert scale_iters(0, Fraction(1, 8)) == 0
    assert scale_iters(int(1e9), Fraction(1, 8)) == int(1e9)  # "no end"
    assert scale_iters(16800, Fraction(64, 32)) == 33600


def test_ema_momentum_keeps_the_decay_per_image():
    # 8 updates of 0.0002 keep 0.9998 ** 8 = 0.99840112 of the old average
    m = scale_ema_momentum(0.0002, Fraction(1, 8))
    assert m == pytest.approx(1 - 0.9998 ** 8, rel=1e-12)
    assert m == pytest.approx(0.00159888, abs=1e-8)
    assert scale_ema_momentum(0.0002, 1) == pytest.approx(0.0002)
    with pytest.raises(ValueError, match='momentum'):
        scale_ema_momentum(1.5, Fraction(1, 2))


def test_paper_voc_schedule_on_8_processes():
    cfg = Config.fromfile(VOC)
    before = copy.deepcopy(cfg.to_dict())
    assert images_per_step(cfg, 8) == 512
    new, changes = scale_schedule(cfg, 64, 512)
    assert cfg.to_dict() == before  # pure: the input is untouched
    # 16,800 iterations at 1×64 = 70 epochs of 7,656 images / 32 (rounded
    # up to 240 per epoch); at 8×64: 16,800 / 8
    assert new.train_cfg.max_iters == 2100
    assert new.train_cfg.val_interval == 300  # 2,400 / 8
    warmup, steps = new.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 63)  # 500 / 8 = 62.5
    assert warmup.start_factor == 0.001  # factors are not iterations
    assert (steps.begin, steps.end) == (0, 2100)
    assert steps.milestones == [1470, 1890]  # 11,760 / 8, 15,120 / 8
    assert new.default_hooks.checkpoint.interval == 300
    assert new.default_hooks.logger.interval == 6  # 50 / 8 = 6.25
    ema = new.custom_hooks[0]
    assert ema.type == 'TeacherEMAHook'
    assert ema.gamma == 250  # 2,000 / 8
    assert ema.momentum == pytest.approx(1 - 0.9998 ** 8)
    assert new.optim_wrapper.optimizer.lr == 1e-3  # lr: auto_scale_lr
    assert changes['train_cfg.max_iters'] == (16800, 2100)
    assert 'param_scheduler.0.begin' not in changes  # 0 stays 0


def test_paper_coco_schedule_on_8_and_on_half_a_batch():
    cfg = Config.fromfile(COCO)
    new, _ = scale_schedule(cfg, 64, 512)
    assert new.train_cfg.max_iters == 4008  # 32,060 / 8 = 4,007.5
    assert new.train_cfg.val_interval == 573  # 4,580 / 8 = 572.5
    # int(32,060 * 0.7) = 22,442 -> 2,805.25; int(32,060 * 0.9) = 28,854
    # -> 3,606.75
    assert new.param_scheduler[1].milestones == [2805, 3607]
    # one process with 16 + 16 images: twice the iterations
    new, _ = scale_schedule(cfg, 64, 32)
    assert new.train_cfg.max_iters == 64120
    assert new.param_scheduler[0].end == 1000


def test_same_batch_and_epoch_based_schedules_are_left_alone():
    cfg = Config.fromfile(VOC)
    new, changes = scale_schedule(cfg, 64, 64)
    assert changes == {} and new.to_dict() == cfg.to_dict()
    epoch_cfg = Config(dict(
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=12),
        param_scheduler=[dict(type='MultiStepLR', milestones=[8, 11])],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1))))
    new, changes = scale_schedule(epoch_cfg, 16, 128)
    assert changes == {} and new.to_dict() == epoch_cfg.to_dict()
    # an epoch-based scheduler in an iteration loop (mmengine's default
    # by_epoch=True) and an unbounded end are not touched either
    mixed = Config(dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=800),
        param_scheduler=[dict(type='MultiStepLR', milestones=[2, 3]),
                         dict(type='LinearLR', by_epoch=False, begin=0)]))
    new, _ = scale_schedule(mixed, 16, 64)
    assert new.train_cfg.max_iters == 200
    assert new.param_scheduler[0].milestones == [2, 3]
    assert 'end' not in new.param_scheduler[1]
    with pytest.raises(ValueError, match='positive'):
        scale_schedule(mixed, 0, 64)


def test_batch_layout_of_the_configs():
    voc = Config.fromfile(VOC)
    assert batch_layout(voc) == [('det', 32), ('seg', 32)]
    assert format_layout(batch_layout(voc), 8) == \
        '8×(32 det + 32 seg) = 512 images per step'
    toy = Config.fromfile(TOY_CONFIG)
    assert batch_layout(toy) == [('det', 8), ('seg', 8)]
    assert images_per_step(toy, 2) == 32
    toy.train_dataloader.batch_size = 8
    with pytest.raises(ValueError, match='sampler.batch_size'):
        batch_layout(toy)
    assert schedule_epochs(2100, 8, [('det', 32), ('seg', 32)],
                           [5000, 7680]) == [('det', 5000, 107.52),
                                             ('seg', 7680, 70.0)]


def test_mmengine_real_batch_is_processes_times_the_sampler_batch(
        monkeypatch):
    """mmengine scales the lr by world_size × train_dataloader.batch_size;
    with the MultiSourceSampler each process draws its own 32 + 32 images,
    so that product is the images per step (2 faked ranks)."""
    from mmdet.datasets.samplers import multi_source_sampler as mss
    from torch.utils.data import ConcatDataset
    det, seg = list(range(100)), list(range(200))
    dataset = ConcatDataset([det, seg])
    batches = []
    for rank in (0, 1):
        monkeypatch.setattr(mss, 'get_dist_info', lambda r=rank: (r, 2))
        sampler = mss.MultiSourceSampler(dataset, batch_size=64,
                                         source_ratio=[1, 1], seed=0)
        it = iter(sampler)
        batches.append([next(it) for _ in range(64)])
    for b in batches:  # 32 detection indices, then 32 segmentation ones
        assert sum(i < 100 for i in b) == 32 and sum(i >= 100 for i in b) == 32
    step = batches[0] + batches[1]
    assert len(set(step)) == 128 == 2 * 64  # no image twice in a step


def test_launcher_world_size():
    assert launcher_world_size('none', {}) == 1
    assert launcher_world_size('pytorch', {'WORLD_SIZE': '8'}) == 8
    assert launcher_world_size('slurm', {'SLURM_NTASKS': '16'}) == 16
    assert launcher_world_size('mpi', {'OMPI_COMM_WORLD_SIZE': '4'}) == 4
    with pytest.raises(RuntimeError, match='WORLD_SIZE'):
        launcher_world_size('pytorch', {})
    with pytest.raises(ValueError, match='launcher'):
        launcher_world_size('ray', {})


def _scaled_lr(cfg, world_size):
    """The lr mmengine's Runner.scale_lr writes into the optimizer."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner
    model = torch.nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    fake_runner = SimpleNamespace(
        _train_dataloader=cfg.train_dataloader, world_size=world_size,
        param_schedulers=cfg.param_scheduler,
        logger=SimpleNamespace(info=lambda *a, **k: None))
    Runner.scale_lr(fake_runner, wrapper, cfg.auto_scale_lr)
    return wrapper.optimizer.param_groups[0]['lr']


def test_train_py_scales_lr_and_budget_for_8_processes(monkeypatch):
    import train
    monkeypatch.setenv('WORLD_SIZE', '8')
    args = train.parse_args([VOC, '--launcher', 'pytorch', '--auto-scale-lr',
                             '--scale-schedule'])
    cfg, schedule = train.prepare(args)  # world size from $WORLD_SIZE
    assert cfg.auto_scale_lr.enable is True
    assert cfg.train_cfg.max_iters == 2100
    assert cfg.param_scheduler[1].milestones == [1470, 1890]
    assert _scaled_lr(cfg, 8) == pytest.approx(8e-3)  # 1e-3 × 512 / 64
    changes = schedule.pop('changes')
    assert schedule == dict(base_batch_size=64, lr_scaled=True,
                            schedule_scaled=True, expected_world_size=8)
    assert changes['train_cfg.max_iters'] == (16800, 2100)
    # one process: nothing changes (the paper's layout)
    cfg1, s1 = train.prepare(train.parse_args(
        [VOC, '--auto-scale-lr', '--scale-schedule']))
    assert cfg1.train_cfg.max_iters == 16800 and not s1['schedule_scaled']
    assert _scaled_lr(cfg1, 1) == pytest.approx(1e-3)
    # without the flags: N× the epochs at the same lr, as mmdet would
    cfg0 = train.build_cfg(train.parse_args([VOC]), world_size=8)
    assert cfg0.train_cfg.max_iters == 16800
    assert _scaled_lr(cfg0, 8) == pytest.approx(1e-3)


def test_train_py_flags_need_auto_scale_lr_in_the_config(tmp_path):
    import train
    bare = tmp_path / 'bare.py'
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.pop('auto_scale_lr')
    cfg.dump(str(bare))
    for flag in ('--auto-scale-lr', '--scale-schedule'):
        with pytest.raises(RuntimeError, match=f'{flag} needs `auto_scale_lr'):
            train.build_cfg(train.parse_args([str(bare), flag]), 2)


def test_one_process_run_logs_layout_lr_and_epochs(toy_root, tmp_path):
    """A real run with the tiny toy config: 1×(2 det + 2 seg) images per
    step against a base of 8 (set below) halves the lr and doubles the
    iterations; the log line states both and the epochs."""
    import train
    work_dir = str(tmp_path / 'run')
    options = tiny_overrides(toy_root, work_dir, max_iters=3)
    options.pop('param_scheduler')  # the toy's LinearLR + MultiStepLR stay
    options['auto_scale_lr.base_batch_size'] = 8
    argv = [TOY_CONFIG, '--work-dir', work_dir, '--auto-scale-lr',
            '--scale-schedule', '--cfg-options']
    argv += [f'{k}={v}' for k, v in options.items()]
    runner = train.main(argv)
    assert runner.iter == 6  # 3 × 8 / 4
    # 1e-3 (AdamW) × 4 / 8, read before the warm-up's factor
    assert runner.optim_wrapper.param_groups[0]['initial_lr'] == \
        pytest.approx(5e-4)
    hook = next(h for h in runner.hooks
                if isinstance(h, ScheduleSummaryHook))
    # 6 steps × 2 images over the 8 images of each split: 1.5 epochs
    assert hook.summary['layout'] == [('det', 2), ('seg', 2)]
    assert hook.summary['epochs'] == [('det', 8, 1.5), ('seg', 8, 1.5)]
    log = open(_log_file(work_dir)).read()
    assert ('batch layout 1×(2 det + 2 seg) = 4 images per step (lr base 8);'
            ' lr 0.0005 (linear scaling, --auto-scale-lr); budget 6 '
            'iterations = 1.5 epochs of det (8 images), 1.5 of seg '
            '(8 images)') in log
    assert 'train_cfg.max_iters 3 -> 6' in log
    # every checkpoint records the layout; resuming it with another batch
    # (4 + 4 = 8 images per step: the base, so no scaling and max_iters 3)
    # would continue iteration 6 of a 3-iteration schedule: stopped
    ckpt = torch.load(osp.join(work_dir, 'iter_6.pth'), weights_only=True)
    assert ckpt['meta']['bombo_schedule'] == dict(
        world_size=1, per_source=[2, 2], images_per_step=4, max_iters=6,
        base_batch_size=8, lr_scaled=True, schedule_scaled=True)
    resume = argv[:4] + ['--resume'] + argv[4:]  # before --cfg-options
    with pytest.raises(RuntimeError, match=(
            r'trained with 1 process\(es\) × 2 \+ 2 = 4 images per step, '
            r'max_iters 6, --scale-schedule, now 1 process\(es\) × 4 \+ 4 '
            r'= 8 images per step, max_iters 3')):
        train.main(resume + ['train_dataloader.batch_size=8',
                             'train_dataloader.sampler.batch_size=8'])
    # the same layout resumes (at its end: nothing left to train)
    runner = train.main(resume)
    assert runner.iter == 6


def _log_file(work_dir):
    import glob
    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(logs) == 1, logs
    return logs[0]


def test_help_shows_every_flag_with_its_default(tmp_path):
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools/train.py'),
                           '--help'], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(tmp_path) == []  # writes nothing
    import train
    parser_help = proc.stdout
    for flag in ('--work-dir', '--amp', '--auto-scale-lr', '--scale-schedule',
                 '--resume', '--cfg-options', '--launcher', '--local_rank'):
        assert flag in parser_help
    assert parser_help.count('(default:') >= 8
    assert train  # importable without side effects


def _fake_runner(cfg, lines, max_iters=16800, lr=1e-3):
    loader = SimpleNamespace(
        batch_size=64, sampler=SimpleNamespace(num_per_source=[32, 32]),
        dataset=SimpleNamespace(datasets=[[0] * 5717, [0] * 7656]))
    return SimpleNamespace(
        train_dataloader=loader, cfg=cfg, max_iters=max_iters,
        optim_wrapper=SimpleNamespace(param_groups=[
            dict(lr=lr * 0.001, initial_lr=lr)]),
        logger=SimpleNamespace(info=lines.append))


def _resuming_runner(per_source, max_iters, resume=True):
    warnings = []
    loader = SimpleNamespace(batch_size=sum(per_source),
                             sampler=SimpleNamespace(
                                 num_per_source=per_source))
    return SimpleNamespace(
        train_dataloader=loader, max_iters=max_iters, _resume=resume,
        logger=SimpleNamespace(warning=warnings.append)), warnings


def test_resume_checks_the_saved_layout():
    """The layout saved with a checkpoint against the resuming run's: an
    error when either scaled its schedule, a warning when neither did,
    nothing for the same layout, for ``load_from`` or an old checkpoint."""
    saved_hook = ScheduleSummaryHook(base_batch_size=16,
                                     schedule_scaled=True)
    ckpt = {'meta': {}}
    saved_hook.before_save_checkpoint(_resuming_runner([4, 4], 200)[0], ckpt)
    assert ckpt['meta']['bombo_schedule']['images_per_step'] == 8
    plain = ScheduleSummaryHook(base_batch_size=16)
    runner, warnings = _resuming_runner([8, 8], 100)
    with pytest.raises(RuntimeError, match='4 \\+ 4 = 8 images per step, '
                       'max_iters 200, --scale-schedule, now 1 process'):
        plain.after_load_checkpoint(runner, ckpt)
    # same layout / load_from (no resume) / a checkpoint without the record
    plain.after_load_checkpoint(_resuming_runner([4, 4], 200)[0], ckpt)
    plain.after_load_checkpoint(_resuming_runner([8, 8], 100, False)[0], ckpt)
    plain.after_load_checkpoint(runner, {'meta': {}})
    # neither run scaled: a warning, the run goes on
    unscaled = {'meta': {}}
    plain.before_save_checkpoint(_resuming_runner([4, 4], 200)[0], unscaled)
    plain.after_load_checkpoint(runner, unscaled)
    assert len(warnings) == 1 and 'now 1 process(es) × 8 + 8 = 16' in \
        warnings[0]
    # the resuming run scales: an error even if the saved one did not
    with pytest.raises(RuntimeError):
        saved_hook.after_load_checkpoint(runner, unscaled)


def test_summary_line_without_flags_and_a_wrong_world_size():
    cfg = Config.fromfile(VOC)
    lines = []
    ScheduleSummaryHook(base_batch_size=64).before_train(
        _fake_runner(cfg, lines))
    # 16,800 × 32 / 7,656 = 70.2; 16,800 × 32 / 5,717 = 94.0
    assert lines == [
        'batch layout 1×(32 det + 32 seg) = 64 images per step (lr base 64);'
        ' lr 0.001 (not scaled); budget 16,800 iterations = 70.2 epochs of '
        'seg (7,656 images), 94.0 of det (5,717 images) (iterations not '
        'scaled)']
    hook = ScheduleSummaryHook(base_batch_size=64, schedule_scaled=True,
                               expected_world_size=8)
    with pytest.raises(RuntimeError, match='scaled for 8 processes but 1'):
        hook.before_train(_fake_runner(cfg, []))
