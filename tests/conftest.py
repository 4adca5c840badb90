"""Shared fixtures: a tiny toy dataset and a tiny version of the toy config."""
import copy
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))

from mmengine.registry import init_default_scope  # noqa: E402

import bombo  # noqa: E402,F401  (registers every module)

init_default_scope('mmdet')

TOY_CONFIG = osp.join(ROOT, 'configs/toy/toy_r18_fpn_mtl.py')


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """A tiny toy dataset (8 det, 8 seg, 4 val images of 128x128)."""
    from make_toy_dataset import generate
    out = str(tmp_path_factory.mktemp('toy'))
    generate(out, seed=0, size=128, num_det=8, num_seg=8, num_val=4)
    return out


def tiny_overrides(toy_root: str, work_dir: str, max_iters: int = 4) -> dict:
    """cfg-options turning the toy config into a seconds-long run."""
    root = toy_root.rstrip('/') + '/'
    return {
        'work_dir': work_dir,
        'model.backbone.base_channels': 8,
        'model.neck.in_channels': [8, 16, 32, 64],
        'model.neck.out_channels': 16,
        'model.bbox_head.in_channels': 16,
        'model.bbox_head.feat_channels': 16,
        'model.seg_head.in_channels': 16,
        'model.seg_head.feat_channels': 16,
        'train_dataloader.batch_size': 4,
        'train_dataloader.sampler.batch_size': 4,
        'train_dataloader.dataset.datasets.0.data_root': root,
        'train_dataloader.dataset.datasets.1.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_dataloader.batch_size': 4,
        'model.test_cfg.score_thr': 0.0,
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': max_iters,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0,
                                 by_epoch=False)],
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': max(max_iters // 2, 1),
        'default_hooks.checkpoint.max_keep_ckpts': 3,
    }


def tiny_cfg(toy_root: str, work_dir: str, max_iters: int = 4,
             config: str = TOY_CONFIG):
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(copy.deepcopy(tiny_overrides(toy_root, work_dir,
                                                     max_iters)))
    return cfg
