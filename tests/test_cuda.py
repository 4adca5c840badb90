"""The CUDA path: the multi-task detector, its M4B / B4M branches and the
metric-learning losses on a GPU, checked against the same computation on the
CPU. Skipped where no GPU is visible (CI, the CPU development machines).

The library never calls ``.cuda()``: the tests move the model (and with it
its data preprocessor, which moves the batches) to the GPU, and everything
else must follow the tensors' device.
"""
import copy
import math
import os.path as osp
from contextlib import contextmanager

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA device')

from mmdet.registry import DATASETS, MODELS  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402

from conftest import ROOT, tiny_cfg  # noqa: E402
from bombo.models.losses.b4m_losses import (  # noqa: E402
    ObjectTripletLoss, attention_mse_loss, box_query_embeddings)
from bombo.models.losses.matl import matl_loss  # noqa: E402
from bombo.models.losses.triplet import (  # noqa: E402
    batch_all_triplet_loss, batch_hard_triplet_loss)
from bombo.models.task_modules.memory_bank import (  # noqa: E402
    ClassMemoryBank, segmentation_keys)

CUDA = torch.device('cuda')
B4M_CONFIG = osp.join(ROOT, 'configs/toy/toy_r18_fpn_b4m.py')


@contextmanager
def no_tf32():
    """Full fp32 convolutions and matmuls, so CPU and GPU agree to ~1e-5."""
    old = (torch.backends.cudnn.allow_tf32,
           torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = old


def total(v):
    return sum(v) if isinstance(v, (list, tuple)) else v


def preprocess(model, items, training=True):
    data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)),
                                   training=training)
    return data['inputs'], data['data_samples']


def loss_of(model, items):
    inputs, samples = preprocess(model, items)
    assert inputs.device.type == 'cuda' or next(
        model.parameters()).device.type == 'cpu'
    return model.loss(inputs, samples)


@pytest.fixture(scope='module')
def setup(toy_root, tmp_path_factory):
    cfg = tiny_cfg(toy_root, str(tmp_path_factory.mktemp('wd_cuda')))
    torch.manual_seed(0)
    cpu_model = MODELS.build(cfg.model)
    cpu_model.init_weights()
    det_ds = DATASETS.build(cfg.train_dataloader.dataset.datasets[0])
    seg_ds = DATASETS.build(cfg.train_dataloader.dataset.datasets[1])
    val_ds = DATASETS.build(cfg.val_dataloader.dataset)
    return cfg, cpu_model, det_ds, seg_ds, val_ds


# --------------------------------------------------------------------------
# the multi-task detector
# --------------------------------------------------------------------------
def test_mixed_batch_loss_and_backward_on_cuda(setup):
    _, cpu_model, det_ds, seg_ds, _ = setup
    model = copy.deepcopy(cpu_model).cuda().train()
    items = [det_ds[0], det_ds[1], seg_ds[0], seg_ds[1]]
    inputs, samples = preprocess(model, items)
    assert inputs.is_cuda
    assert all(s.gt_instances.bboxes.is_cuda for s in samples
               if 'gt_instances' in s and len(s.gt_instances))
    assert all(s.gt_sem_seg.sem_seg.is_cuda for s in samples
               if 'gt_sem_seg' in s)
    losses = model.loss(inputs, samples)
    for k in ('loss_cls', 'loss_bbox', 'loss_seg'):
        v = total(losses[k])
        assert v.is_cuda and math.isfinite(float(v)), k
    loss, _ = model.parse_losses(losses)
    loss.backward()
    params = dict(model.named_parameters())
    for name in ('backbone.conv1.weight', 'bbox_head.retina_cls.weight',
                 'bbox_head.retina_reg.weight',
                 'seg_head.conv_logits.weight'):
        grad = params[name].grad
        assert grad is not None and grad.is_cuda, name
        assert bool(torch.isfinite(grad).all()) and grad.abs().sum() > 0, name


def test_cuda_losses_equal_cpu_losses(setup):
    """Same weights, same batch, eval-mode BN: the GPU path (mmcv's CUDA
    sigmoid focal loss among others) gives the CPU's losses."""
    _, cpu_model, det_ds, seg_ds, _ = setup
    items = [det_ds[2], det_ds[3], seg_ds[2], seg_ds[3]]
    cpu = copy.deepcopy(cpu_model).eval()
    gpu = copy.deepcopy(cpu_model).cuda().eval()
    with torch.no_grad(), no_tf32():
        lc, lg = loss_of(cpu, items), loss_of(gpu, items)
    assert set(lc) == set(lg)
    for k in lc:
        c, g = total(lc[k]).float(), total(lg[k]).float().cpu()
        assert torch.allclose(c, g, rtol=1e-3, atol=1e-5), (k, c, g)


