import math

import pytest
import torch

from bombo.models.losses.b4m_losses import (AttentionMSELoss,
                                            ObjectTripletLoss,
                                            attention_mse_loss,
                                            box_query_embeddings,
                                            sample_bank_triplets)


def test_pseudo_mask_ce_is_eq2():
    """L_S (Eq. 2) is mmdet's CrossEntropyLoss with ignore 255."""
    from mmdet.registry import MODELS
    import mmdet.models  # noqa: F401  (registers CrossEntropyLoss)
    loss = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=False,
                             ignore_index=255, avg_non_ignore=True))
    logits = torch.tensor([[[[2.0, 0.0, 1.0]], [[0.0, 1.0, 1.0]],
                            [[1.0, 3.0, 0.0]]]])  # (1, 3, 1, 3)
    target = torch.tensor([[[0, 2, 255]]])
    # -1/N sum log softmax, N = 2 non-ignored pixels
    p0 = math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(1))
    p1 = math.exp(3) / (math.exp(0) + math.exp(1) + math.exp(3))
    expected = -(math.log(p0) + math.log(p1)) / 2
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-5)
    all_ignored = torch.full((1, 1, 3), 255)
    out = loss(logits, all_ignored)
    assert torch.isfinite(out) and out.item() == 0


def test_attention_mse_by_hand():
    alpha = torch.tensor([[[[0.2, 0.9]], [[0.5, 0.1]], [[0.1, 0.3]]]],
                         requires_grad=True)  # (1, 3, 1, 2)
    mb = torch.tensor([[[1, 0]]])
    # pixel 0: one-hot (0,1,0): .04 + .25 + .01 = .30
    # pixel 1: one-hot (1,0,0): .01 + .01 + .09 = .11
    assert attention_mse_loss(alpha, mb).item() == pytest.approx(0.205)
    mb_ign = torch.tensor([[[1, 255]]])
    loss = AttentionMSELoss(loss_weight=2.0)(alpha, mb_ign[:, None])
    assert loss.item() == pytest.approx(0.60)
    loss.backward()
    assert alpha.grad[0, :, 0, 1].abs().sum() == 0
    with pytest.raises(ValueError, match='do not match'):
        attention_mse_loss(alpha, torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='labels'):
        attention_mse_loss(alpha, torch.tensor([[[3, 0]]]))
    with pytest.raises(ValueError, match='non-finite'):
        attention_mse_loss(alpha.detach() / 0, mb)
    out = attention_mse_loss(alpha, torch.full((1, 1, 2), 255))
    assert out.item() == 0 and out.requires_grad


def test_attention_mse_normalize_classes_by_hand():
    """normalize='classes' divides Eq. 3 by the C+1 channels."""
    alpha = torch.tensor([[[[0.2, 0.9]], [[0.5, 0.1]], [[0.1, 0.3]]]],
                         requires_grad=True)  # (1, 3, 1, 2)
    mb = torch.tensor([[[1, 0]]])
    # Eq. 3 = (.30 + .11) / 2 = .205 (test above); / 3 channels
    loss = AttentionMSELoss(normalize='classes')(alpha, mb)
    assert loss.item() == pytest.approx(0.205 / 3)
    loss.backward()
    # d/d alpha of (1/(N*3)) sum (alpha - onehot)^2 at pixel 0, channel 1:
    # 2 * (0.5 - 1) / (2 * 3)
    assert alpha.grad[0, 1, 0, 0].item() == pytest.approx(-1 / 6)
    lit = AttentionMSELoss(loss_weight=2.0, normalize='none')(alpha, mb)
    assert lit.item() == pytest.approx(0.41)
    # the initial value with the head's sigmoid(3) attention: ~0.9 C
    # literal, ~0.9 C / (C + 1) normalised (C = 20 classes, VOC)
    a0 = torch.full((1, 21, 4, 4), torch.sigmoid(torch.tensor(3.0)).item())
    t0 = torch.zeros(1, 4, 4, dtype=torch.long)
    expected = 20 * a0[0, 0, 0, 0].item() ** 2 + (1 - a0[0, 0, 0, 0].item()) ** 2
    assert AttentionMSELoss()(a0, t0).item() == pytest.approx(expected)
    assert AttentionMSELoss(normalize='classes')(a0, t0).item() == \
        pytest.approx(expected / 21)
    with pytest.raises(ValueError, match='normalize'):
        AttentionMSELoss(normalize='pixels')


def _toy_batch():
    # feats (1, 2, 2, 2): pixel (r, c) -> feature vector
    f = torch.zeros(1, 2, 2, 2)
    f[0, :, 0, 0] = torch.tensor([1., 0.])
    f[0, :, 0, 1] = torch.tensor([1., 2.])
    f[0, :, 1, 0] = torch.tensor([5., 5.])
    f[0, :, 1, 1] = torch.tensor([0., 3.])
    # logits (1, 3, 2, 2): argmax = [[1, 1], [0, 2]]
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1, 0, 0] = logits[0, 1, 0, 1] = 1
    logits[0, 0, 1, 0] = 1
    logits[0, 2, 1, 1] = 1
    return f.requires_grad_(), logits


