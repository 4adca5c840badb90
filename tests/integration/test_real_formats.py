"""Every family of paper configs, end to end, on data in the real on-disk
formats of VOC2007 + VOC2012, SBD and COCO 2017 (written by
``tools/make_real_format_data.py``: non-square JPEGs of several sizes, the
real XML / palette PNG / MATLAB / COCO json schemas, 20 VOC and 80 COCO
classes, 2007_* twins, difficult and crowd objects, grayscale and
unannotated images).

The suite follows README.md and docs/data_preparation.md literally, in a
working directory laid out as a user's checkout (``configs/``, ``tools/``
and the data under ``data/``): the preparation commands run as separate
processes exactly as documented; then, for every config, a few training
iterations (``tools/train.py``), evaluation of the checkpoint
(``tools/test.py``: bbox mAP, VOC mAP on VOC, mIoU) and ``--resume``. The
tools run in this process (their ``main(argv)`` with the same argv as the
command line) to save the ~4 s of imports a process costs; one config runs
as separate processes as well.

The only overrides are the ones the issue allows: pretrained initialisation
off, and sizes (4 images per step, 2 iterations, no workers).
"""
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

PY = sys.executable
# mmengine logs warnings of its own; these would mean a bombo defect
BAD_LOG_LINES = (
    'The dataset metainfo from the resumed checkpoint is different',
    'Traceback',
)

SIZES = [
    'train_dataloader.batch_size=4', 'train_dataloader.sampler.batch_size=4',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.batch_size=3', 'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.batch_size=3', 'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'train_cfg.max_iters=2', 'train_cfg.val_begin=1000',
    'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
]
NO_PRETRAINED = ['model.backbone.init_cfg=None']

FAMILIES_R18 = [
    'mtl_r18_fpn_{ds}',
    'm4b/maskbox_c_r18_fpn_{ds}', 'm4b/maskbox_l_r18_fpn_{ds}',
    'm4b/maskbox_lc_r18_fpn_{ds}',
    'm4b/refined_c_r18_fpn_{ds}', 'm4b/refined_l_r18_fpn_{ds}',
    'm4b/refined_lc_r18_fpn_{ds}',
    'm4b/uteacher_ema_r18_fpn_{ds}', 'm4b/uteacher_pretrained_r18_fpn_{ds}',
    'm4b/refined_pretrained_r18_fpn_{ds}',
    'b4m/seg_r18_fpn_{ds}', 'b4m/seg_att_r18_fpn_{ds}',
    'b4m/seg_att_object_r18_fpn_{ds}',
    'bombo_r18_fpn_{ds}',
    'matl_r18_fpn_{ds}',
]
CONFIGS = ([f.format(ds='voc') for f in FAMILIES_R18] +
           [f.format(ds='coco') for f in FAMILIES_R18] +
           ['bombo_r50_pafpn_coco', 'bombo_swin-t_pafpn_voc'])


def run(cmd, cwd):
    """A documented command, as a process; its output is shown on failure."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, (f'{" ".join(cmd)} failed:\n'
                                  f'{proc.stdout[-3000:]}\n'
                                  f'{proc.stderr[-3000:]}')
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A user's checkout: configs/ and tools/ of this repository, data/
    prepared with the documented commands."""
    ws = tmp_path_factory.mktemp('user')
    for name in ('configs', 'tools'):
        os.symlink(osp.join(ROOT, name), ws / name)
    run([PY, 'tools/make_real_format_data.py', '--out', 'data', '--seed',
         '0'], ws)
    # docs/data_preparation.md, in order
    run([PY, 'tools/convert_sbd.py', '--sbd-root', 'data/SBD/dataset',
         '--voc-root', 'data/VOCdevkit', '--workers', '2'], ws)
    out = run([PY, 'tools/make_splits.py', 'voc', '--voc-root',
               'data/VOCdevkit', '--seed', '0'], ws)
    assert 'twins' in out
    # COCO: a quarter per task, so that each half holds a few images
    run([PY, 'tools/make_splits.py', 'coco', '--coco-root', 'data/coco',
         '--seed', '0', '--fraction', '0.25'], ws)
    for ds in ('voc', 'coco'):
        out = run([PY, 'tools/make_pseudo_masks.py',
                   f'configs/bombo/bombo_r18_fpn_{ds}.py', '--workers', '2'],
                  ws)
        assert 'complete' in out, out
    run([PY, 'tools/fit_box_labels.py', '--voc-root',
         'data/VOCdevkit/VOC2007', 'data/VOCdevkit/VOC2012', '--split',
         'Partial/det_train', '--out', 'data/VOCdevkit/box_labels.json'], ws)
    run([PY, 'tools/fit_box_labels.py', '--ann-file',
         'data/coco/annotations/partial/det_train.json', '--out',
         'data/coco/box_labels.json'], ws)
    return ws


