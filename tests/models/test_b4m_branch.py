"""Box-for-Mask wired into the multi-task detector (L_B4M of Eq. 1)."""
import copy
import math
import os.path as osp

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.dataset import pseudo_collate

from conftest import ROOT, tiny_cfg

B4M_CONFIG = osp.join(ROOT, 'configs/toy/toy_r18_fpn_b4m.py')


def build(toy_root, tmp_path, **b4m):
    cfg = tiny_cfg(toy_root, str(tmp_path), config=B4M_CONFIG)
    cfg.model.b4m.feat_dim = cfg.model.seg_head.feat_channels
    cfg.model.b4m.update(b4m)
    det = cfg.train_dataloader.dataset.datasets[0]
    # GrabCut in the pipeline (online) instead of the offline cache
    det.pipeline[2] = dict(type='LoadPseudoMask', pseudo_mask_dir='unused',
                           online=True)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.set_teacher(copy.deepcopy(model))
    return (model, DATASETS.build(det),
            DATASETS.build(cfg.train_dataloader.dataset.datasets[1]), cfg)


def losses_of(model, items):
    data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)), True)
    return model.loss(data['inputs'], data['data_samples'])


def test_det_images_get_pseudo_mask_and_box_mask(toy_root, tmp_path):
    _, det_ds, _, _ = build(toy_root, tmp_path)
    s = det_ds[0]['data_samples']
    box = s.gt_box_mask.sem_seg[0]
    coarse = s.gt_sem_seg.sem_seg[0]
    assert box.shape == coarse.shape == s.img_shape
    # M^c is cut by M^b: no object pixel outside every box
    assert not ((coarse > 0) & (coarse != 255) & (box == 0)).any()
    assert (box > 0).any()


def test_all_three_losses_and_memory_bank(toy_root, tmp_path):
    model, det_ds, seg_ds, _ = build(toy_root, tmp_path)
    items = [det_ds[0], det_ds[1], seg_ds[0], seg_ds[1]]
    first = losses_of(model, items)
    for k in ('loss_b4m_seg', 'loss_b4m_attention', 'loss_b4m_object'):
        assert math.isfinite(float(first[k])), k
    # the bank was empty for the first batch: skipped and counted, loss 0
    assert float(first['loss_b4m_object']) == 0
    assert float(first['object_skip_no_positive']) > 0
    keys, labels = model.b4m.bank.all_keys()
    assert len(keys) > 0
    assert torch.allclose(keys.norm(dim=1), torch.ones(len(keys)), atol=1e-5)
    second = losses_of(model, items)
    assert float(second['object_triplets']) > 0
    loss, _ = model.parse_losses(second)
    loss.backward()
    att = model.seg_head.conv_attention.weight.grad
    assert att is not None and att.abs().sum() > 0


def test_b4m_losses_are_weighted_by_lambda(toy_root, tmp_path):
    model, det_ds, seg_ds, cfg = build(toy_root, tmp_path, use_object=False)
    model.eval()
    items = [det_ds[0], seg_ds[0]]
    with torch.no_grad():
        l1 = losses_of(model, items)
        model.seg_weight = 2.0
        l2 = losses_of(model, items)
    for k in ('loss_b4m_seg', 'loss_b4m_attention', 'loss_seg'):
        assert torch.allclose(l2[k], 2 * l1[k]), k
    assert model.b4m.bank is None and 'loss_b4m_object' not in l1


