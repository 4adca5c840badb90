"""Every bombo loss under mixed precision: fp16 / bf16 inputs and CPU
autocast give the fp32 result (fp32 loss, finite values and gradients, also
for duplicate embeddings at distance 0), and L_alpha (Eq. 3) never builds a
one-hot tensor of the image size times the class count."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from bombo.models.losses import (AttentionMSELoss, DAALLoss, MATLLoss,
                                 ObjectTripletLoss, TGMATLLoss,
                                 TripletMarginLoss, batch_all_triplet_loss,
                                 batch_hard_triplet_loss, daal_loss,
                                 pairwise_distances)
from bombo.models.losses.b4m_losses import attention_mse_loss


def _cpu_autocast_dtypes():
    dtypes = [torch.bfloat16]
    try:  # CPU autocast accepts fp16 from torch 2.4 on
        with torch.autocast('cpu', dtype=torch.float16):
            if torch.nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.float16:
                dtypes.append(torch.float16)
    except (RuntimeError, AssertionError):
        pass
    return dtypes


HALF = [torch.float16, torch.bfloat16]
AUTOCAST = _cpu_autocast_dtypes()


def _embedding_losses():
    """(name, loss(embeddings) -> scalar) for every embedding loss."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(128) % 3          # 3 labels: > 65,504 active
    box_labels = torch.arange(128) % 4
    scores = torch.rand(128, generator=gen)
    return [
        ('batch_all', lambda e: batch_all_triplet_loss(e, labels)),
        ('batch_all_sum', lambda e: batch_all_triplet_loss(
            e, labels, reduction='sum')),
        ('batch_hard', lambda e: batch_hard_triplet_loss(e, labels)),
        ('TripletMarginLoss', lambda e: TripletMarginLoss()(e, labels)),
        ('MATLLoss', lambda e: MATLLoss()(e, labels, box_labels)),
        ('TGMATLLoss', lambda e: TGMATLLoss(seed=0)(e, labels, box_labels,
                                                    scores)),
        ('DAALLoss', lambda e: DAALLoss()(e, labels)),
    ]


EMBEDDING_LOSSES = _embedding_losses()
IDS = [name for name, _ in EMBEDDING_LOSSES]


def _embeddings(dtype, b=128, d=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, generator=gen) * 0.3).to(dtype)


@pytest.mark.parametrize('dtype', HALF)
@pytest.mark.parametrize('loss_fn', [f for _, f in EMBEDDING_LOSSES],
                         ids=IDS)
def test_half_inputs_give_the_fp32_loss(loss_fn, dtype):
    """B = 128 with 3 labels has ~2e5 active triplets: ``margin * count`` in
    fp16 was inf and the loss NaN. Now the loss is the fp32 one, in fp32,
    and the gradient reaches the half input in its dtype."""
    e = _embeddings(dtype).requires_grad_()
    loss = loss_fn(e)
    assert loss.dtype == torch.float32
    ref = loss_fn(e.detach().float())
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.equal(loss.detach(), ref)
    loss.backward()
    assert e.grad.dtype == dtype and bool(torch.isfinite(e.grad).all())


def test_half_count_overflow_is_what_broke_batch_all():
    """The count that overflowed fp16: well above 65,504."""
    _, stats = batch_all_triplet_loss(_embeddings(torch.float16),
                                      torch.arange(128) % 3,
                                      return_stats=True)
    assert int(stats['num_positive']) > torch.finfo(torch.float16).max


@pytest.mark.parametrize('dtype', AUTOCAST)
@pytest.mark.parametrize('loss_fn', [f for _, f in EMBEDDING_LOSSES],
                         ids=IDS)
