"""MATLEmbeddingHead and EmbeddingSingleStageDetector on tiny fake inputs."""
import logging

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from bombo.models.heads.matl_embedding_head import MATLEmbeddingHead
from bombo.models.losses.matl import matl_loss
from bombo.models.losses.tg_matl import TGMATLLoss
from bombo.models.task_modules.box_labels import BoxLabeler


@pytest.fixture(scope='module')
def labels_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    wh = np.r_[rng.uniform(8, 14, (40, 2)), rng.uniform(40, 60, (40, 2)),
               np.c_[rng.uniform(4, 6, 40), rng.uniform(30, 40, 40)]]
    boxes = np.c_[np.zeros((120, 2)), wh]
    path = tmp_path_factory.mktemp('bl') / 'box_labels.json'
    BoxLabeler.fit(boxes, np.repeat([0, 1, 2], 40), seed=0).save(str(path))
    return str(path)


def samples(scale=1.0, empty=False):
    out = []
    g = torch.Generator().manual_seed(0)
    for i in range(2):
        s = DetDataSample(metainfo=dict(scale_factor=(scale, scale),
                                        img_shape=(64, 64)))
        n = 0 if empty else 4
        xy = torch.rand(n, 2, generator=g) * 20
        wh = torch.rand(n, 2, generator=g) * 30 + 4
        s.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1) * scale,
            labels=torch.tensor([0, 1, 2, 1][:n]))
        out.append(s)
    return out


def feats(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 8, 16, 16, generator=g).requires_grad_(),
            torch.randn(2, 8, 8, 8, generator=g).requires_grad_())


def head(labels_file, loss):
    torch.manual_seed(0)
    return MATLEmbeddingHead(in_channels=8, featmap_strides=[4, 8],
                             conv_channels=4, fc_channels=16, embed_dims=8,
                             loss=loss, box_labels_file=labels_file)


def test_matl_head_loss_is_matl_of_its_embeddings(labels_file):
    h = head(labels_file, dict(type='MATLLoss', box_weight=0.25, margin=0.5,
                               loss_weight=0.3))
    x, ds = feats(), samples()
    out = h.loss(x, ds)
    boxes = [d.gt_instances.bboxes for d in ds]
    emb = h(x, bbox2roi(boxes))
    assert emb.shape == (8, 8)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(8))
    lab = BoxLabeler.load(labels_file)
    ref = 0.3 * matl_loss(emb, torch.cat([d.gt_instances.labels for d in ds]),
                          lab.predict(torch.cat(boxes)), 0.25, 0.5)
    assert out['loss_embed'].item() == pytest.approx(ref.item(), rel=1e-6)
    assert out['loss_embed'].item() > 0
    out['loss_embed'].backward()
    assert x[0].grad.abs().sum() > 0
    assert h.fc2.weight.grad.abs().sum() > 0


def test_box_labels_use_original_image_coordinates(labels_file, monkeypatch):
    h = head(labels_file, dict(type='MATLLoss'))
    seen = []
    real = h.box_labeler.predict
    monkeypatch.setattr(h.box_labeler, 'predict',
                        lambda b: seen.append(b.clone()) or real(b))
    h.loss(feats(), samples(scale=1.0))
    # features at 2x: boxes scaled by 2 in input pixels, same original boxes
    x2 = tuple(torch.nn.functional.interpolate(f, scale_factor=2)
               for f in feats())
    h.loss(x2, samples(scale=2.0))
    torch.testing.assert_close(seen[0], seen[1])


def test_no_boxes_gives_zero_loss_touching_all_parameters(labels_file):
    h = head(labels_file, dict(type='MATLLoss'))
    out = h.loss(feats(), samples(empty=True))
    assert out['loss_embed'].item() == 0.0
    out['loss_embed'].backward()
    assert all(p.grad is not None and not p.grad.any()
               for p in h.parameters())


@pytest.mark.parametrize('loss', [
    dict(type='TGMATLLoss', seed=0, loss_weight=0.5),
    dict(type='DAALLoss'),
    dict(type='TripletMarginLoss', mining='hard')])
def test_other_losses_run(labels_file, loss):
    h = head(labels_file, loss)
    out = h.loss(feats(), samples())
    assert torch.isfinite(out['loss_embed'])
    out['loss_embed'].backward()