def test_table4_switches_and_clear_errors(toy_root, tmp_path):
    model, det_ds, seg_ds, _ = build(toy_root, tmp_path, use_attention=False,
                                     use_object=False)
    losses = losses_of(model, [det_ds[0], seg_ds[0]])
    assert {k for k in losses if k.startswith('loss_b4m')} == {'loss_b4m_seg'}
    model.seg_head.with_attention = False
    model.b4m.use_attention = True
    model.b4m.loss_attention = MODELS.build(dict(type='AttentionMSELoss'))
    with pytest.raises(ValueError, match='with_attention'):
        losses_of(model, [det_ds[0], seg_ds[0]])
    item = copy.deepcopy(det_ds[0])
    del item['data_samples'].gt_sem_seg
    model.b4m.use_attention = False
    with pytest.raises(KeyError, match='LoadPseudoMask'):
        losses_of(model, [item, seg_ds[0]])
    with pytest.raises(ValueError, match='disabled'):
        MODELS.build(dict(type='BoxForMaskBranch', num_classes=3, feat_dim=4,
                          use_seg=False, use_attention=False,
                          use_object=False))


def test_bombo_runs_the_teacher_backbone_once_per_step(toy_root, tmp_path):
    """M4B and B4M both need the teacher on the segmentation images: its
    features are computed once and shared."""
    model, det_ds, seg_ds, _ = build(toy_root, tmp_path)
    model.m4b = MODELS.build(dict(
        type='MaskForBoxBranch', loss_mode='L',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=3)))
    teacher = model.get_teacher()
    calls = []
    original = teacher.extract_feat
    teacher.extract_feat = lambda x: calls.append(x.shape) or original(x)
    losses = losses_of(model, [det_ds[0], seg_ds[0], seg_ds[1]])
    assert len(calls) == 1 and calls[0][0] == 2
    assert 'loss_m4b_bbox' in losses and 'loss_b4m_seg' in losses
    assert model.__dict__['_teacher_cache'] == {}


def test_teacher_runs_only_what_the_branches_read(toy_root, tmp_path):
    """BoMBo step: the teacher's semantic head runs up to z (no logits, no
    attention), its detection head once, its backbone once, all in
    inference mode."""
    model, det_ds, seg_ds, _ = build(toy_root, tmp_path)
    model.m4b = MODELS.build(dict(
        type='MaskForBoxBranch', loss_mode='L',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes=3)))
    teacher = model.get_teacher()
    calls = {}

    def spy(name):
        def hook(module, args, out):
            calls[name] = calls.get(name, 0) + 1
            assert torch.is_inference_mode_enabled(), name
        return hook

    for name in ('seg_head.conv_logits', 'seg_head.conv_attention',
                 'seg_head.convs.0', 'bbox_head', 'backbone'):
        teacher.get_submodule(name).register_forward_hook(spy(name))
    losses_of(model, [det_ds[0], seg_ds[0], seg_ds[1]])
    assert calls == {'seg_head.convs.0': 1, 'bbox_head': 1, 'backbone': 1}


def test_student_keys_reuse_the_l_seg_features(toy_root, tmp_path,
                                               monkeypatch):
    """teacher_keys=False: the keys are the student's z of the L_seg pass
    (detached), no extra pass, no teacher needed."""
    from bombo.models.task_modules import b4m_branch
    model, det_ds, seg_ds, _ = build(toy_root, tmp_path, teacher_keys=False)
    model.set_teacher(None)
    seen, outs = [], []
    original = b4m_branch.segmentation_keys
    monkeypatch.setattr(b4m_branch, 'segmentation_keys',
                        lambda z, seg, **kw: seen.append(z) or
                        original(z, seg, **kw))
    model.seg_head.register_forward_hook(
        lambda m, a, out: outs.append(out['feats']))
    extract = []
    original_extract = model.extract_feat
    model.extract_feat = lambda x: extract.append(len(x)) or \
        original_extract(x)
    losses = losses_of(model, [det_ds[0], seg_ds[0], seg_ds[1]])
    assert extract == [1, 2]  # the two sub-batches, nothing more
    assert len(outs) == 2  # B4M on the det image, L_seg on the seg images
    assert len(seen) == 1 and torch.equal(seen[0], outs[1].detach())
    assert not seen[0].requires_grad
    assert len(model.b4m.bank.all_keys()[0]) > 0
    assert math.isfinite(float(losses['loss_b4m_object']))