def test_predict_on_cuda_matches_cpu(setup):
    _, cpu_model, _, _, val_ds = setup
    items = [val_ds[0], val_ds[1]]
    cpu = copy.deepcopy(cpu_model).eval()
    gpu = copy.deepcopy(cpu_model).cuda().eval()
    with torch.no_grad(), no_tf32():
        out_c = cpu.predict(*preprocess(cpu, items, training=False))
        out_g = gpu.predict(*preprocess(gpu, items, training=False))
    for c, g in zip(out_c, out_g):
        pi = g.pred_instances
        assert pi.bboxes.is_cuda and pi.scores.is_cuda and pi.labels.is_cuda
        assert len(pi) > 0 and len(pi) == len(c.pred_instances)
        k = min(len(pi), 10)
        top_g = pi.scores.sort(descending=True).values[:k].cpu()
        top_c = c.pred_instances.scores.sort(descending=True).values[:k]
        assert torch.allclose(top_g, top_c, atol=1e-4)
        sem_g = g.pred_sem_seg.sem_seg
        h, w = g.metainfo['ori_shape']
        assert sem_g.is_cuda and sem_g.shape == (1, h, w)
        agree = (sem_g.cpu() == c.pred_sem_seg.sem_seg).float().mean()
        assert agree > 0.999


def test_mask_for_box_branch_with_teacher_on_cuda(setup, toy_root, tmp_path):
    cfg = tiny_cfg(toy_root, str(tmp_path))
    cfg.model.m4b = dict(type='MaskForBoxBranch',
                         refiner=dict(type='MaskForBoxRefiner', mode='m4b',
                                      num_classes=3))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model = model.cuda()
    teacher = copy.deepcopy(model)
    model.set_teacher(teacher)
    _, _, det_ds, seg_ds, _ = setup
    losses = loss_of(model, [det_ds[0], seg_ds[0], seg_ds[1]])
    assert float(losses['m4b_boxes_per_img']) > 0
    m4b = total(losses['loss_m4b_bbox'])
    assert m4b.is_cuda and math.isfinite(float(m4b))
    loss, _ = model.parse_losses(losses)
    loss.backward()
    grad = model.bbox_head.retina_reg.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert next(teacher.parameters()).is_cuda


def test_box_for_mask_branch_on_cuda(toy_root, tmp_path):
    cfg = tiny_cfg(toy_root, str(tmp_path), config=B4M_CONFIG)
    cfg.model.b4m.feat_dim = cfg.model.seg_head.feat_channels
    det = cfg.train_dataloader.dataset.datasets[0]
    det.pipeline[2] = dict(type='LoadPseudoMask', pseudo_mask_dir='unused',
                           online=True)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model = model.cuda()
    model.set_teacher(copy.deepcopy(model))
    det_ds = DATASETS.build(det)
    seg_ds = DATASETS.build(cfg.train_dataloader.dataset.datasets[1])
    items = [det_ds[0], det_ds[1], seg_ds[0], seg_ds[1]]
    loss_of(model, items)  # fills the memory bank
    keys, _ = model.b4m.bank.all_keys()
    assert keys.is_cuda and len(keys) > 0
    losses = loss_of(model, items)
    for k in ('loss_b4m_seg', 'loss_b4m_attention', 'loss_b4m_object'):
        assert losses[k].is_cuda and math.isfinite(float(losses[k])), k
    assert float(losses['object_triplets']) > 0
    loss, _ = model.parse_losses(losses)
    loss.backward()
    att = model.seg_head.conv_attention.weight.grad
    assert att is not None and att.abs().sum() > 0


# --------------------------------------------------------------------------
# the losses and the memory bank: GPU == CPU, values and gradients
# --------------------------------------------------------------------------
def _leaf(t, device):
    return t.detach().to(device).requires_grad_(True)


def test_triplet_losses_cuda_equal_cpu():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(40, 8, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (40, ), generator=g)
    mask = torch.rand(40, generator=g) > 0.3
    for fn, kw in ((batch_all_triplet_loss, dict(reduction='mean_positive')),
                   (batch_all_triplet_loss, dict(reduction='sum',
                                                 anchor_mask=mask)),
                   (batch_hard_triplet_loss, dict(reduction='mean'))):
        out = {}
        for dev in ('cpu', 'cuda'):
            e = _leaf(emb, dev)
            extra = {k: v.to(dev) for k, v in kw.items()
                     if isinstance(v, torch.Tensor)}
            loss, stats = fn(e, labels.to(dev), margin=0.3,
                             return_stats=True, **{**kw, **extra})
            loss.backward()
            assert loss.device.type == dev
            out[dev] = (loss.detach().cpu(), e.grad.cpu(),
                        int(stats['num_positive']))
        assert out['cpu'][2] == out['cuda'][2] > 0
        assert torch.allclose(out['cpu'][0], out['cuda'][0], atol=1e-10)
        assert torch.allclose(out['cpu'][1], out['cuda'][1], atol=1e-10)