def test_config_errors(labels_file, tmp_path):
    with pytest.raises(ValueError, match='fit_box_labels'):
        head(None, dict(type='MATLLoss'))
    path = tmp_path / 'no_mi.json'
    BoxLabeler.fit(np.array([[0, 0, 1, 1], [0, 0, 2, 5], [0, 0, 9, 9],
                             [0, 0, 4, 1]])).save(str(path))
    with pytest.raises(ValueError, match='mutual information'):
        head(str(path), dict(type='TGMATLLoss'))
    assert isinstance(head(None, dict(type='DAALLoss')).loss_fn, object)
    assert isinstance(head(labels_file, dict(type='TGMATLLoss')).loss_fn,
                      TGMATLLoss)


def test_embedding_single_stage_detector(labels_file):
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    import bombo.models.detectors.embedding_single_stage  # noqa: F401
    register_all_modules()
    from mmengine.config import ConfigDict
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(
        type='EmbeddingSingleStageDetector',
        data_preprocessor=dict(type='DetDataPreprocessor',
                               mean=[0, 0, 0], std=[255, 255, 255],
                               bgr_to_rgb=True, pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, num_stages=4,
                      out_indices=(1, 2, 3), norm_eval=False),
        neck=dict(type='FPN', in_channels=[128, 256, 512], out_channels=16,
                  num_outs=3),
        bbox_head=dict(
            type='RetinaHead', num_classes=3, in_channels=16,
            stacked_convs=1, feat_channels=16,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                  scales_per_octave=1, ratios=[1.0],
                                  strides=[8, 16, 32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True),
            loss_bbox=dict(type='L1Loss')),
        embed_head=dict(type='MATLEmbeddingHead', in_channels=16,
                        featmap_strides=[8, 16, 32], conv_channels=4,
                        fc_channels=16, embed_dims=8,
                        box_labels_file=labels_file),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                     neg_iou_thr=0.4, min_pos_iou=0),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1,
                       pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=100, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=10)))
    packed = demo_mm_inputs(2, [[3, 64, 64], [3, 64, 64]], num_items=[3, 2],
                            num_classes=3)
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    assert 'loss_embed' in losses and 'loss_cls' in losses
    assert torch.isfinite(losses['loss_embed'])
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(packed, False),
                      mode='predict')
    assert len(preds) == 2


def test_embed_head_in_the_multi_task_detector(labels_file, toy_root,
                                               tmp_path):
    """The toy MATL config: the embedding loss is added on the detection
    images only and trains the shared features."""
    import copy
    import os.path as osp

    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate

    from conftest import ROOT, tiny_cfg
    cfg = tiny_cfg(toy_root, str(tmp_path),
                   config=osp.join(ROOT, 'configs/toy/toy_r18_fpn_matl.py'))
    cfg.model.embed_head.update(in_channels=16, conv_channels=8,
                                fc_channels=16, embed_dims=8,
                                box_labels_file=labels_file)
    model = MODELS.build(cfg.model)
    model.init_weights()
    det = DATASETS.build(cfg.train_dataloader.dataset.datasets[0])
    seg = DATASETS.build(cfg.train_dataloader.dataset.datasets[1])
    for items, expect in (([det[0], det[1], seg[0]], True), ([seg[0]], False)):
        data = model.data_preprocessor(pseudo_collate(copy.deepcopy(items)),
                                       True)
        losses = model.loss(data['inputs'], data['data_samples'])
        assert ('loss_embed' in losses) == expect
    data = model.data_preprocessor(
        pseudo_collate(copy.deepcopy([det[0], det[1], seg[0]])), True)
    model.zero_grad()
    model.loss(data['inputs'], data['data_samples'])['loss_embed'].backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0


TG_HAND = dict(type='TGMATLLoss', seed=0, loss_weight=0.5, top_percent=0.5,
               random_percent=0.25)


def test_tg_matl_head_default_is_todays_value(labels_file):
    """Default relevance ('shape', the box-label file's MI): recorded with
    the code before the reference modes existed."""
    h = head(labels_file, TG_HAND)
    assert h.loss_fn.relevance_features == 'shape'
    assert h.loss(feats(), samples())['loss_embed'].item() == \
        pytest.approx(0.10977691411972046, abs=1e-6)


def xcycwh_batch_loss(h):
    """Two samples resized x2 from originals of (32, 32) and (40, 24): the
    features, input boxes, original boxes, their images' (H, W), labels, and
    the head's loss on them."""
    ds = samples(scale=2.0)
    for d, shape in zip(ds, [(32, 32), (40, 24)]):
        d.set_metainfo(dict(ori_shape=shape))
    x = feats()
    out = h.loss(x, ds)['loss_embed']
    boxes = [d.gt_instances.bboxes for d in ds]
    orig = torch.cat(boxes) / 2.0
    sizes = torch.tensor([[32, 32]] * 4 + [[40, 24]] * 4)
    labels = torch.cat([d.gt_instances.labels for d in ds])
    return x, boxes, orig, sizes, labels, out


