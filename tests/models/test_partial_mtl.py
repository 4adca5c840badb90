import copy
import math

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.dataset import pseudo_collate

import bombo  # noqa: F401
from conftest import tiny_cfg


@pytest.fixture(scope='module')
def setup(toy_root, tmp_path_factory):
    cfg = tiny_cfg(toy_root, str(tmp_path_factory.mktemp('wd')))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    det_ds = DATASETS.build(cfg.train_dataloader.dataset.datasets[0])
    seg_ds = DATASETS.build(cfg.train_dataloader.dataset.datasets[1])
    val_ds = DATASETS.build(cfg.val_dataloader.dataset)
    return model, det_ds, seg_ds, val_ds


def batch(model, items, training=True):
    data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)),
                                   training=training)
    return data['inputs'], data['data_samples']


def losses_of(model, items):
    # eval mode: BN uses running stats, so a sample's features do not depend
    # on the other samples of its sub-batch
    model.eval()
    with torch.no_grad():
        inputs, samples = batch(model, items)
        return model.loss(inputs, samples)


def total(v):
    return sum(v) if isinstance(v, (list, tuple)) else v


def test_losses_are_routed_by_annotated_task(setup):
    model, det_ds, seg_ds, _ = setup
    det = [det_ds[0], det_ds[1]]
    seg = [seg_ds[0], seg_ds[1]]
    mixed = losses_of(model, det + seg)
    det_only = losses_of(model, det)
    seg_only = losses_of(model, seg)
    for k in ('loss_cls', 'loss_bbox'):
        assert torch.allclose(total(mixed[k]), total(det_only[k]))
    assert torch.allclose(mixed['loss_seg'], seg_only['loss_seg'])
    # the masks of detection images and the boxes of segmentation images are
    # never used: a batch of one task gives exactly zero for the other
    assert total(det_only['loss_seg']) == 0
    assert total(seg_only['loss_det_unused']) == 0
    for v in mixed.values():
        assert math.isfinite(float(total(v)))


def test_seg_weight_is_lambda_of_eq1(setup, toy_root, tmp_path):
    model, det_ds, seg_ds, _ = setup
    cfg = tiny_cfg(toy_root, str(tmp_path))
    cfg.model.seg_weight = 2.0
    model2 = MODELS.build(cfg.model)
    model2.load_state_dict(model.state_dict())
    items = [det_ds[0], seg_ds[0]]
    l1, l2 = losses_of(model, items), losses_of(model2, items)
    assert torch.allclose(l2['loss_seg'], 2 * l1['loss_seg'])
    assert torch.allclose(total(l2['loss_cls']), total(l1['loss_cls']))


def test_train_step_updates_shared_and_both_heads(setup):
    model, det_ds, seg_ds, _ = setup
    model = copy.deepcopy(model).train()
    inputs, samples = batch(model, [det_ds[0], seg_ds[0]])
    losses = model.loss(inputs, samples)
    loss, _ = model.parse_losses(losses)
    loss.backward()
    for name in ('backbone.conv1.weight', 'bbox_head.retina_cls.weight',
                 'seg_head.conv_logits.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_no_nan_on_empty_boxes_and_all_ignore_masks(setup):
    model, det_ds, seg_ds, _ = setup
    det, seg = copy.deepcopy(det_ds[0]), copy.deepcopy(seg_ds[0])
    gi = det['data_samples'].gt_instances
    det['data_samples'].gt_instances = gi[torch.zeros(len(gi), dtype=torch.bool)]
    seg['data_samples'].gt_sem_seg.sem_seg[:] = 255
    model.train()
    inputs, samples = batch(model, [det, seg])
    losses = model.loss(inputs, samples)
    for k, v in losses.items():
        assert math.isfinite(float(total(v))), k
    assert float(losses['loss_seg']) == 0


def test_predict_gives_boxes_and_label_map_at_original_size(setup):
    model, _, _, val_ds = setup
    model.eval()
    with torch.no_grad():
        inputs, samples = batch(model, [val_ds[0], val_ds[1]], training=False)
        out = model.predict(inputs, samples)
    for s in out:
        assert 'bboxes' in s.pred_instances and 'scores' in s.pred_instances
        h, w = s.metainfo['ori_shape']
        assert s.pred_sem_seg.sem_seg.shape == (1, h, w)
        assert int(s.pred_sem_seg.sem_seg.max()) <= 3


def test_unknown_task_in_batch_is_rejected(setup):
    model, det_ds, _, _ = setup
    item = copy.deepcopy(det_ds[0])
    item['data_samples'].set_metainfo(dict(ann_task='boxes'))
    inputs, samples = batch(model, [item])
    with pytest.raises(ValueError, match='ann_task'):
        model.loss(inputs, samples)


# --------------------------------------------------------------------------
# a training step under autocast (as mmengine's AmpOptimWrapper runs it)
TOY_MODELS = ('mtl', 'm4b', 'b4m', 'bombo')
NUM_CLASSES = 6


def tiny_toy_model(name):
    """The toy config ``name`` at 8/16 channels with its teacher (a copy of
    the student, the EMA at its first update) and synthetic inputs (three
    sizes, two of them non-square, 3 detection + 3 segmentation images) of
    ``NUM_CLASSES`` classes: the config's ``num_classes`` reaches every head
    and branch through ``load_config``."""
    import os.path as osp
    import sys


    from conftest import ROOT
    sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
    from bench_train_step import synthetic_items
    from bombo.utils.config import load_config
    cfg = load_config(osp.join(ROOT, f'configs/toy/toy_r18_fpn_{name}.py'),
                      dict(num_classes=NUM_CLASSES, metainfo=dict(
                          classes=tuple(f'c{i}' for i in range(NUM_CLASSES)))))
    m = cfg.model
    m.backbone.base_channels = 8
    m.neck.in_channels = [8, 16, 32, 64]
    m.neck.out_channels = 16
    m.bbox_head.in_channels = m.bbox_head.feat_channels = 16
    m.seg_head.in_channels = m.seg_head.feat_channels = 16
    if m.get('b4m'):
        m.b4m.feat_dim = 16
    torch.manual_seed(0)
    model = MODELS.build(m)
    model.init_weights()
    with torch.no_grad():  # teacher scores above Algorithm 1's thresholds
        model.bbox_head.retina_cls.bias.normal_(0, 1)
        model.seg_head.conv_logits.weight.normal_(0, 1)
    model.set_teacher(copy.deepcopy(model))
    items = synthetic_items(3, 3, [(64, 96), (96, 64), (80, 80)],
                            NUM_CLASSES, seed=1)
    return model, items


@pytest.mark.parametrize('name', TOY_MODELS)
def test_train_step_under_cpu_autocast_bf16(name):
    model, items = tiny_toy_model(name)
    model.train()
    inputs, samples = batch(model, items)
    for step in range(2):  # the second step meets a filled memory bank
        model.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            losses = model.loss(inputs, samples)
        loss, logs = model.parse_losses(losses)
        for k, v in losses.items():
            for t in (v if isinstance(v, (list, tuple)) else [v]):
                assert torch.isfinite(t).all(), (k, t)
                if 'loss' in k:
                    assert t.dtype == torch.float32, (k, t.dtype)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert all(g.dtype == torch.float32 for g in grads)
    if name in ('m4b', 'bombo'):
        assert float(losses['m4b_boxes_per_img']) > 0
        assert float(total(losses['loss_m4b_bbox'])) > 0
    if name in ('b4m', 'bombo'):
        assert len(model.b4m.bank.all_keys()[0]) > 0
        assert model.b4m.bank.keys.dtype == torch.float32
