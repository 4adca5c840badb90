"""Every config parses, names registered modules, and the small ones build."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from conftest import ROOT

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/toy/*.py')) +
                 glob.glob(osp.join(ROOT, 'configs/bombo/**/*.py'),
                           recursive=True))
# every other config under configs/ (own data, toy ablations, ...)
ALL_CONFIGS = sorted(
    c for c in glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True)
    if '_base_' not in osp.relpath(c, ROOT).split(osp.sep))
OTHER_CONFIGS = sorted(set(ALL_CONFIGS) - set(CONFIGS))


def check_batch_layout(path, cfg):
    """``auto_scale_lr.base_batch_size`` is the layout the config's lr and
    schedule are for: the paper's 1×(32+32) = 64 images per step, the toy
    configs' 1×(8+8) = 16 (the RetinaNet toy teacher: 1×8), and on one
    process the dataloader holds exactly that batch (mmengine's real batch =
    world size × train_dataloader.batch_size)."""
    from bombo.utils.schedule import batch_layout, images_per_step
    rel = osp.relpath(path, osp.join(ROOT, 'configs'))
    assert cfg.auto_scale_lr.enable is False, rel
    base = cfg.auto_scale_lr.base_batch_size
    layout = batch_layout(cfg)
    if rel.startswith(('bombo/', 'own_data/')):
        assert base == 64, rel
        assert layout == [('det', 32), ('seg', 32)], rel
        assert images_per_step(cfg, 1) == base
    elif rel == 'toy/retinanet_r18_fpn_toy_det.py':
        assert base == 8 and layout == [('images', 8)]
    elif osp.dirname(rel) == 'toy':
        assert base == 16, rel
        assert layout == [('det', 8), ('seg', 8)], rel
    elif rel.startswith('toy/'):  # ablations: the toy lr's base, or their own
        assert base in (16, images_per_step(cfg, 1)), rel
    else:
        raise AssertionError(f'{rel}: no reference layout known; add it to '
                             'check_batch_layout and '
                             'docs/training_at_scale.md')


def test_every_config_is_checked():
    assert set(CONFIGS) | set(OTHER_CONFIGS) == set(ALL_CONFIGS)
    assert len(ALL_CONFIGS) >= 132


@pytest.mark.parametrize('path', OTHER_CONFIGS,
                         ids=[osp.relpath(c, ROOT) for c in OTHER_CONFIGS])
def test_other_configs_state_their_batch_layout(path):
    check_batch_layout(path, Config.fromfile(path))


def test_generated_configs_equal_the_committed_ones(tmp_path):
    """Regenerating configs/bombo/ changes nothing (the batch layout and
    auto_scale_lr live in the bases the templates inherit)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'generate_paper_configs',
        osp.join(ROOT, 'tools/misc/generate_paper_configs.py'))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    files = gen.build_files()
    committed = {osp.relpath(c, osp.join(ROOT, 'configs/bombo'))
                 for c in glob.glob(osp.join(ROOT, 'configs/bombo/**/*.py'),
                                    recursive=True)}
    assert set(files) == committed
    for name, text in files.items():
        with open(osp.join(ROOT, 'configs/bombo', name)) as f:
            assert f.read() == text, name


def test_every_paper_row_has_a_config():
    names = {osp.relpath(c, osp.join(ROOT, 'configs')) for c in CONFIGS}
    for ds in ('voc', 'coco'):
        for bb in ('r18_fpn', 'r50_pafpn', 'swin-t_pafpn', 'swin-b_pafpn'):
            for row in ('maskbox_c', 'maskbox_l', 'maskbox_lc', 'refined_c',
                        'refined_l', 'refined_lc', 'uteacher_ema',
                        'uteacher_pretrained', 'refined_pretrained'):
                assert f'bombo/m4b/{row}_{bb}_{ds}.py' in names
        for bb in ('r18_fpn', 'r50_pafpn', 'swin-t_pafpn', 'swin-b_pafpn',
                   'swin-l_pafpn'):
            assert f'bombo/mtl_{bb}_{ds}.py' in names
            assert f'bombo/bombo_{bb}_{ds}.py' in names
            for row in ('seg', 'seg_att', 'seg_att_object'):
                assert f'bombo/b4m/{row}_{bb}_{ds}.py' in names


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(c, ROOT) for c in CONFIGS])
def test_config_parses_and_names_registered_modules(path):
    cfg = Config.fromfile(path)
    check_batch_layout(path, cfg)
    assert MODELS.get(cfg.model.type) is not None
    for key in ('m4b', 'b4m'):
        sub = cfg.model.get(key)
        if sub:
            MODELS.build(sub)  # the branch itself is cheap to build
    if cfg.model.get('embed_head'):  # reads a fitted box-label file
        assert MODELS.get(cfg.model.embed_head.type) is not None
    if cfg.model.get('b4m'):
        assert cfg.model.b4m.feat_dim == cfg.model.seg_head.feat_channels
        if cfg.model.b4m.use_attention:
            assert cfg.model.seg_head.with_attention
    n = cfg.model.bbox_head.num_classes
    if cfg.model.type != 'PartialMultiTaskDetector':
        return  # e.g. the detection-only teacher of the M4B measurements
    assert cfg.model.seg_head.num_classes == n
    if 'voc' in osp.basename(path):
        assert n == 20
    if 'coco' in osp.basename(path):
        assert n == 80
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert 'SafeCheckpointHook' in hooks
    teacher = cfg.model.get('teacher') or {}
    needs_teacher = (cfg.model.get('b4m') or
                     (cfg.model.get('m4b') and
                      cfg.model.m4b.refiner.mode != 'mask_boxes'))
    if needs_teacher and teacher.get('type', 'ema') == 'ema':
        assert 'TeacherEMAHook' in hooks


@pytest.mark.parametrize('name', ['bombo/mtl_r18_fpn_voc.py',
                                  'bombo/bombo_r18_fpn_voc.py'])
def test_real_config_models_build(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    cfg.model.backbone.init_cfg = None  # no download here
    model = MODELS.build(cfg.model)
    assert model.seg_head.num_classes == 20