def _ids(path):
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def test_box_labels_hold_training_set_xcycwh_statistics(workspace):
    """Real VOC XML (``<size>``) and COCO json (``images[].height/width``)
    give fit_box_labels the image sizes, so the files carry TG-MATL's xcycwh
    relevance statistics: centre and size over the image size, in [0, 1]."""
    from bombo.models.task_modules.box_labels import BoxLabeler
    for path in ('data/VOCdevkit/box_labels.json', 'data/coco/box_labels.json'):
        fit = BoxLabeler.load(str(workspace / path)).relevance_fits['xcycwh']
        assert fit['mode'] == 'xcycwh'
        lo, hi = np.asarray(fit['feat_min']), np.asarray(fit['feat_max'])
        assert (lo >= 0).all() and (hi <= 1).all() and (lo < hi).all(), path
        assert np.isfinite(fit['mutual_info']).all(), path


def test_voc_split_is_leak_free_and_complete(workspace):
    voc = workspace / 'data' / 'VOCdevkit'
    val = _ids(voc / 'VOC2012/ImageSets/Partial/val.txt')
    assert val == _ids(voc / 'VOC2012/ImageSets/Segmentation/val.txt')
    twins = [i[5:] for i in val if i.startswith('2007_')]
    assert twins, 'the generated val set holds 2007_* twins'
    train07 = set()
    for task in ('det', 'seg'):
        train07 |= set(_ids(voc / f'VOC2007/ImageSets/Partial/'
                            f'{task}_train.txt'))
        train12 = set(_ids(voc / f'VOC2012/ImageSets/Partial/'
                           f'{task}_train.txt'))
        assert not train12 & set(val)
    assert not train07 & set(twins)
    # every VOC2007 trainval photo that is not a val twin is trained on
    trainval07 = set(_ids(voc / 'VOC2007/ImageSets/Main/trainval.txt'))
    assert train07 == trainval07 - set(twins)


def test_splits_from_the_authors_lists_layout(workspace, tmp_path):
    """--from-lists in the authors' layout (MXEdet / MXEseg) gives back the
    same split files."""
    voc = workspace / 'data' / 'VOCdevkit'
    lists = tmp_path / 'multas'
    before = {}
    for year in ('2007', '2012'):
        for task, name in (('det', 'MXEdet'), ('seg', 'MXEseg')):
            src = voc / f'VOC{year}/ImageSets/Partial/{task}_train.txt'
            before[src] = src.read_text()
            dst = lists / f'VOC{year}/ImageSets/{name}/train.txt'
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(src.read_text())
    val = voc / 'VOC2012/ImageSets/Partial/val.txt'
    before[val] = val.read_text()
    (lists / 'VOC2012/ImageSets/MXEseg/val.txt').write_text(val.read_text())
    run([PY, 'tools/make_splits.py', 'voc', '--voc-root', 'data/VOCdevkit',
         '--from-lists', str(lists)], workspace)
    for path, text in before.items():
        assert path.read_text() == text, path


def _metrics_ok(metrics, ds):
    keys = ['coco/bbox_mAP', 'coco/bbox_mAP_50', 'seg/mIoU']
    if ds == 'voc':
        keys.append('pascal_voc/mAP')
    for k in keys:
        assert k in metrics, (k, sorted(metrics)[:20])
        v = metrics[k]
        assert 0.0 <= v <= 1.0, (k, v)


def _losses(runner):
    """``{loss name: [value per logged iteration]}`` of a finished run (from
    its message hub: in one process every runner shares the visualizer that
    writes scalars.json)."""
    hub = runner.message_hub
    return {k[len('train/'):]: list(hub.get_scalar(k).data[0])
            for k in hub.log_scalars
            if k.startswith('train/') and 'loss' in k}


