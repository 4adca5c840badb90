"""The batched (no per-image loop, few host synchronisations) versions of the
training step's pseudo-label paths give what the straightforward per-image,
per-class, per-level loops give (the versions before ``benchmarks/
bench_train_step.py``'s speed work, written out here as references):
``segmentation_keys``, ``ClassMemoryBank.push`` / ``all_keys``,
``dense_predictions``, and a whole BoMBo training step on fixed inputs."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.structures import InstanceData

from conftest import ROOT
from bombo.models.task_modules import memory_bank as mb
from bombo.models.task_modules import teacher as teacher_mod
from bombo.models.task_modules.memory_bank import (ClassMemoryBank,
                                                   segmentation_keys)
from bombo.models.task_modules.teacher import dense_predictions, eval_mode


# --------------------------------------------------------------------------
# references: the per-image / per-class / per-level loops
def reference_segmentation_keys(feats, gt_sem_seg, mode='component',
                                ignore_index=255, min_pixels=1,
                                connectivity=8):
    if gt_sem_seg.ndim == 4:
        gt_sem_seg = gt_sem_seg[:, 0]
    b, d, h, w = feats.shape
    keys, labels = [], []
    seg_np = gt_sem_seg.cpu().numpy()
    for i in range(b):
        objects, classes = [], []
        for j in np.unique(seg_np[i]).tolist():
            if j in (0, ignore_index):
                continue
            region = (seg_np[i] == j).astype(np.uint8)
            if mode == 'class':
                comps = [region]
            else:
                n, comp = cv2.connectedComponents(region,
                                                  connectivity=connectivity)
                comps = [(comp == k).astype(np.uint8) for k in range(1, n)]
            for m in comps:
                if m.sum() >= min_pixels:
                    objects.append(m)
                    classes.append(j - 1)
        if not objects:
            continue
        masks = torch.from_numpy(np.stack(objects)).to(feats)[:, None]
        if masks.shape[-2:] != (h, w):
            masks = F.interpolate(masks, size=(h, w), mode='area')
        weights = masks[:, 0].flatten(1)
        mean = weights @ feats[i].flatten(1).t() / weights.sum(
            1, keepdim=True).clamp_min(1e-12)
        keys.append(F.normalize(mean, dim=1))
        labels.append(torch.tensor(classes, dtype=torch.long))
    if not keys:
        return feats.new_zeros((0, d)), torch.zeros(0, dtype=torch.long)
    return torch.cat(keys), torch.cat(labels)


class ReferenceBank:
    """Per-class FIFO queues as Python lists."""

    def __init__(self, num_classes, size):
        self.q = [[] for _ in range(num_classes)]
        self.size = size

    def push(self, keys, labels):
        for k, c in zip(keys, labels.tolist()):
            self.q[c] = (self.q[c] + [k])[-self.size:]

    def all_keys(self, dim):
        keys = [k for q in self.q for k in q]
        labels = [c for c, q in enumerate(self.q) for _ in q]
        return (torch.stack(keys) if keys else torch.zeros(0, dim),
                torch.tensor(labels, dtype=torch.long))


@torch.no_grad()
def reference_dense_predictions(teacher, inputs, samples, score_thr=0.1,
                                topk=1000, feats=None):
    head = teacher.bbox_head
    with eval_mode(teacher, inference=False):
        x = teacher.det_feats(feats if feats is not None else
                              teacher.extract_feat(inputs))
        cls_scores, bbox_preds = head(x)[:2]
    sizes = [c.shape[-2:] for c in cls_scores]
    priors = head.prior_generator.grid_priors(sizes, device=inputs.device)
    nc = head.cls_out_channels
    results = []
    for i, sample in enumerate(samples):
        boxes, scores = [], []
        for lvl, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            s = cls[i].permute(1, 2, 0).reshape(-1, nc).sigmoid()
            d = reg[i].permute(1, 2, 0).reshape(
                -1, head.bbox_coder.encode_size)
            best = s.max(1).values
            keep = torch.nonzero(best > score_thr).squeeze(1)
            if len(keep) > topk:
                keep = keep[best[keep].topk(topk).indices]
            b = head.bbox_coder.decode(priors[lvl][keep], d[keep],
                                       max_shape=sample.img_shape)
            boxes.append(b if torch.is_tensor(b) else b.tensor)
            scores.append(s[keep])
        res = InstanceData()
        res.bboxes = torch.cat(boxes)
        res.scores = torch.cat(scores)
        results.append(res)
    return results


def random_masks(g, b, height, width, num_classes, ignore=0.05):
    """Blocky random label maps (several components per class), some
    ignored pixels."""
    seg = torch.randint(0, num_classes + 1,
                        (b, height // 4 + 1, width // 4 + 1), generator=g)
    seg = F.interpolate(seg[:, None].float(), size=(height, width),
                        mode='nearest')[:, 0].long()
    seg[torch.rand(seg.shape, generator=g) < ignore] = 255
    return seg


# --------------------------------------------------------------------------
@pytest.mark.parametrize('mode', ['component', 'class'])
@pytest.mark.parametrize('connectivity', [4, 8])
def test_segmentation_keys_equal_the_per_image_loop(mode, connectivity):
    g = torch.Generator().manual_seed(0)
    for trial in range(12):
        b = 1 + trial % 4
        height, width = 8 * (1 + trial % 5), 8 * (1 + (trial * 3) % 7)
        seg = random_masks(g, b, height, width, 1 + trial % 4)
        if trial == 5:
            seg[1:] = 0  # images without any object
        for stride in (1, 4, 3):  # 3: not a whole multiple (area path)
            h, w = max(1, height // stride), max(1, width // stride)
            feats = torch.randn(b, 5, h, w, generator=g)
            for min_pixels in (1, 5):
                ref = reference_segmentation_keys(
                    feats, seg, mode, min_pixels=min_pixels,
                    connectivity=connectivity)
                out = segmentation_keys(feats, seg, mode,
                                        min_pixels=min_pixels,
                                        connectivity=connectivity)
                assert torch.equal(out[1], ref[1])
                assert torch.allclose(out[0], ref[0], atol=1e-6)


def test_segmentation_keys_sparse_weights_equal_dense(monkeypatch):
    """Many objects: the weights become (object, cell, weight) triplets."""
    g = torch.Generator().manual_seed(1)
    seg = random_masks(g, 3, 32, 24, 3)
    feats = torch.randn(3, 4, 8, 6, generator=g)
    dense = segmentation_keys(feats, seg)
    monkeypatch.setattr(mb, 'DENSE_WEIGHTS_MAX', 0)
    sparse = segmentation_keys(feats, seg)
    assert torch.equal(dense[1], sparse[1])
    assert torch.allclose(dense[0], sparse[0], atol=1e-6)
    ref = reference_segmentation_keys(feats, seg)
    assert torch.allclose(sparse[0], ref[0], atol=1e-6)


def test_segmentation_keys_by_hand():
    """Two squares of class 1 (one touching diagonally a class-2 square),
    a 2x2 feature grid over a 4x4 mask: weights are cell fractions."""
    seg = torch.tensor([[[1, 1, 0, 0],
                         [1, 1, 0, 0],
                         [0, 0, 2, 0],
                         [0, 0, 0, 1]]])
    feats = torch.arange(8.).view(1, 2, 2, 2) + 1  # cells (z0, z1)
    keys, labels = segmentation_keys(feats, seg)
    assert labels.tolist() == [0, 0, 1]
    z = feats[0].flatten(1).t()  # (4 cells, 2)
    expect = torch.stack([z[0], z[3], z[3]])  # each object in one cell
    assert torch.allclose(keys, F.normalize(expect, dim=1))


def test_bank_push_and_all_keys_equal_a_list_fifo():
    g = torch.Generator().manual_seed(0)
    for size in (1, 2, 5):
        bank, ref = ClassMemoryBank(4, 3, size), ReferenceBank(4, size)
        for step in range(8):
            k = int(torch.randint(0, 14, (1, ), generator=g))
            keys = torch.randn(k, 3, generator=g)
            labels = torch.randint(0, 4, (k, ), generator=g)
            bank.push(keys, labels)
            ref.push(keys, labels)
            got, want = bank.all_keys(), ref.all_keys(3)
            assert torch.equal(got[1], want[1])
            assert torch.equal(got[0], want[0])
            for c in range(4):  # get() agrees with all_keys()
                assert torch.equal(bank.get(c), got[0][got[1] == c])


def _tiny_teacher(toy_root, tmp_path):
    from conftest import tiny_cfg
    cfg = tiny_cfg(toy_root, str(tmp_path))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():  # scores above 0.1 everywhere: selection matters
        model.bbox_head.retina_cls.bias.normal_(0, 2)
    return model


def _inputs(model, sizes):
    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(0)
    samples = []
    for h, w in sizes:
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                        ann_task='seg'))
        samples.append(s)
    pad = (max(h for h, _ in sizes), max(w for _, w in sizes))
    pad = tuple(-(-p // 32) * 32 for p in pad)
    inputs = torch.randn(len(sizes), 3, *pad, generator=g)
    for s in samples:
        s.set_metainfo(dict(batch_input_shape=pad, pad_shape=pad))
    return inputs, samples


@pytest.mark.parametrize('score_thr,topk', [(0.1, 1000), (0.3, 40),
                                            (0.0, 7), (0.99, 5)])
def test_dense_predictions_equal_the_per_image_loop(toy_root, tmp_path,
                                                    score_thr, topk):
    """Non-square images of several sizes in one padded batch (the clamp
    is per image); topk truncation on some levels, not on others; nothing
    above the threshold (0.99)."""
    teacher = _tiny_teacher(toy_root, tmp_path)
    inputs, samples = _inputs(teacher, [(64, 96), (96, 50), (40, 40)])
    out = dense_predictions(teacher, inputs, samples, score_thr, topk)
    ref = reference_dense_predictions(teacher, inputs, samples, score_thr,
                                      topk)
    assert len(out) == len(ref) == 3
    for o, r in zip(out, ref):
        # the same boxes in the same order; the sigmoid of the whole batch
        # may differ from a per-image one by an ulp (vectorised tails)
        assert torch.equal(o.bboxes, r.bboxes)
        assert torch.allclose(o.scores, r.scores, rtol=0, atol=1e-6)
    assert any(len(r) for r in ref) == (score_thr < 0.9)


def test_teacher_runs_in_inference_mode_and_keeps_its_mode(toy_root,
                                                           tmp_path):
    teacher = _tiny_teacher(toy_root, tmp_path).train()
    inputs, samples = _inputs(teacher, [(64, 64)])
    with eval_mode(teacher):
        assert torch.is_inference_mode_enabled() and not teacher.training
    assert teacher.training and not torch.is_inference_mode_enabled()
    preds = dense_predictions(teacher, inputs, samples)
    assert preds[0].scores.is_inference()
    with eval_mode(teacher, inference=False):
        assert not torch.is_inference_mode_enabled()
        assert not torch.is_grad_enabled()


# --------------------------------------------------------------------------
def test_bombo_step_equals_the_reference_paths(monkeypatch):
    """Three BoMBo training steps (toy config, fixed synthetic inputs, a
    teacher with scores above Algorithm 1's thresholds and a semantic head
    that predicts objects, so that L_object has triplets): the loss dicts
    and the memory bank are those of the per-image reference paths."""
    import sys
    sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
    import bench_train_step as bench

    items = bench.synthetic_items(3, 3, [(64, 96), (96, 64)], 3, seed=1)
    cfg = bench.load_cfg(bench.TOY['BoMBo'])
    cfg.model.backbone.base_channels = 8
    cfg.model.neck.in_channels = [8, 16, 32, 64]
    for key in ('neck', 'bbox_head', 'seg_head'):
        cfg.model[key]['out_channels' if key == 'neck' else 'in_channels'] \
            = 16
    cfg.model.bbox_head.feat_channels = 16
    cfg.model.seg_head.feat_channels = 16
    cfg.model.b4m.feat_dim = 16

    def run():
        stepper = bench.Stepper(copy.deepcopy(cfg), items, 'cpu', seed=0)
        model = stepper.model
        with torch.no_grad():
            model.bbox_head.retina_cls.bias.normal_(0, 1)
            model.seg_head.conv_logits.weight.normal_(0, 1)
        stepper.ema.module.load_state_dict(model.state_dict())
        out = []
        for _ in range(3):
            with stepper.optim.optim_context(model):
                losses = model.loss(stepper.inputs, stepper.samples)
            loss, logs = model.parse_losses(losses)
            stepper.optim.update_params(loss)
            stepper.ema.update_parameters(model)
            out.append(logs)
        return out, model.b4m.bank.all_keys()

    fast, fast_bank = run()
    ref_bank = {}

    def ref_push(self, keys, labels):
        bank = ref_bank.setdefault(id(self),
                                   ReferenceBank(self.num_classes,
                                                 self.size_per_class))
        bank.push(keys.detach().clone(), labels)

    def ref_all_keys(self):
        bank = ref_bank.setdefault(id(self),
                                   ReferenceBank(self.num_classes,
                                                 self.size_per_class))
        return bank.all_keys(self.dim)

    from bombo.models.task_modules import b4m_branch, m4b_branch
    monkeypatch.setattr(b4m_branch, 'segmentation_keys',
                        reference_segmentation_keys)
    monkeypatch.setattr(m4b_branch, 'dense_predictions',
                        reference_dense_predictions)
    monkeypatch.setattr(ClassMemoryBank, 'push', ref_push)
    monkeypatch.setattr(ClassMemoryBank, 'all_keys', ref_all_keys)
    monkeypatch.setattr(teacher_mod.eval_mode.__init__, '__defaults__',
                        (False, ))  # no_grad, as before inference_mode
    ref, ref_keys = run()
    for f, r in zip(fast, ref):
        assert f.keys() == r.keys()
        for k in f:
            assert abs(f[k] - r[k]) <= 1e-5 * max(1., abs(r[k])), (k, f[k],
                                                                   r[k])
    assert fast[-1]["object_triplets"] > 0  # L_object was exercised
    assert fast[-1]['m4b_boxes_per_img'] > 0
    assert torch.equal(fast_bank[1], ref_keys[1])
    assert torch.allclose(fast_bank[0], ref_keys[0], atol=1e-5)
