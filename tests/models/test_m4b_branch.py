"""Mask-for-Box wired into the multi-task detector (L_M4B of Eq. 1)."""
import copy
import math

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.dataset import pseudo_collate

from conftest import tiny_cfg
from bombo.models.task_modules.teacher import dense_predictions


def build(toy_root, tmp_path, m4b, teacher=None):
    cfg = tiny_cfg(toy_root, str(tmp_path))
    cfg.model.m4b = m4b
    if teacher is not None:
        cfg.model.teacher = teacher
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    seg_ds = DATASETS.build(cfg.train_dataloader.dataset.datasets[1])
    det_ds = DATASETS.build(cfg.train_dataloader.dataset.datasets[0])
    return model, det_ds, seg_ds


def run_loss(model, items):
    data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)), True)
    return model.loss(data['inputs'], data['data_samples'])


def branch(mode='mask_boxes', loss_mode='L', **kw):
    return dict(type='MaskForBoxBranch', loss_mode=loss_mode,
                refiner=dict(type='MaskForBoxRefiner', mode=mode,
                             num_classes=3), **kw)


@pytest.mark.parametrize('loss_mode,keys', [('L', {'loss_m4b_bbox'}),
                                            ('C', {'loss_m4b_cls'}),
                                            ('LC', {'loss_m4b_bbox', 'loss_m4b_cls'})])
def test_loss_modes_select_localisation_and_or_classification(
        toy_root, tmp_path, loss_mode, keys):
    model, det_ds, seg_ds = build(toy_root, tmp_path, branch(loss_mode=loss_mode))
    losses = run_loss(model, [det_ds[0], seg_ds[0], seg_ds[1]])
    got = {k for k in losses if k.startswith('loss_m4b')}
    assert got == keys
    for k in keys:
        assert math.isfinite(float(sum(losses[k])))
    assert float(losses['m4b_boxes_per_img']) > 0


def test_m4b_loss_equals_head_loss_on_mask_boxes(toy_root, tmp_path):
    """L_M4B (mode L) is the detection head's regression loss against the
    circumscribed rectangles of the mask's components, and L_det is unchanged
    by adding the branch."""
    model, det_ds, seg_ds = build(toy_root, tmp_path, branch(loss_mode='LC'))
    model.eval()
    with torch.no_grad():
        items = [det_ds[0], seg_ds[0]]
        losses = run_loss(model, items)
        data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)), True)
        seg_sample = data['data_samples'][1]
        pseudo = model.m4b.pseudo_samples(model, data['inputs'][1:], [seg_sample])
        x = model.extract_feat(data['inputs'][1:])
        ref = model.bbox_head.loss(model.det_feats(x), pseudo)
    assert torch.allclose(sum(losses['loss_m4b_bbox']), sum(ref['loss_bbox']))
    assert torch.allclose(sum(losses['loss_m4b_cls']), sum(ref['loss_cls']))
    # every pseudo-box lies on the mask's labelled pixels' extent
    sem = seg_sample.gt_sem_seg.sem_seg[0]
    ys, xs = torch.nonzero((sem > 0) & (sem < 255), as_tuple=True)
    b = pseudo[0].gt_instances.bboxes
    assert len(b) > 0
    assert b[:, 0].min() >= xs.min() and b[:, 2].max() <= xs.max() + 1


def test_teacher_required_with_a_clear_message(toy_root, tmp_path):
    model, det_ds, seg_ds = build(toy_root, tmp_path, branch(mode='m4b'))
    with pytest.raises(RuntimeError, match='TeacherEMAHook'):
        run_loss(model, [det_ds[0], seg_ds[0]])


