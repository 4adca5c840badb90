"""One data_root, one num_classes and one class list reach every copy of a
config (bombo/utils/config.py), for --cfg-options and derived configs."""
import os.path as osp

import pytest

from bombo.utils.config import iter_datasets, load_config
from conftest import ROOT

VOC_BOMBO = osp.join(ROOT, 'configs/bombo/bombo_r18_fpn_voc.py')
COCO_BOMBO = osp.join(ROOT, 'configs/bombo/bombo_r18_fpn_coco.py')


def _all_strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _all_strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _all_strings(v)


def test_data_root_option_reaches_datasets_caches_and_evaluators():
    cfg = load_config(COCO_BOMBO, {'data_root': '/elsewhere/coco/'})
    strings = [s for k in cfg.keys() if k not in ('base_data_root',)
               for s in _all_strings(cfg[k])]
    assert not [s for s in strings if s.startswith('data/coco')]
    det = cfg.train_dataloader.dataset.datasets[0]
    assert det.data_root == '/elsewhere/coco/'
    assert det.pipeline[2].pseudo_mask_dir == '/elsewhere/coco/pseudo_masks/'
    assert cfg.val_evaluator[0].ann_file == \
        '/elsewhere/coco/annotations/instances_val2017.json'


def test_data_root_without_trailing_slash_and_nested_voc_datasets():
    cfg = load_config(VOC_BOMBO, {'data_root': 'mine/VOC'})
    roots = sorted({d['data_root'] for _, d in iter_datasets(cfg)})
    assert roots == ['mine/VOC/VOC2007/', 'mine/VOC/VOC2012/']
    assert len(list(iter_datasets(cfg))) == 6  # 2 det + 2 seg + val + test


def test_derived_config_sets_data_root_and_classes(tmp_path):
    derived = tmp_path / 'mine.py'
    derived.write_text(
        f"_base_ = ['{COCO_BOMBO}']\n"
        "data_root = 'my_data/'\n"
        "metainfo = dict(classes=('cat', 'dog', 'bird', 'fish', 'cow'))\n")
    cfg = load_config(str(derived))
    assert cfg.num_classes == 5
    for path, d in iter_datasets(cfg):
        assert d.data_root == 'my_data/', path
        assert tuple(d.metainfo['classes'])[-1] == 'cow', path
    assert {cfg.model.bbox_head.num_classes, cfg.model.seg_head.num_classes,
            cfg.model.m4b.refiner.num_classes,
            cfg.model.b4m.num_classes} == {5}


def test_num_classes_option_propagates():
    cfg = load_config(VOC_BOMBO, {'num_classes': 20})
    assert cfg.model.b4m.num_classes == 20
    with pytest.raises(ValueError, match='datasets.0.datasets.0 has 20 '
                       'classes but the model num_classes is 7'):
        load_config(VOC_BOMBO, {'num_classes': 7})


def test_one_head_changed_alone_is_a_clear_error():
    with pytest.raises(ValueError, match=r'model.bbox_head=5.*Set '
                       r'`num_classes = N`'):
        load_config(VOC_BOMBO, {'model.bbox_head.num_classes': 5})


def test_conflicting_num_classes_and_class_list():
    with pytest.raises(ValueError, match='set one of them only'):
        load_config(COCO_BOMBO, {'num_classes': 3,
                                 'metainfo': dict(classes=('a', 'b'))})


def test_unrelated_paths_are_not_rerooted():
    cfg = load_config(
        osp.join(ROOT, 'configs/bombo/m4b/refined_pretrained_r18_fpn_voc.py'),
        {'data_root': '/d/'})
    assert cfg.model.teacher.checkpoint.startswith('work_dirs/')


def test_copy_of_the_own_data_template_moves_everything(tmp_path):
    mine = tmp_path / 'mine.py'
    template = osp.join(ROOT, 'configs/own_data/bombo_r18_fpn_own_coco.py')
    mine.write_text(f"_base_ = ['{template}']\n"
                    "data_root = '/srv/shapes/'\n"
                    "metainfo = dict(classes=('a', 'b', 'c', 'd'))\n")
    cfg = load_config(str(mine))
    for path, d in iter_datasets(cfg):
        assert d.data_root == '/srv/shapes/', path
        assert d.metainfo['classes'] == ('a', 'b', 'c', 'd'), path
    det = cfg.train_dataloader.dataset.datasets[0]
    assert det.pipeline[2].pseudo_mask_dir == '/srv/shapes/pseudo_masks/'
    assert cfg.val_evaluator[0].ann_file == '/srv/shapes/annotations/val.json'
    assert cfg.model.bbox_head.num_classes == 4
    assert cfg.model.m4b.refiner.num_classes == 4