def _expected_losses(name):
    keys = {'loss_cls', 'loss_bbox', 'loss_seg'}
    if name.startswith('m4b/') or name.startswith('bombo'):
        mode = name.split('/')[-1].split('_')[1] if name.startswith('m4b/') \
            else 'l'
        if name.startswith(('m4b/uteacher', 'm4b/refined_pretrained')):
            mode = 'l'
        if 'l' in mode:
            keys.add('loss_m4b_bbox')
        if 'c' in mode:
            keys.add('loss_m4b_cls')
    if name.startswith(('b4m/', 'bombo')):
        keys.add('loss_b4m_seg')
        if 'seg_att' in name or name.startswith('bombo'):
            keys.add('loss_b4m_attention')
        if 'object' in name or name.startswith('bombo'):
            keys.add('loss_b4m_object')
    if name.startswith('matl'):
        keys.add('loss_embed')
    return keys


def _log_text(work_dir):
    text = ''
    for path in glob.glob(osp.join(work_dir, '*', '*.log')):
        with open(path) as f:
            text += f.read()
    return text


@pytest.fixture(scope='module')
def tools_in_process(workspace):
    """``tools/train.py`` and ``tools/test.py`` as modules, run from the
    user's working directory."""
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import test as test_tool
    import train as train_tool
    old = os.getcwd()
    os.chdir(workspace)
    yield train_tool, test_tool
    os.chdir(old)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_evaluates_and_resumes(name, workspace,
                                             tools_in_process):
    train_tool, test_tool = tools_in_process
    ds = 'voc' if name.endswith('_voc') else 'coco'
    config = f'configs/bombo/{name}.py'
    work_dir = f'work_dirs/{name}'
    options = SIZES + NO_PRETRAINED
    if 'pretrained' in name:
        teacher = f'work_dirs/mtl_r18_fpn_{ds}/iter_2.pth'
        if not osp.isfile(teacher):  # the baseline's test runs before
            train_tool.main([f'configs/bombo/mtl_r18_fpn_{ds}.py',
                             '--work-dir', osp.dirname(teacher),
                             '--cfg-options'] + options)
        options = options + [f'model.teacher.checkpoint={teacher}']

    runner = train_tool.main([config, '--work-dir', work_dir,
                              '--cfg-options'] + options)
    assert runner.iter == 2
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    losses = _losses(runner)
    assert len(losses['loss']) == 2
    for key, values in losses.items():
        assert all(math.isfinite(v) for v in values), (key, values)
    missing = _expected_losses(name) - set(losses)
    assert not missing, (missing, sorted(losses))

    metrics = test_tool.main([config, ckpt, '--work-dir',
                              f'{work_dir}/test', '--cfg-options'] + options)
    _metrics_ok(metrics, ds)
    # the layout the resume check compares: this run's real sampler split
    import torch
    record = torch.load(ckpt, weights_only=True)['meta']['bombo_schedule']
    loader = runner.train_dataloader
    per_source = list(getattr(loader.sampler, 'num_per_source', None) or
                      [loader.batch_size])
    assert record['per_source'] == per_source and \
        record['images_per_step'] == sum(per_source), record

    runner = train_tool.main([config, '--work-dir', work_dir, '--resume',
                              '--cfg-options'] + options +
                             ['train_cfg.max_iters=3'])
    assert runner.iter == 3
    assert osp.isfile(osp.join(work_dir, 'iter_3.pth'))
    log = _log_text(work_dir)
    assert 'Load checkpoint from' in log or 'resumed' in log.lower()
    for line in BAD_LOG_LINES:
        assert line not in log, line


def test_one_config_as_separate_processes(workspace):
    """The literal command lines (train, test, resume) on the BoMBo config."""
    config = 'configs/bombo/bombo_r18_fpn_voc.py'
    wd = 'work_dirs/cli_bombo_voc'
    options = SIZES + NO_PRETRAINED
    run([PY, 'tools/train.py', config, '--work-dir', wd, '--cfg-options'] +
        options, workspace)
    out = run([PY, 'tools/test.py', config, f'{wd}/iter_2.pth',
               '--work-dir', f'{wd}/test', '--cfg-options'] + options,
              workspace)
    assert 'pascal_voc/mAP' in out and 'seg/mIoU' in out
    run([PY, 'tools/train.py', config, '--work-dir', wd, '--resume',
         '--cfg-options'] + options + ['train_cfg.max_iters=3'], workspace)
    assert osp.isfile(workspace / wd / 'iter_3.pth')


