"""Box-level embedding head trained with MATL / TG-MATL / DAAL / triplet
losses, for any mmdet detector with FPN features.

For every ground-truth box of the detection-annotated samples, features are
pooled from the FPN level that fits its size with RoIAlign (mmdet's
``SingleRoIExtractor`` over ``mmcv.ops.RoIAlign``), passed through a small
projection (conv + two fc layers) to an embedding, and the metric-learning
loss is computed over all boxes of the batch. Class labels come from
``gt_instances.labels``; MATL box labels and TG-MATL relevance scores come
from a :class:`~bombo.models.task_modules.box_labels.BoxLabeler` fitted once
on the training annotations (``tools/fit_box_labels.py``), applied to the
boxes mapped back to original-image pixels (divided by the sample's
``scale_factor``), i.e. the coordinates the labeler was fitted in.

TG-MATL relevance (Eq. (5)) follows the loss's ``relevance_features``:
``'shape'`` (default, paper) uses the MI stored in the box-label file (fitted
on the training set); ``'xcycwh'`` (the authors' public code) uses the boxes'
centre and size divided by the original image size (``ori_shape``). Its
min-max range and MI come from the box-label file when
``tools/fit_box_labels.py`` fitted them on the training set (it does whenever
the annotations give the image sizes: the ``relevance`` entry of the JSON),
the same training-set statistics as ``'shape'``. A file without them (written
before they existed, or from annotations without image sizes) falls back to
fitting them on the boxes of the current batch
(:class:`~bombo.models.losses.tg_matl.TGMATLRelevance`, seeded, on the CPU;
the reference fits them on the set it trains on), with a warning at
construction.
"""
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from bombo.models.losses.daal import DAALLoss
from bombo.models.losses.matl import MATLLoss
from bombo.models.losses.tg_matl import TGMATLLoss, TGMATLRelevance
from bombo.models.losses.triplet import TripletMarginLoss
from bombo.models.task_modules.box_labels import BoxLabeler