def test_matl_loss_cuda_equal_cpu():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(32, 6, generator=g, dtype=torch.float64)
    cls = torch.randint(0, 3, (32, ), generator=g)
    box = torch.randint(0, 4, (32, ), generator=g)
    out = {}
    for dev in ('cpu', 'cuda'):
        e = _leaf(emb, dev)
        loss, parts = matl_loss(e, cls.to(dev), box.to(dev), box_weight=0.25,
                                margin=0.2, return_parts=True)
        loss.backward()
        assert float(parts['loss_class']) > 0 and float(parts['loss_box']) > 0
        out[dev] = (loss.detach().cpu(), e.grad.cpu())
    assert torch.allclose(out['cpu'][0], out['cuda'][0], atol=1e-10)
    assert torch.allclose(out['cpu'][1], out['cuda'][1], atol=1e-10)


def test_attention_mse_loss_cuda_equal_cpu():
    g = torch.Generator().manual_seed(2)
    alpha = torch.rand(2, 4, 24, 20, generator=g)
    mask = torch.randint(0, 4, (2, 24, 20), generator=g)
    mask[:, :3] = 255
    out = {}
    for dev in ('cpu', 'cuda'):
        a = _leaf(alpha, dev)
        loss = attention_mse_loss(a, mask.to(dev))
        loss.backward()
        out[dev] = (loss.detach().cpu(), a.grad.cpu())
    assert torch.allclose(out['cpu'][0], out['cuda'][0], rtol=1e-5)
    assert torch.allclose(out['cpu'][1], out['cuda'][1], atol=1e-7)


def _object_inputs():
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(2, 8, 16, 16, generator=g)
    logits = torch.randn(2, 4, 64, 64, generator=g)
    boxes = [torch.tensor([[4., 4., 40., 30.], [30., 20., 60., 60.]]),
             torch.tensor([[0., 0., 64., 64.], [10., 40., 12., 42.],
                           [70., 70., 80., 80.]])]
    labels = [torch.tensor([0, 2]), torch.tensor([1, 0, 2])]
    bank_keys = torch.nn.functional.normalize(
        torch.randn(12, 8, generator=g), dim=1)
    bank_labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    return feats, logits, boxes, labels, bank_keys, bank_labels


def test_box_queries_cuda_equal_cpu():
    feats, logits, boxes, labels, _, _ = _object_inputs()
    out = {}
    for dev in ('cpu', 'cuda'):
        q, lab, img, counts = box_query_embeddings(
            feats.to(dev), logits.to(dev), [b.to(dev) for b in boxes],
            [lab.to(dev) for lab in labels], input_size=(64, 64))
        assert q.device.type == lab.device.type == img.device.type == dev
        out[dev] = (q.cpu(), lab.cpu(), img.cpu(), counts)
    assert out['cpu'][3] == out['cuda'][3]
    assert out['cpu'][3]['empty_box'] == 1 and len(out['cpu'][0]) > 0
    assert torch.equal(out['cpu'][1], out['cuda'][1])
    assert torch.equal(out['cpu'][2], out['cuda'][2])
    assert torch.allclose(out['cpu'][0], out['cuda'][0], atol=1e-6)


@pytest.mark.parametrize('strategy', ['hard', 'random'])
def test_object_triplet_loss_cuda_equal_cpu(strategy):
    feats, logits, boxes, labels, keys, key_labels = _object_inputs()
    loss_fn = ObjectTripletLoss(margin=0.5, strategy=strategy)
    out = {}
    for dev in ('cpu', 'cuda'):
        f = _leaf(feats, dev)
        res = loss_fn(f, logits.to(dev), [b.to(dev) for b in boxes],
                      [lab.to(dev) for lab in labels], keys.to(dev),
                      key_labels.to(dev), input_size=(64, 64),
                      generator=torch.Generator().manual_seed(7))
        res['loss_object'].backward()
        assert all(v.device.type == dev for v in res.values())
        out[dev] = ({k: float(v) for k, v in res.items()}, f.grad.cpu())
    assert out['cpu'][0]['object_triplets'] > 0
    assert out['cpu'][0]['loss_object'] > 0
    for k, v in out['cpu'][0].items():
        assert math.isclose(v, out['cuda'][0][k], rel_tol=1e-5,
                            abs_tol=1e-7), k
    assert torch.allclose(out['cpu'][1], out['cuda'][1], atol=1e-6)


