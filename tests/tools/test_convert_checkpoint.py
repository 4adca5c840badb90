"""tools/misc/convert_checkpoint.py: checkpoints of a plain mmengine Runner
(no bombo hook) and with mmdet-like meta (real mmengine objects) become files
that load with ``torch.load(weights_only=True)`` with identical tensors."""
import importlib.util
import os
import os.path as osp
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner

from bombo.engine.checkpoint_io import (UnsafeCheckpointError,
                                        convert_checkpoint,
                                        load_state_dict_safe)
from bombo.engine.safe_checkpoint_hook import from_plain

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    'convert_checkpoint_tool', ROOT / 'tools' / 'misc' /
    'convert_checkpoint.py')
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


class TinyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        self.bn = torch.nn.BatchNorm1d(2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs)
        out = self.bn(self.fc(x))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


class TinyDataset(torch.utils.data.Dataset):
    # what mmdet datasets carry: tuples, a numpy palette, a numpy scalar
    metainfo = dict(classes=('a', 'b'), palette=np.array([[1, 2, 3],
                                                          [4, 5, 6]]),
                    version=np.int64(2))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.full((3,), float(i)))


@pytest.fixture(scope='module')
def plain_checkpoint(tmp_path_factory):
    """iter_2.pth of a plain mmengine Runner: CheckpointHook, no custom hook,
    no bombo hook."""
    work_dir = str(tmp_path_factory.mktemp('plain_runner'))
    torch.manual_seed(0)
    runner = Runner(
        model=TinyModel(), work_dir=work_dir,
        train_dataloader=dict(dataset=TinyDataset(), batch_size=4,
                              sampler=dict(type='DefaultSampler',
                                           shuffle=False),
                              collate_fn=pseudo_collate),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           by_epoch=False, interval=2)),
        default_scope='mmengine', experiment_name='plain_runner')
    runner.train()
    return osp.join(work_dir, 'iter_2.pth')


class NotPlain:
    """An object with no plain-value form: the converter drops it."""


def mmdet_like_checkpoint(path):
    """A checkpoint as mmdet writes one, built from real mmengine objects."""
    torch.manual_seed(1)
    state = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                torch.nn.BatchNorm2d(4)).state_dict()
    state['0.weight'][0, 0, 0, 0] = float('nan')  # NaN must survive too
    hub = MessageHub(f'convert_{osp.basename(path)}')
    for v in (1.0, 0.5, np.float32(0.25)):
        hub.update_scalar('train/loss', v)
    hub.update_info('dataset_meta', dict(classes=('cat', 'dog')))
    hub.update_info('np_info', np.arange(3))
    ckpt = dict(
        meta=dict(cfg=ConfigDict(model=dict(type='X', depth=np.int64(18))),
                  dataset_meta=dict(classes=('cat', 'dog'),
                                    palette=[(220, 20, 60), (119, 11, 32)]),
                  seed=np.int64(7), dtype=np.dtype('float32'),
                  epoch=3, odd=NotPlain()),
        state_dict=state,
        message_hub=hub.state_dict(),
        optimizer=dict(state={0: dict(step=np.float64(3.0),
                                      exp_avg=torch.ones(2))},
                       param_groups=[dict(lr=np.float64(0.1), params=[0])]))
    torch.save(ckpt, path)
    return ckpt