def test_losses_under_cpu_autocast(loss_fn, dtype):
    """Embeddings from a layer under autocast are half precision; the loss
    computed inside the same autocast region equals the fp32 loss of those
    embeddings, and the backward through the layer is finite."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 16)
    x = _embeddings(torch.float32)
    with torch.autocast('cpu', dtype=dtype):
        e = layer(x)
        assert e.dtype == dtype
        loss = loss_fn(e)
    assert loss.dtype == torch.float32
    assert torch.equal(loss.detach(), loss_fn(e.detach().float()))
    loss.backward()
    assert bool(torch.isfinite(layer.weight.grad).all())
    assert layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('dtype', HALF)
def test_zero_distances_have_finite_gradients_in_half(dtype):
    """Duplicate embeddings: the 1e-16 shift before sqrt underflowed to 0 in
    fp16, so sqrt'(0) = inf times a zero mask gave NaN gradients."""
    base = _embeddings(torch.float32, b=6, d=8)
    e = torch.cat([base, base]).to(dtype).requires_grad_()  # pairs at d = 0
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    for fn in (lambda x: pairwise_distances(x).sum(),
               lambda x: batch_all_triplet_loss(x, labels, margin=1.0),
               lambda x: batch_hard_triplet_loss(x, labels, margin=1.0),
               lambda x: daal_loss(x, labels)):
        e.grad = None
        loss = fn(e)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert bool(torch.isfinite(e.grad).all())
    # a class whose samples coincide (DAAL: zero-length line, d = 0)
    same = torch.ones(4, 8, dtype=dtype)
    same[2:] = -1
    same.requires_grad_()
    loss = daal_loss(same, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(same.grad).all())


def test_fp32_results_unchanged_and_dtype_kept_for_fp64():
    """fp32 / fp64 inputs are not cast: the decorator changes nothing."""
    e64 = _embeddings(torch.float64, b=32)
    labels = torch.arange(32) % 3
    assert batch_all_triplet_loss(e64, labels).dtype == torch.float64
    assert pairwise_distances(e64).dtype == torch.float64
    e32 = e64.float()
    d = pairwise_distances.__wrapped__(e32)
    assert torch.equal(pairwise_distances(e32), d)


# ------------------------------------------------------------ B4M losses
def _b4m_inputs(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, 8, 6, 6, generator=gen).to(dtype)
    logits = torch.randn(2, 4, 12, 12, generator=gen)
    logits[:, 1:, 2:10, 2:10] += 3  # foreground predicted inside the boxes
    boxes = [torch.tensor([[2., 2., 10., 10.], [0., 0., 6., 6.]]),
             torch.tensor([[4., 4., 12., 12.]])]
    labels = [torch.tensor([0, 1]), torch.tensor([2])]
    keys = F.normalize(torch.randn(9, 8, generator=gen), dim=1)
    key_labels = torch.arange(9) % 3
    return feats, logits.to(dtype), boxes, labels, keys.to(dtype), key_labels


@pytest.mark.parametrize('dtype', HALF)
def test_object_triplet_loss_half_inputs(dtype):
    feats, logits, boxes, labels, keys, key_labels = _b4m_inputs(dtype)
    feats.requires_grad_()
    loss = ObjectTripletLoss(strategy='hard')
    out = loss(feats, logits, boxes, labels, keys, key_labels)
    ref = loss(feats.detach().float(), logits.float(), boxes, labels,
               keys.float(), key_labels)
    assert out['object_triplets'].item() == 3
    assert all(v.dtype == torch.float32 for v in out.values())
    assert torch.equal(out['loss_object'].detach(), ref['loss_object'])
    out['loss_object'].backward()
    assert feats.grad.dtype == dtype and bool(torch.isfinite(feats.grad).all())


@pytest.mark.parametrize('dtype', AUTOCAST)
def test_b4m_losses_under_cpu_autocast(dtype):
    feats, logits, boxes, labels, keys, key_labels = _b4m_inputs(
        torch.float32)
    conv = torch.nn.Conv2d(8, 8, 1)
    gen = torch.Generator().manual_seed(1)
    alpha_in = torch.rand(2, 4, 12, 12, generator=gen)
    mb = torch.randint(0, 4, (2, 12, 12), generator=gen)
    mb[:, :2] = 255
    with torch.autocast('cpu', dtype=dtype):
        z = conv(feats)
        alpha = torch.sigmoid(conv.weight.sum() * 0 + alpha_in.to(dtype))
        assert z.dtype == dtype
        obj = ObjectTripletLoss(strategy='hard')(z, logits, boxes, labels,
                                                 keys, key_labels)
        att = AttentionMSELoss()(alpha, mb)
    assert obj['loss_object'].dtype == att.dtype == torch.float32
    assert torch.equal(obj['loss_object'].detach(), ObjectTripletLoss(
        strategy='hard')(z.detach().float(), logits, boxes, labels, keys,
                         key_labels)['loss_object'])
    assert torch.equal(att.detach(), attention_mse_loss(alpha.detach().float(),
                                                        mb))
    (obj['loss_object'] + att).backward()
    assert bool(torch.isfinite(conv.weight.grad).all())