@MODELS.register_module()
class MATLEmbeddingHead(BaseModule):
    """Embedding head for box-level metric learning (MATL, paper 000;
    TG-MATL, paper 001; DAAL, paper 002).

    Args:
        in_channels (int): FPN channels C.
        featmap_strides (Sequence[int]): strides of the FPN levels used (the
            first ``len(featmap_strides)`` levels of ``x``).
        roi_size (int): RoIAlign output size. Default 7.
        conv_channels (int): channels of the 3x3 conv after pooling.
        fc_channels (int): hidden fc width.
        embed_dims (int): embedding size D.
        normalize (bool): L2-normalise the embeddings. Default True.
        loss (dict): a registered loss: ``MATLLoss``, ``TGMATLLoss``,
            ``DAALLoss`` or ``TripletMarginLoss``; its ``loss_weight`` is the
            weight added to the detection losses.
        box_labels_file (str, optional): JSON written by
            ``tools/fit_box_labels.py``; required by MATL and TG-MATL.
        max_boxes (int): at most this many boxes per batch (random subset).
        finest_scale (int): ``SingleRoIExtractor``'s level-mapping scale.
        init_cfg (dict, optional): initialisation.
    """

    def __init__(self,
                 in_channels: int,
                 featmap_strides: Sequence[int] = (8, 16, 32, 64, 128),
                 roi_size: int = 7,
                 conv_channels: int = 128,
                 fc_channels: int = 256,
                 embed_dims: int = 128,
                 normalize: bool = True,
                 loss: dict = dict(type='MATLLoss', box_weight=0.25,
                                   margin=0.1, loss_weight=0.1),
                 box_labels_file: Optional[str] = None,
                 max_boxes: int = 1024,
                 finest_scale: int = 56,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_levels = len(featmap_strides)
        self.roi_extractor = MODELS.build(dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=roi_size,
                           sampling_ratio=0),
            out_channels=in_channels,
            featmap_strides=list(featmap_strides),
            finest_scale=finest_scale))
        self.conv = ConvModule(in_channels, conv_channels, 3, padding=1,
                               act_cfg=dict(type='ReLU'))
        self.fc1 = nn.Linear(conv_channels * roi_size * roi_size, fc_channels)
        self.fc2 = nn.Linear(fc_channels, embed_dims)
        self.normalize = normalize
        self.max_boxes = max_boxes
        self.loss_fn = MODELS.build(loss)
        if not isinstance(self.loss_fn, (MATLLoss, TGMATLLoss, DAALLoss,
                                         TripletMarginLoss)):
            raise TypeError(f'unsupported embedding loss {type(self.loss_fn)}')
        self.box_labeler = None
        if box_labels_file is not None:
            self.box_labeler = BoxLabeler.load(box_labels_file)
        if isinstance(self.loss_fn, (MATLLoss, TGMATLLoss)):
            if self.box_labeler is None:
                raise ValueError(
                    f'{type(self.loss_fn).__name__} needs box labels: fit '
                    'them with tools/fit_box_labels.py and set '
                    'box_labels_file')
            if isinstance(self.loss_fn, TGMATLLoss) and \
                    self.box_labeler.mutual_info is None:
                raise ValueError('TGMATLLoss needs a box-label file fitted '
                                 'with class labels (mutual information)')
        self.xcycwh_relevance = None
        if isinstance(self.loss_fn, TGMATLLoss) and \
                self.loss_fn.relevance_features == 'xcycwh':
            fitted = self.box_labeler.relevance_fits.get('xcycwh')
            if fitted is not None:
                self.xcycwh_relevance = TGMATLRelevance(**fitted)
            else:
                print_log(
                    f'{box_labels_file} has no training-set xcycwh relevance '
                    "statistics: TG-MATL relevance_features='xcycwh' fits "
                    'them on each batch; refit the file with '
                    'tools/fit_box_labels.py (annotations with image sizes) '
                    'to use training-set statistics', logger='current',
                    level=logging.WARNING)

    # ------------------------------------------------------------ embedding
    def forward(self, x: Tuple[Tensor, ...], rois: Tensor) -> Tensor:
        """Embed boxes.

        Args:
            x (tuple[Tensor]): FPN features, each (B, C, H_l, W_l).
            rois (Tensor): (N, 5) ``[batch_idx, x1, y1, x2, y2]`` in input
                pixels (``mmdet.structures.bbox.bbox2roi``).

        Returns:
            Tensor: (N, D) embeddings.
        """
        feats = self.roi_extractor(tuple(x[:self.num_levels]), rois)
        out = F.relu(self.fc1(self.conv(feats).flatten(1)))
        out = self.fc2(out)
        return F.normalize(out, dim=1) if self.normalize else out

    def embed(self, x: Tuple[Tensor, ...],
              boxes: List[Tensor]) -> Tensor:
        """Embed per-image lists of (n_i, 4) xyxy boxes; returns (sum n_i, D).
        """
        return self(x, bbox2roi([get_box_tensor(b) for b in boxes]))

    # ----------------------------------------------------------------- loss
    @staticmethod
    def _original_boxes(boxes: Tensor, metainfo: dict) -> Tensor:
        """Input-image boxes back to original-image pixels (undo Resize)."""
        scale = metainfo.get('scale_factor')
        if scale is None:
            return boxes
        scale = boxes.new_tensor(scale[:2]).repeat(2)
        return boxes / scale

    def _zero_loss(self, x: Tuple[Tensor, ...]) -> Tensor:
        # keep every parameter in the graph (DDP) with a zero contribution
        zero = sum(p.sum() for p in self.parameters()) * 0.0
        return zero + sum(f.sum() for f in x[:self.num_levels]) * 0.0

    def _relevance(self, orig: Tensor, labels: Tensor,
                   sizes: Tensor) -> Tensor:
        """TG-MATL relevance (Eq. (5)) of the batch's boxes (module doc)."""
        if self.loss_fn.relevance_features == 'shape':
            return self.box_labeler.relevance(orig)
        if self.xcycwh_relevance is not None:
            return self.xcycwh_relevance.score(orig, sizes)
        rel = TGMATLRelevance.fit(orig.detach().cpu().numpy(),
                                  labels.cpu().numpy(), mode='xcycwh',
                                  image_sizes=sizes.cpu().numpy(), seed=0)
        return rel.score(orig, sizes)

    def loss(self, x: Tuple[Tensor, ...],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Embedding loss over the ground-truth boxes of the batch.

        Args:
            x (tuple[Tensor]): FPN features (B, C, H_l, W_l) of the samples in
                ``batch_data_samples`` (same order).
            batch_data_samples (list[DetDataSample]): with
                ``gt_instances.bboxes`` (xyxy, input pixels) and
                ``gt_instances.labels``.

        Returns:
            dict[str, Tensor]: ``loss_embed`` (already weighted).
        """
        if len(batch_data_samples) != x[0].size(0):
            raise ValueError(f'{len(batch_data_samples)} data samples for a '
                             f'feature batch of {x[0].size(0)}')
        boxes = [get_box_tensor(s.gt_instances.bboxes).float()
                 for s in batch_data_samples]
        labels = torch.cat([s.gt_instances.labels for s in batch_data_samples])
        orig = torch.cat([self._original_boxes(b, s.metainfo)
                          for b, s in zip(boxes, batch_data_samples)])
        # original image (H, W) of every box, for 'xcycwh' relevance; pixel
        # units (1, 1) when the sample has no ori_shape (per-batch fit only:
        # training-set statistics are in units of the image size)
        if self.xcycwh_relevance is not None and any(
                'ori_shape' not in s.metainfo for s in batch_data_samples):
            raise ValueError(
                "TG-MATL relevance_features='xcycwh' with the box-label "
                "file's training-set statistics needs every sample's "
                "ori_shape (set by mmdet's LoadImageFromFile)")
        sizes = torch.cat([
            orig.new_tensor(s.metainfo.get('ori_shape', (1, 1))[:2]).expand(
                len(b), 2) for b, s in zip(boxes, batch_data_samples)])
        rois = bbox2roi(boxes)
        if rois.size(0) < 2:
            return dict(loss_embed=self._zero_loss(x))
        if rois.size(0) > self.max_boxes:
            keep = torch.randperm(rois.size(0),
                                  device=rois.device)[:self.max_boxes]
            rois, labels, orig = rois[keep], labels[keep], orig[keep]
            sizes = sizes[keep]
        emb = self(x, rois)
        if isinstance(self.loss_fn, TGMATLLoss):
            loss = self.loss_fn(emb, labels, self.box_labeler.predict(orig),
                                self._relevance(orig, labels, sizes))
        elif isinstance(self.loss_fn, MATLLoss):
            loss = self.loss_fn(emb, labels, self.box_labeler.predict(orig))
        else:
            loss = self.loss_fn(emb, labels)
        return dict(loss_embed=loss)
