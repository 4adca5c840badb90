"""Every place bombo loads a checkpoint names the converter when torch's
weights-only loader refuses the file, and takes the converted file."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.logging import HistoryBuffer

from bombo.apis import PartialDetInferencer, init_detector
from bombo.engine import (UnsafeCheckpointError, checkpoint_errors,
                          convert_checkpoint, load_checkpoint_safe)
from conftest import ROOT, tiny_cfg

import test as test_tool  # tools/test.py (tools/ is on sys.path)


@pytest.fixture(scope='module')
def toy_checkpoints(toy_root, tmp_path_factory):
    """The tiny toy model saved as a plain mmdet run would (numpy objects
    and a HistoryBuffer in it), its converted copy and its config."""
    root = tmp_path_factory.mktemp('ckpt_io')
    cfg = tiny_cfg(toy_root, str(root / 'work_dir'))
    cfg.train_cfg.val_interval = 100
    config = str(root / 'tiny_toy.py')
    cfg.dump(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    buf = HistoryBuffer()
    buf.update(1.0)
    plain = str(root / 'plain.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': dict(
                    classes=('rectangle', 'ellipse', 'triangle'),
                    palette=np.array([[1, 2, 3]] * 3)),
                    'seed': np.int64(0)},
                'message_hub': {'log_scalars': {'train/loss': buf}}}, plain)
    safe = str(root / 'safe.pth')
    convert_checkpoint(plain, safe)
    return dict(config=config, plain=plain, safe=safe,
                state_dict=model.state_dict())


def _assert_names_converter(err, path):
    msg = str(err.value)
    assert f'{path} was not saved by bombo' in msg
    assert f'python tools/misc/convert_checkpoint.py {path} ' in msg
    assert 'trusted files only' in msg
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)


def test_load_checkpoint_safe(toy_checkpoints, tmp_path):
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint_safe(toy_checkpoints['plain'])
    _assert_names_converter(err, toy_checkpoints['plain'])
    assert 'HistoryBuffer' in str(err.value) or 'numpy' in str(err.value)
    state = load_checkpoint_safe(toy_checkpoints['safe'])['state_dict']
    for k, v in toy_checkpoints['state_dict'].items():
        assert torch.equal(state[k], v)
    with pytest.raises(FileNotFoundError):
        load_checkpoint_safe(str(tmp_path / 'none.pth'))
    # other errors pass through unchanged
    with pytest.raises(KeyError):
        with checkpoint_errors('x.pth'):
            raise KeyError('not a checkpoint problem')


def test_tools_test_names_the_converter(toy_checkpoints, tmp_path):
    args = [toy_checkpoints['config'], toy_checkpoints['plain'],
            '--work-dir', str(tmp_path / 'plain')]
    with pytest.raises(UnsafeCheckpointError) as err:
        test_tool.main(args)
    _assert_names_converter(err, toy_checkpoints['plain'])
    metrics = test_tool.main([toy_checkpoints['config'],
                              toy_checkpoints['safe'],
                              '--work-dir', str(tmp_path / 'safe')])
    assert 'coco/bbox_mAP' in metrics


def test_inferencer_and_init_detector_name_the_converter(toy_checkpoints):
    with pytest.raises(UnsafeCheckpointError) as err:
        PartialDetInferencer(model=toy_checkpoints['config'],
                             weights=toy_checkpoints['plain'], device='cpu',
                             show_progress=False)
    _assert_names_converter(err, toy_checkpoints['plain'])
    with pytest.raises(UnsafeCheckpointError) as err:
        init_detector(toy_checkpoints['config'], toy_checkpoints['plain'],
                      device='cpu')
    _assert_names_converter(err, toy_checkpoints['plain'])

    model = init_detector(toy_checkpoints['config'],
                          toy_checkpoints['safe'])  # device: cpu here
    for k, v in toy_checkpoints['state_dict'].items():
        assert torch.equal(model.state_dict()[k], v)
    assert model.dataset_meta['classes'] == ('rectangle', 'ellipse',
                                             'triangle')
    inferencer = PartialDetInferencer(
        model=toy_checkpoints['config'], weights=toy_checkpoints['safe'],
        device='cpu', show_progress=False)
    image = osp.join(ROOT, 'demo', 'demo.jpg')
    if not osp.isfile(image):
        image = np.zeros((64, 64, 3), np.uint8)
    pred = inferencer(image, return_datasamples=False)['predictions'][0]
    assert 'sem_seg' in pred