def test_m4b_with_a_teacher_and_dense_predictions(toy_root, tmp_path):
    model, det_ds, seg_ds = build(toy_root, tmp_path, branch(mode='m4b'))
    teacher = copy.deepcopy(model)
    model.set_teacher(teacher)
    losses = run_loss(model, [det_ds[0], seg_ds[0], seg_ds[1]])
    assert math.isfinite(float(sum(losses['loss_m4b_bbox'])))
    # the teacher gets no gradient and keeps its mode
    assert all(p.grad is None for p in teacher.parameters())
    data = model.data_preprocessor(pseudo_collate([copy.deepcopy(seg_ds[0])]), True)
    preds = dense_predictions(teacher, data['inputs'], data['data_samples'],
                              score_thr=0.0, topk=7)
    assert preds[0].scores.shape[1] == 3
    assert len(preds[0].bboxes) == 7 * 4  # topk per level, 4 levels


def test_pretrained_teacher_loads_a_checkpoint(toy_root, tmp_path):
    model, det_ds, seg_ds = build(toy_root, tmp_path, branch(mode='unbiased_teacher'))
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': {k: v + 1 if v.is_floating_point() else v
                               for k, v in model.state_dict().items()}}, ckpt)
    model2, _, _ = build(toy_root, tmp_path, branch(mode='unbiased_teacher'),
                         teacher=dict(type='pretrained', checkpoint=ckpt))
    teacher = model2.get_teacher()
    w = 'bbox_head.retina_cls.weight'
    assert torch.allclose(dict(teacher.named_parameters())[w],
                          dict(model.named_parameters())[w] + 1)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert w in dict(model2.named_parameters())  # the student is untouched
    assert not any(k.startswith('_teacher') for k in model2.state_dict())
    losses = run_loss(model2, [det_ds[0], seg_ds[0]])
    assert math.isfinite(float(sum(losses['loss_m4b_bbox'])))


def _pretrained(toy_root, tmp_path, state):
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save(state, ckpt)
    model, _, _ = build(toy_root, tmp_path, branch(mode='unbiased_teacher'),
                        teacher=dict(type='pretrained', checkpoint=ckpt))
    return model, ckpt


def test_pretrained_teacher_loads_identical_weights(toy_root, tmp_path):
    """A checkpoint of the same config (here a DDP-prefixed state dict, as
    a bare dict) gives a teacher with exactly its weights."""
    src, _, _ = build(toy_root, tmp_path, branch(mode='unbiased_teacher'))
    torch.manual_seed(1)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v + 3
             for k, v in src.state_dict().items()}
    model, _ = _pretrained(toy_root, tmp_path,
                           {'module.' + k: v for k, v in state.items()})
    teacher = model.get_teacher()
    got = teacher.state_dict()
    for k, v in state.items():
        assert torch.equal(got[k], v), k
    assert not torch.equal(model.state_dict()['backbone.conv1.weight'],
                           got['backbone.conv1.weight'])


def test_pretrained_teacher_names_missing_and_unexpected_keys(toy_root,
                                                              tmp_path):
    src, _, _ = build(toy_root, tmp_path, branch(mode='unbiased_teacher'))
    state = dict(src.state_dict())
    del state['bbox_head.retina_cls.weight']
    del state['seg_head.conv_logits.bias']
    state['neck.extra.weight'] = torch.zeros(1)
    state['b4m.bank.keys'] = torch.zeros(1)  # not a teacher part: ignored
    model, ckpt = _pretrained(toy_root, tmp_path, {'state_dict': state})
    with pytest.raises(RuntimeError) as err:
        model.get_teacher()
    msg = str(err.value)
    assert ckpt in msg
    assert '2 missing key(s): bbox_head.retina_cls.weight, ' \
           'seg_head.conv_logits.bias' in msg
    assert '1 unexpected key(s): neck.extra.weight' in msg
    assert 'b4m' not in msg