def test_memory_bank_and_segmentation_keys_cuda_equal_cpu():
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(2, 8, 16, 16, generator=g)
    sem = torch.zeros(2, 64, 64, dtype=torch.long)
    sem[0, 4:20, 4:30] = 1
    sem[0, 40:60, 10:20] = 1
    sem[0, 30:50, 40:62] = 3
    sem[1, 10:50, 10:50] = 2
    sem[1, 60:, :] = 255
    out = {}
    for dev in ('cpu', 'cuda'):
        keys, labels = segmentation_keys(feats.to(dev), sem.to(dev))
        assert keys.device.type == labels.device.type == dev
        bank = ClassMemoryBank(3, 8, size_per_class=2).to(dev)
        bank.push(keys, labels)
        bank.push(keys[:2] * -1, labels[:2])  # class 0 overflows: FIFO
        all_keys, all_labels = bank.all_keys()
        assert all_keys.device.type == dev
        out[dev] = (keys.cpu(), labels.cpu(), all_keys.cpu(),
                    all_labels.cpu())
    assert out['cpu'][1].tolist() == [0, 0, 2, 1]
    for c, g_ in zip(out['cpu'], out['cuda']):
        assert c.shape == g_.shape
        assert torch.allclose(c.float(), g_.float(), atol=1e-6)


# --------------------------------------------------------------------------
# a training step with AMP (fp16), as `tools/train.py --amp` runs it
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name', ('mtl', 'm4b', 'b4m', 'bombo'))
def test_amp_fp16_train_step_on_cuda(name):
    import sys

    from mmengine.optim import AmpOptimWrapper
    sys.path.insert(0, osp.join(ROOT, 'tests', 'models'))
    from test_partial_mtl import tiny_toy_model
    model, items = tiny_toy_model(name)
    model = model.to(CUDA).train()
    optim = AmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=1e-3,
                                  momentum=0.9), loss_scale='dynamic')
    for step in range(3):
        with optim.optim_context(model):
            inputs, samples = preprocess(model, items)
            losses = model.loss(inputs, samples)
            if model.m4b is not None or model.b4m is not None:
                # the teacher runs in the student's precision
                feats = model.teacher_features(inputs)
                assert feats[0].dtype == torch.float16
                model.__dict__['_teacher_cache'] = {}
        loss, _ = model.parse_losses(losses)
        assert loss.dtype == torch.float32 and bool(torch.isfinite(loss))
        for k, v in losses.items():
            for t in (v if isinstance(v, (list, tuple)) else [v]):
                assert t.is_cuda and bool(torch.isfinite(t).all()), k
        optim.update_params(loss)
        for n, p in model.named_parameters():
            assert bool(torch.isfinite(p).all()), n
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    if name in ('m4b', 'bombo'):
        assert float(losses['m4b_boxes_per_img']) > 0
    if name in ('b4m', 'bombo'):
        keys, _ = model.b4m.bank.all_keys()
        assert keys.is_cuda and keys.dtype == torch.float32 and len(keys)


def test_dense_predictions_and_keys_cuda_equal_cpu(toy_root, tmp_path):
    """The batched teacher paths select the same boxes on the GPU."""
    from bombo.models.task_modules.teacher import dense_predictions
    cfg = tiny_cfg(toy_root, str(tmp_path))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        model.bbox_head.retina_cls.bias.normal_(0, 2)
    model.eval()
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(3, 3, 96, 96, generator=g)
    from mmdet.structures import DetDataSample
    samples = [DetDataSample(metainfo=dict(img_shape=s, ori_shape=s))
               for s in ((64, 96), (96, 50), (40, 40))]
    with no_tf32():
        cpu = dense_predictions(model, inputs, samples, 0.3, 40)
        gpu = dense_predictions(copy.deepcopy(model).to(CUDA),
                                inputs.to(CUDA), samples, 0.3, 40)
    for c, d in zip(cpu, gpu):
        assert d.bboxes.is_cuda and len(c) == len(d)
        assert torch.allclose(c.bboxes, d.bboxes.cpu(), atol=1e-3)


def test_foreach_ema_bit_identical_to_mmdet_on_cuda():
    """TeacherEMAHook's averaged model (multi-tensor updates) against mmdet's
    per-tensor ExpMomentumEMA on the GPU: the same values bit for bit, with
    the EMA kept on the GPU and with it kept on the CPU (``device``)."""
    from mmdet.models.layers import ExpMomentumEMA
    from bombo.engine import ForeachExpMomentumEMA
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 4)).to(CUDA)
    for device in (None, torch.device('cpu')):
        ref = ExpMomentumEMA(model, momentum=0.01, gamma=5, device=device)
        ours = ForeachExpMomentumEMA(model, momentum=0.01, gamma=5,
                                     device=device)
        for step in range(5):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 0.1)
                model(torch.randn(2, 3, 16, 16, device=CUDA))
            ref.update_parameters(model)
            ours.update_parameters(model)
        a, b = ref.state_dict(), ours.state_dict()
        for k in a:
            assert a[k].device == b[k].device
            assert torch.equal(a[k], b[k]), (device, k)
