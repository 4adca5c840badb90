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
