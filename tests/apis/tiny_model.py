"""A tiny toy model saved as a user would get it: a config file, a
checkpoint written by ``torch.save({'state_dict', 'meta'})`` and a non-square
PNG to run it on. Imported by the test modules of this folder (a
``conftest.py`` here would shadow tests/conftest.py's ``from conftest
import``); also gives them tests/visualization's ``assert_drawn``."""
import os.path as osp
import sys
from types import SimpleNamespace

import mmcv
import pytest
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                            'visualization'))

from conftest import tiny_cfg  # noqa: E402
from drawn import (CLASSES, PALETTE, assert_drawn,  # noqa: E402,F401
                   expected)

#: a non-square image: 96 x 160 (the toy config resizes to 128 x 128,
#: keep_ratio, so the prediction is rescaled to another aspect ratio)
IMAGE_SHAPE = (96, 160)


@pytest.fixture(scope='session')
def tiny_model(toy_root, tmp_path_factory):
    from mmdet.registry import MODELS
    root = tmp_path_factory.mktemp('tiny_model')
    cfg = tiny_cfg(toy_root, str(root / 'work_dir'))
    config = str(root / 'tiny_toy.py')
    cfg.dump(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    checkpoint = str(root / 'tiny.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': dict(classes=CLASSES,
                                              palette=PALETTE)}},
               checkpoint)
    # a toy validation image, stretched to a non-square size, as PNG so that
    # the drawn copy is not re-compressed
    toy = mmcv.imread(osp.join(toy_root, 'JPEGImages', '000016.jpg'))
    image = str(root / 'img.png')
    mmcv.imwrite(mmcv.imresize(toy, IMAGE_SHAPE[::-1]), image)
    return SimpleNamespace(cfg=cfg, config=config, checkpoint=checkpoint,
                           image=image)