@pytest.mark.parametrize('mask_negatives', [False, True])
def test_tg_matl_head_xcycwh_relevance(labels_file, mask_negatives):
    """'xcycwh': scores from (xc/W, yc/H, w/W, h/H) of the original image,
    min-max and MI fitted on the batch; the loss is TG-MATL on them."""
    from bombo.models.losses.tg_matl import TGMATLRelevance, tg_matl_loss
    cfg = dict(type='TGMATLLoss', loss_weight=0.5, random_mode='next',
               relevance_features='xcycwh', mask_negatives=mask_negatives)
    h = head(labels_file, cfg)
    x, boxes, orig, sizes, labels, out = xcycwh_batch_loss(h)
    rel = TGMATLRelevance.fit(orig.numpy(), labels.numpy(), 'xcycwh',
                              sizes.numpy(), seed=0)
    emb = h.embed(x, boxes)
    ref = tg_matl_loss(emb, labels, h.box_labeler.predict(orig),
                       rel.score(orig, sizes), box_weight=0.5, margin=0.1,
                       top_percent=0.3, random_percent=0.1,
                       random_mode='next', mask_negatives=mask_negatives)
    assert out.item() == pytest.approx(0.5 * ref.item(), abs=1e-6)
    out.backward()
    # the two relevance modes select different samples here
    from bombo.models.losses.tg_matl import tg_matl_selection_mask
    masks = [tg_matl_selection_mask(sc, labels, 0.3, 0.1, 'next')
             for sc in (rel.score(orig, sizes),
                        h.box_labeler.relevance(orig))]
    assert not torch.equal(*masks)


def test_tg_matl_head_xcycwh_uses_training_set_statistics(tmp_path):
    """A box-label file with fitted xcycwh statistics (tools/fit_box_labels.py
    on annotations with image sizes): the head scores the batch with them,
    not with a per-batch fit, and says nothing; a file without them warns."""
    from mmengine.logging import MMLogger
    from bombo.models.losses.tg_matl import TGMATLRelevance, tg_matl_loss
    rng = np.random.default_rng(3)
    wh = rng.uniform(4, 40, (60, 2))
    xy = rng.uniform(0, 20, (60, 2))
    train = np.c_[xy, xy + wh]
    train_sizes = np.repeat([[48, 64]], 60, 0)
    train_labels = np.arange(60) % 3
    lab = BoxLabeler.fit(train, train_labels, seed=0)
    fitted = TGMATLRelevance.fit(train, train_labels, 'xcycwh', train_sizes)
    lab.relevance_fits['xcycwh'] = fitted.to_dict()
    path = str(tmp_path / 'bl.json')
    lab.save(path)
    cfg = dict(type='TGMATLLoss', loss_weight=1.0, random_mode='next',
               relevance_features='xcycwh')
    h = head(path, cfg)
    assert h.xcycwh_relevance is not None
    x, boxes, orig, sizes, labels, out = xcycwh_batch_loss(h)
    emb = h.embed(x, boxes)
    kw = dict(box_weight=0.5, margin=0.1, top_percent=0.3,
              random_percent=0.1, random_mode='next')
    train_scores = fitted.score(orig, sizes)
    ref = tg_matl_loss(emb, labels, h.box_labeler.predict(orig),
                       train_scores, **kw)
    assert out.item() == pytest.approx(ref.item(), abs=1e-6)
    # and the per-batch fit would score differently (so the test can fail)
    batch = TGMATLRelevance.fit(orig.numpy(), labels.numpy(), 'xcycwh',
                                sizes.numpy(), seed=0)
    from bombo.models.losses.tg_matl import tg_matl_selection_mask
    assert not torch.equal(
        tg_matl_selection_mask(train_scores, labels, 0.3, 0.1, 'next'),
        tg_matl_selection_mask(batch.score(orig, sizes), labels, 0.3, 0.1,
                               'next'))
    # those statistics are in units of the image size: no ori_shape, no loss
    with pytest.raises(ValueError, match='ori_shape'):
        h.loss(x, samples(scale=2.0))
    # a file without the statistics: per-batch fit, with a warning
    plain = str(tmp_path / 'plain.json')
    BoxLabeler.fit(train, train_labels, seed=0).save(plain)
    logger = MMLogger.get_current_instance()
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect()
    logger.addHandler(handler)
    try:
        h2 = head(plain, cfg)
    finally:
        logger.removeHandler(handler)
    assert h2.xcycwh_relevance is None
    assert any('fits them on each batch' in m for m in seen)