def _old_attention_mse(alpha, box_mask, ignore_index=255):
    """Eq. 3 as it was written before: through an int64 one-hot."""
    valid = box_mask != ignore_index
    target = F.one_hot(torch.where(valid, box_mask, 0), alpha.shape[1])
    target = target.permute(0, 3, 1, 2).to(alpha.dtype)
    sq = ((target - alpha)**2).sum(dim=1)
    return (sq * valid).sum() / valid.sum().clamp_min(1)


@pytest.mark.parametrize('seed', range(5))
def test_attention_mse_equals_the_one_hot_formula(seed):
    gen = torch.Generator().manual_seed(seed)
    b, c, h, w = 3, 21, 17, 23
    alpha = torch.rand(b, c, h, w, generator=gen, dtype=torch.float64)
    if seed == 1:  # unbounded maps too (the identity is exact algebra)
        alpha = alpha * 6 - 3
    mb = torch.randint(0, c, (b, h, w), generator=gen)
    mb[torch.rand(b, h, w, generator=gen) < 0.2] = 255
    if seed == 2:
        mb[0] = 255  # an image entirely ignored
    a1 = alpha.clone().requires_grad_()
    a2 = alpha.clone().requires_grad_()
    new, old = attention_mse_loss(a1, mb), _old_attention_mse(a2, mb)
    torch.testing.assert_close(new, old, rtol=1e-12, atol=1e-12)
    new.backward()
    old.backward()
    torch.testing.assert_close(a1.grad, a2.grad, rtol=1e-12, atol=1e-15)
    # in fp32, equal to rounding
    new32 = attention_mse_loss(alpha.float(), mb)
    torch.testing.assert_close(new32, old.detach().float(), rtol=1e-5,
                               atol=1e-6)


class _RecordOutputs(TorchDispatchMode):
    """Records (op, dtype, numel, storage address, storage bytes) of every
    tensor an op returns."""

    def __init__(self):
        super().__init__()
        self.outputs = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out, ):
            if isinstance(t, torch.Tensor):
                st = t.untyped_storage()
                self.outputs.append((func, t.dtype, t.numel(), st.data_ptr(),
                                     st.nbytes()))
        return out


def _full_size_storages(fn, alpha, mb):
    """Distinct storages of the full-size (B*(C+1)*H*W entries) tensors made
    by forward and backward: total bytes, and the int64 ones."""
    alpha = alpha.detach().requires_grad_()
    with _RecordOutputs() as rec:
        fn(alpha, mb).backward()
    big = [r for r in rec.outputs if r[2] >= alpha.numel()]
    storages = {ptr: nbytes for _, _, _, ptr, nbytes in big}
    return sum(storages.values()), [r for r in big if r[1] == torch.int64]


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_attention_mse_builds_no_one_hot(dtype):
    """No int64 tensor of B*H*W*(C+1) entries (the old one-hot), forward or
    backward: the only full-size tensor made is the gradient, in alpha's
    dtype (the old formula also made the one-hot, its float copy, the
    difference and its square)."""
    b, c, h, w = 2, 81, 24, 24
    alpha = torch.rand(b, c, h, w).to(dtype)
    mb = torch.randint(0, c, (b, h, w))
    mb[:, :3] = 255
    new_bytes, new_int64 = _full_size_storages(attention_mse_loss, alpha, mb)
    assert not new_int64, new_int64
    assert new_bytes == alpha.numel() * alpha.element_size()
    _, old_int64 = _full_size_storages(_old_attention_mse, alpha, mb)
    assert old_int64  # the recorder does see the old one-hot