def test_box_query_embeddings_by_hand():
    f, logits = _toy_batch()
    boxes = [torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 2.],
                           [0., 1., 1., 2.], [5., 5., 6., 6.]])]
    labels = [torch.tensor([0, 1, 1, 0])]
    q, lab, img, counts = box_query_embeddings(f, logits, boxes, labels)
    # box 0 (class 0 -> channel 1): pixels (0,0),(0,1): mean (1, 1)
    # box 1 (class 1 -> channel 2): pixel (1,1): (0, 3) -> (0, 1)
    # box 2: pixel (1,0) predicted 0 -> skipped; box 3 outside
    s = 1 / math.sqrt(2)
    assert torch.allclose(q.detach(), torch.tensor([[s, s], [0., 1.]]))
    assert lab.tolist() == [0, 1] and img.tolist() == [0, 0]
    with pytest.raises(ValueError, match='label'):
        box_query_embeddings(f, logits, [boxes[0][:1]], [torch.tensor([2])])
    assert counts == dict(boxes=4, no_correct_pixel=1, empty_box=1)
    # boxes in a 4x4 input frame, features at half resolution; mmdet boxes
    from mmdet.structures.bbox import HorizontalBoxes
    q2, _, _, _ = box_query_embeddings(
        f, logits, [HorizontalBoxes(torch.tensor([[0., 0., 4., 2.]]))],
        [torch.tensor([0])], input_size=(4, 4))
    assert torch.allclose(q2.detach(), torch.tensor([[s, s]]))


def test_object_triplet_loss_by_hand():
    f, logits = _toy_batch()
    boxes = [torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 2.],
                           [0., 1., 1., 2.]])]
    labels = [torch.tensor([0, 1, 1])]
    bank_keys = torch.tensor([[1., 0.], [0.6, 0.8]])
    bank_labels = torch.tensor([0, 1])
    out = ObjectTripletLoss(margin=0.1)(f, logits, boxes, labels, bank_keys,
                                        bank_labels)
    s = 1 / math.sqrt(2)
    # query 0 = (s, s), class 0: pos (1, 0), neg (0.6, 0.8)
    dp0 = math.sqrt((s - 1)**2 + s**2)
    dn0 = math.sqrt((s - 0.6)**2 + (s - 0.8)**2)
    # query 1 = (0, 1), class 1: pos (0.6, 0.8), neg (1, 0)
    dp1 = math.sqrt(0.6**2 + 0.2**2)
    dn1 = math.sqrt(1 + 1)
    expected = max(0, 0.1 + dp0 - dn0) + max(0, 0.1 + dp1 - dn1)
    assert expected > 0.5  # query 0 violates the margin
    assert out['loss_object'].item() == pytest.approx(expected, abs=1e-5)
    # box 2: class 1, its pixel (1,0) is predicted 0 (background)
    assert out['object_skip_no_pixel'].item() == 1
    assert out['object_triplets'].item() == 2
    out['loss_object'].backward()
    assert f.grad is not None and f.grad.abs().sum() > 0
    bad = f.detach().clone()
    bad[0, 0, 0, 0] = float('nan')
    with pytest.raises(ValueError, match='non-finite'):
        ObjectTripletLoss()(bad, logits, boxes, labels, bank_keys,
                            bank_labels)


def test_object_triplet_reductions_and_empty_cases():
    f, logits = _toy_batch()
    f2 = torch.cat([f.detach(), f.detach()])
    lg2 = torch.cat([logits, logits])
    boxes = [torch.tensor([[0., 0., 2., 2.]]), torch.zeros(0, 4)]
    labels = [torch.tensor([0]), torch.zeros(0, dtype=torch.long)]
    keys = torch.tensor([[1., 0.], [0.6, 0.8]])
    klab = torch.tensor([0, 1])
    s = 1 / math.sqrt(2)
    one = 0.1 + math.sqrt((s - 1)**2 + s**2) - math.sqrt((s - 0.6)**2 +
                                                          (s - 0.8)**2)
    for red, expected in (('image_mean', one / 2), ('sum', one),
                          ('mean', one)):
        out = ObjectTripletLoss(reduction=red)(f2, lg2, boxes, labels, keys,
                                               klab)
        assert out['loss_object'].item() == pytest.approx(expected, abs=1e-5)
    # class 0 absent from the bank: no positive
    out = ObjectTripletLoss()(f2, lg2, boxes, labels, keys[1:], klab[1:])
    assert out['loss_object'].item() == 0
    assert out['object_skip_no_positive'].item() == 1
    # only class 0 in the bank: no negative
    out = ObjectTripletLoss()(f2, lg2, boxes, labels, keys[:1], klab[:1])
    assert out['object_skip_no_negative'].item() == 1
    assert out['object_triplets'].item() == 0
    # empty bank
    out = ObjectTripletLoss()(f2, lg2, boxes, labels, torch.zeros(0, 2),
                              torch.zeros(0, dtype=torch.long))
    assert out['loss_object'].item() == 0
    assert not any('loss' in k for k in out if k != 'loss_object')


def test_sample_bank_triplets_strategies():
    q = torch.tensor([[1., 0.]])
    lab = torch.tensor([0])
    keys = torch.tensor([[0.9, 0.1], [0., 1.], [0.8, 0.2], [-1., 0.]])
    klab = torch.tensor([0, 0, 1, 1])
    pos, neg, valid, _ = sample_bank_triplets(q, lab, keys, klab, 'hard')
    assert valid.tolist() == [True]
    assert torch.equal(pos[0], keys[1])  # farthest of class 0
    assert torch.equal(neg[0], keys[2])  # nearest of class 1

    def index(k):
        return [i for i in range(4) if torch.equal(keys[i], k)][0]

    g = torch.Generator().manual_seed(0)
    seen_pos, seen_neg = set(), set()
    for _ in range(40):
        pos, neg, _, _ = sample_bank_triplets(q, lab, keys, klab, 'random',
                                              generator=g)
        seen_pos.add(index(pos[0]))
        seen_neg.add(index(neg[0]))
    assert seen_pos == {0, 1} and seen_neg == {2, 3}