def test_pretrained_teacher_truncates_long_key_lists(toy_root, tmp_path):
    src, _, _ = build(toy_root, tmp_path, branch(mode='unbiased_teacher'))
    state = {k: v for k, v in src.state_dict().items()
             if not k.startswith('backbone.')}
    n = sum(k.startswith('backbone.') for k in src.state_dict())
    model, ckpt = _pretrained(toy_root, tmp_path, {'state_dict': state})
    with pytest.raises(RuntimeError,
                       match=rf'{n} missing key\(s\): backbone\..*'
                       rf'\(\+{n - 20} more\); 0 unexpected'):
        model.get_teacher()


def test_pretrained_teacher_refused_by_the_safe_loader(toy_root, tmp_path):
    """A plain mmengine checkpoint (numpy in it) is refused by
    weights_only=True: the error names the converter."""
    import numpy as np
    src, _, _ = build(toy_root, tmp_path, branch(mode='unbiased_teacher'))
    model, ckpt = _pretrained(toy_root, tmp_path, {
        'state_dict': src.state_dict(),
        'meta': {'seed': np.int64(0), 'hist': np.zeros(3)}})
    with pytest.raises(RuntimeError) as err:
        model.get_teacher()
    msg = str(err.value)
    assert f'python tools/misc/convert_checkpoint.py {ckpt} OUT' in msg
    assert 'weights_only=True' in msg


@pytest.mark.parametrize('loss_mode', ['L', 'C'])
def test_head_loss_skips_the_unused_tower_same_loss_and_grad(
        toy_root, tmp_path, loss_mode):
    """L_M4B with loss_mode 'L' ('C') runs no classification (regression)
    tower; the used loss and its gradients are those of the whole head."""
    from bombo.models.task_modules.m4b_branch import head_loss
    model, det_ds, _ = build(toy_root, tmp_path, branch(mode='mask_boxes'))
    data = model.data_preprocessor(
        pseudo_collate([copy.deepcopy(det_ds[i]) for i in range(2)]), True)
    samples = data['data_samples']
    key = 'loss_bbox' if loss_mode == 'L' else 'loss_cls'
    skipped = model.bbox_head.cls_convs if loss_mode == 'L' else \
        model.bbox_head.reg_convs
    calls = []
    skipped.register_forward_hook(lambda *a: calls.append(1))
    for conv in skipped:
        conv.register_forward_hook(lambda *a: calls.append(1))
    grads = []
    for fast in (False, True):
        model.zero_grad()
        x = model.det_feats(model.extract_feat(data['inputs']))
        calls.clear()
        if fast:
            losses = head_loss(model.bbox_head, x, samples,
                               cls=loss_mode == 'C', reg=loss_mode == 'L')
            assert not calls  # the unused tower did not run
        else:
            losses = model.bbox_head.loss(x, samples)
        total = sum(losses[key])
        total.backward()
        grads.append((total.detach(), {
            n: p.grad.clone() for n, p in model.named_parameters()
            if p.grad is not None}))
    (l0, g0), (l1, g1) = grads
    assert torch.allclose(l0, l1, rtol=1e-6, atol=1e-7)
    assert g0.keys() == g1.keys()
    for n in g0:
        assert torch.allclose(g0[n], g1[n], rtol=1e-5, atol=1e-7), n


def test_head_loss_runs_whole_heads_with_batch_norm(toy_root, tmp_path):
    from bombo.models.task_modules.m4b_branch import head_loss
    cfg = tiny_cfg(toy_root, str(tmp_path))
    cfg.model.bbox_head.norm_cfg = dict(type='BN')
    model = MODELS.build(cfg.model).train()
    det_ds = DATASETS.build(cfg.train_dataloader.dataset.datasets[0])
    data = model.data_preprocessor(pseudo_collate([copy.deepcopy(det_ds[0])]),
                                   True)
    bn = model.bbox_head.cls_convs[0].bn
    before = bn.running_mean.clone()
    head_loss(model.bbox_head, model.det_feats(model.extract_feat(
        data['inputs'])), data['data_samples'], cls=False, reg=True)
    assert not torch.equal(bn.running_mean, before)  # the tower ran
