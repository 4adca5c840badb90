"""Panoptic-FPN-style semantic head with Box-for-Mask's attention branch."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.layers import ConvUpsample
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.model import BaseModule
from mmengine.structures import PixelData
from torch import Tensor


@MODELS.register_module()
class SemanticFPNHead(BaseModule):
    """Semantic segmentation head aggregating FPN levels (Kirillov et al.,
    Panoptic FPN, CVPR 2019), as the BoMBo paper's semantic head.

    Each input level ``i`` (stride ``4 * 2**i`` when the first level is P2) is
    brought to the first level's resolution by ``ConvUpsample`` (3x3 conv,
    norm, ReLU, 2x bilinear upsampling, repeated), the levels are summed into
    the feature map ``z`` and a 1x1 convolution gives the logits ``M^l`` with
    ``num_classes + 1`` channels (channel 0 is the background). Logits are
    upsampled to the padded input size; the loss is the softmax cross-entropy
    with ``ignore_index`` (255 in VOC).

    mmdet's ``PanopticFPNHead`` is not reused: it merges every *thing* class
    into one channel and its loss ignores -1 at 1/4 resolution; a
    21-class semantic head needs neither.

    Box-for-Mask (BoMBo paper, Sec. 3.3, Fig. 3): with ``with_attention=True``
    an identical, parallel 1x1 convolution produces the attention map
    ``alpha`` (one map per class, background included) and the prediction is
    ``M = M^l * alpha`` (Hadamard product). ``alpha`` is bounded to (0, 1) by
    a sigmoid: it is trained by MSE against the one-hot box-shaped mask
    (Eq. 3), whose targets are 0/1, and a bounded gate cannot flip the sign
    of a logit, so the argmax of ``M`` can only move towards classes the
    attention supports. Its bias is initialised so that ``alpha`` starts near
    1 (the head starts as the plain head).

    Args:
        num_classes (int): number of object classes (background excluded).
        in_channels (int): channels of every FPN level.
        feat_channels (int): channels of ``z``. Default 128.
        num_levels (int): how many FPN levels are aggregated. Default 4.
        with_attention (bool): add the B4M attention branch. Default False.
        ignore_index (int): label ignored by the loss. Default 255.
        loss_seg (dict): the semantic loss (softmax cross-entropy).
        norm_cfg (dict): normalisation in ``ConvUpsample``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 128,
                 num_levels: int = 4,
                 with_attention: bool = False,
                 ignore_index: int = 255,
                 loss_seg: dict = dict(type='CrossEntropyLoss',
                                       use_sigmoid=False,
                                       avg_non_ignore=True,
                                       loss_weight=1.0),
                 norm_cfg: Optional[dict] = dict(type='GN', num_groups=8,
                                                 requires_grad=True),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.num_levels = num_levels
        self.ignore_index = ignore_index
        self.with_attention = with_attention
        self.convs = nn.ModuleList([
            ConvUpsample(in_channels, feat_channels,
                         num_layers=max(i, 1), num_upsample=i,
                         norm_cfg=norm_cfg) for i in range(num_levels)
        ])
        self.conv_logits = nn.Conv2d(feat_channels, num_classes + 1, 1)
        if with_attention:
            self.conv_attention = nn.Conv2d(feat_channels, num_classes + 1, 1)
        loss_seg = dict(loss_seg)
        loss_seg.setdefault('ignore_index', ignore_index)
        self.loss_seg = MODELS.build(loss_seg)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.normal_(self.conv_logits.weight, std=0.01)
        nn.init.zeros_(self.conv_logits.bias)
        if self.with_attention:
            nn.init.normal_(self.conv_attention.weight, std=0.01)
            nn.init.constant_(self.conv_attention.bias, 3.0)

    def forward(self, x: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Args:
            x: FPN features, finest first, each (B, in_channels, H_l, W_l).

        Returns:
            dict with ``seg_preds`` (B, C+1, H_0, W_0), the modulated logits
            ``M``; ``logits`` (``M^l``); ``feats`` (``z``, B, feat_channels,
            H_0, W_0); and ``attention`` (``alpha``) when enabled.
        """
        feats = self.forward_feats(x)
        logits = self.conv_logits(feats)
        out = dict(logits=logits, feats=feats, seg_preds=logits)
        if self.with_attention:
            attention = self.conv_attention(feats).sigmoid()
            out['attention'] = attention
            out['seg_preds'] = logits * attention
        return out

    def forward_feats(self, x: Sequence[Tensor]) -> Tensor:
        """Only ``z`` (B, feat_channels, H_0, W_0), the input of the logit
        and attention layers: what Box-for-Mask's memory-bank keys read
        (no logits, no attention map)."""
        if len(x) < self.num_levels:
            raise ValueError(f'SemanticFPNHead needs {self.num_levels} '
                             f'levels, got {len(x)}')
        feats = self.convs[0](x[0])
        for i in range(1, self.num_levels):
            feats = feats + self.convs[i](x[i])
        return feats

    @staticmethod
    def stack_gt(batch_data_samples: SampleList, key: str = 'gt_sem_seg'
                 ) -> Tensor:
        """Stack the (padded) ground-truth maps to (B, H, W) long."""
        return torch.stack([getattr(s, key).sem_seg[0]
                            for s in batch_data_samples]).long()

    def check_labels(self, gt: Tensor, batch_data_samples: SampleList,
                     key: str = 'gt_sem_seg') -> None:
        """Refuse labels outside ``0..num_classes`` and ``ignore_index``
        (they would end in torch's ``Target N is out of bounds``), naming
        the images."""
        bad = (gt != self.ignore_index) & ((gt < 0) | (gt > self.num_classes))
        if not bool(bad.any()):
            return
        names = [s.metainfo.get('img_path', '?') for s, b in
                 zip(batch_data_samples, bad.flatten(1).any(1)) if b]
        raise ValueError(
            f'{key} holds labels {torch.unique(gt[bad]).tolist()} outside '
            f'0..{self.num_classes} (and {self.ignore_index} = ignore) in '
            f'{names[:3]}: the model has num_classes={self.num_classes}; '
            'check the class list (metainfo) and num_classes of the config')

    def upsample(self, preds: Tensor, size: Tuple[int, int]) -> Tensor:
        return F.interpolate(preds, size=size, mode='bilinear',
                             align_corners=False)

    def loss_from_outputs(self, outs: Dict[str, Tensor],
                          batch_data_samples: SampleList) -> Tensor:
        """Cross-entropy of ``seg_preds`` against ``gt_sem_seg``."""
        gt = self.stack_gt(batch_data_samples)
        self.check_labels(gt, batch_data_samples)
        preds = self.upsample(outs['seg_preds'], gt.shape[-2:])
        return self.loss_seg(preds, gt)

    def loss(self, x: Sequence[Tensor],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        outs = self(x)
        return dict(loss_seg=self.loss_from_outputs(outs, batch_data_samples))

    def predict(self, x: Sequence[Tensor], batch_data_samples: SampleList,
                rescale: bool = True) -> List[PixelData]:
        """Per-image label maps at the original image size (``rescale``)."""
        outs = self(x)
        pad_shape = batch_data_samples[0].metainfo['batch_input_shape']
        preds = self.upsample(outs['seg_preds'], pad_shape)
        results = []
        for pred, sample in zip(preds, batch_data_samples):
            h, w = sample.metainfo['img_shape'][:2]
            pred = pred[:, :h, :w]
            if rescale:
                oh, ow = sample.metainfo['ori_shape'][:2]
                pred = self.upsample(pred[None], (oh, ow))[0]
            results.append(PixelData(
                sem_seg=pred.argmax(0, keepdim=True),
                metainfo=dict(ignore_index=self.ignore_index)))
        return results