def _own_data(workspace):
    """A user's own data from the generated COCO files: one image folder,
    a boxes-only json (no `segmentation`), a masks-only json (no `bbox` nor
    `area` on most annotations) and a val json, with a class list of their
    own (the categories present, renamed)."""
    coco = workspace / 'data' / 'coco'
    own = workspace / 'data' / 'my_data'
    (own / 'annotations').mkdir(parents=True)
    (own / 'images').mkdir()
    jsons = {
        'det_train': coco / 'annotations/partial/det_train.json',
        'seg_train': coco / 'annotations/partial/seg_train.json',
        'val': coco / 'annotations/instances_val2017.json'}
    loaded = {k: json.loads(p.read_text()) for k, p in jsons.items()}
    present = sorted({a['category_id'] for d in loaded.values()
                      for a in d['annotations']})
    names = {c: f'thing{i}' for i, c in enumerate(present)}
    for key, d in loaded.items():
        split_dir = 'val2017' if key == 'val' else 'train2017'
        for im in d['images']:
            dst = own / 'images' / im['file_name']
            if not dst.exists():
                os.symlink(coco / split_dir / im['file_name'], dst)
        for i, a in enumerate(d['annotations']):
            if key == 'det_train':
                a.pop('segmentation', None)
            elif key == 'seg_train' and i % 4:
                a.pop('bbox')
                a.pop('area')
        d['categories'] = [dict(id=c, name=names[c], supercategory='x')
                           for c in present]
        (own / 'annotations' / f'{key}.json').write_text(json.dumps(d))
    return tuple(names[c] for c in present)


def test_own_coco_data_from_the_template(workspace, tools_in_process):
    """docs/data_preparation.md, "Your own data": a copy of the template
    with data_root and a class list, nothing else."""
    train_tool, test_tool = tools_in_process
    classes = _own_data(workspace)
    user_cfg = workspace / 'my_configs' / 'mine.py'
    user_cfg.parent.mkdir()
    user_cfg.write_text(
        "_base_ = '../configs/own_data/bombo_r18_fpn_own_coco.py'\n"
        "data_root = 'data/my_data/'\n"
        f"metainfo = dict(classes={classes!r})\n")
    out = run([PY, 'tools/make_pseudo_masks.py', 'my_configs/mine.py',
               '--workers', '1'], workspace)
    assert 'data/my_data/pseudo_masks' in out and 'complete' in out
    options = SIZES + NO_PRETRAINED
    runner = train_tool.main(['my_configs/mine.py', '--work-dir',
                              'work_dirs/mine', '--cfg-options'] + options)
    assert runner.model.bbox_head.num_classes == len(classes)
    assert runner.model.seg_head.num_classes == len(classes)
    assert runner.train_dataloader.dataset.datasets[1].skipped[
        'bbox taken from the mask'] > 0
    metrics = test_tool.main(['my_configs/mine.py',
                              'work_dirs/mine/iter_2.pth', '--work-dir',
                              'work_dirs/mine/test', '--cfg-options'] +
                             options)
    _metrics_ok(metrics, 'coco')
    assert f'seg/IoU_{classes[-1]}' in metrics
    runner = train_tool.main(['my_configs/mine.py', '--work-dir',
                              'work_dirs/mine', '--resume', '--cfg-options']
                             + options + ['train_cfg.max_iters=3'])
    assert runner.iter == 3


def test_coco_config_reports_bbox_keys_without_any_detection(
        workspace, tools_in_process):
    """mmdet's CocoMetric returns no bbox key at all when nothing is
    detected; the COCO configs' FastCocoMetric reports 0.0."""
    train_tool, test_tool = tools_in_process
    ckpt = 'work_dirs/mtl_r18_fpn_coco/iter_2.pth'
    options = SIZES + NO_PRETRAINED
    if not osp.isfile(ckpt):
        train_tool.main(['configs/bombo/mtl_r18_fpn_coco.py', '--work-dir',
                         osp.dirname(ckpt), '--cfg-options'] + options)
    metrics = test_tool.main(['configs/bombo/mtl_r18_fpn_coco.py', ckpt,
                              '--work-dir', 'work_dirs/no_dets',
                              '--cfg-options'] + options +
                             ['model.test_cfg.score_thr=1.01'])
    assert metrics['coco/bbox_mAP'] == 0.0
    assert metrics['coco/bbox_mAP_50'] == 0.0
    assert 'seg/mIoU' in metrics