def _assert_same_state_dict(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        assert torch.equal(a[k].nan_to_num(), b[k].nan_to_num())
        assert torch.equal(a[k].isnan(), b[k].isnan())


def test_plain_runner_checkpoint_converts(plain_checkpoint, tmp_path):
    with pytest.raises(pickle.UnpicklingError):
        torch.load(plain_checkpoint, weights_only=True)
    # bombo's loaders say what to do instead of torch's long message
    with pytest.raises(UnsafeCheckpointError) as err:
        load_state_dict_safe(plain_checkpoint)
    msg = str(err.value)
    assert plain_checkpoint in msg and 'convert_checkpoint.py' in msg
    assert 'trusted' in msg

    out = str(tmp_path / 'sub' / 'safe.pth')
    report = tool.main([plain_checkpoint, out])
    assert report['already_safe'] is False and report['dropped'] == []
    assert torch.serialization.get_unsafe_globals_in_checkpoint(out) == []
    safe = torch.load(out, weights_only=True)
    orig = torch.load(plain_checkpoint, weights_only=False)
    assert set(safe) == set(orig)  # optimizer, schedulers, hub kept
    _assert_same_state_dict(orig['state_dict'], safe['state_dict'])
    assert isinstance(safe['state_dict'], OrderedDict)
    assert safe['state_dict']._metadata == orig['state_dict']._metadata
    assert load_state_dict_safe(out).keys() == orig['state_dict'].keys()
    # the message hub comes back as mmengine's objects (resume works)
    hub = from_plain(safe['message_hub'])
    buf = hub['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    np.testing.assert_allclose(buf.data[0],
                               orig['message_hub']['log_scalars'][
                                   'train/loss'].data[0])
    assert safe['meta']['dataset_meta']['classes'] == ('a', 'b')
    assert torch.equal(safe['meta']['dataset_meta']['palette'],
                       torch.tensor([[1, 2, 3], [4, 5, 6]]))
    assert safe['meta']['dataset_meta']['version'] == 2
    assert not [f for f in os.listdir(tmp_path / 'sub') if f != 'safe.pth']

    # a model loads the converted weights with mmengine's own loader
    model = TinyModel()
    from mmengine.runner import load_checkpoint
    load_checkpoint(model, out, map_location='cpu', strict=True)
    _assert_same_state_dict(model.state_dict(), orig['state_dict'])


def test_mmdet_like_meta_converts_and_drops_what_is_not_plain(tmp_path):
    src = str(tmp_path / 'mmdet.pth')
    orig = mmdet_like_checkpoint(src)
    out = str(tmp_path / 'safe.pth')
    report = convert_checkpoint(src, out)
    assert report['dropped'] == [('meta.odd',
                                  f'{__name__}.NotPlain')]
    assert report['tensors'] == len(orig['state_dict'])
    assert torch.serialization.get_unsafe_globals_in_checkpoint(out) == []
    safe = torch.load(out, weights_only=True)
    _assert_same_state_dict(orig['state_dict'], safe['state_dict'])
    meta = safe['meta']
    assert type(meta['cfg']) is dict and meta['cfg']['model']['depth'] == 18
    assert meta['seed'] == 7 and meta['dtype'] == 'float32'
    assert meta['dataset_meta']['palette'] == [(220, 20, 60), (119, 11, 32)]
    assert 'odd' not in meta and meta['epoch'] == 3
    assert safe['optimizer']['state'][0]['step'] == 3.0
    assert safe['optimizer']['param_groups'][0]['lr'] == 0.1
    info = from_plain(safe['message_hub'])['runtime_info']
    assert torch.equal(info['np_info'], torch.arange(3))

    # --state-dict-only keeps the weights and meta only; OUT is never
    # overwritten silently
    with pytest.raises(FileExistsError):
        convert_checkpoint(src, out)
    report = convert_checkpoint(src, out, state_dict_only=True,
                                overwrite=True)
    assert sorted(report['keys']) == ['meta', 'state_dict']
    assert set(torch.load(out, weights_only=True)) == {'meta', 'state_dict'}
    # an already-safe file converts too (and says so)
    again = str(tmp_path / 'again.pth')
    assert convert_checkpoint(out, again)['already_safe'] is True


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        convert_checkpoint(str(tmp_path / 'missing.pth'), str(tmp_path / 'o'))
    src = str(tmp_path / 'a.pth')
    torch.save({'weights': [1, 2]}, src)
    with pytest.raises(ValueError, match='state_dict'):
        convert_checkpoint(src, str(tmp_path / 'b.pth'))
    with pytest.raises(ValueError, match='another file'):
        convert_checkpoint(src, src)
    with pytest.raises(ValueError, match='no state dict'):
        load_state_dict_safe(src)
    # a bare state dict is a checkpoint too
    bare = str(tmp_path / 'bare.pth')
    torch.save(torch.nn.Linear(2, 2).state_dict(), bare)
    convert_checkpoint(bare, str(tmp_path / 'bare_safe.pth'))
    assert set(load_state_dict_safe(str(tmp_path / 'bare_safe.pth'))) == {
        'weight', 'bias'}
    assert set(load_state_dict_safe(bare)) == {'weight', 'bias'}


def test_help_warns_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        tool.parse_args(['--help'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert 'TRUSTED' in out and 'arbitrary code' in out
    assert '--state-dict-only' in out and '(default: False)' in out
    assert os.listdir(tmp_path) == []
