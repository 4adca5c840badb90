"""A single-stage detector with an extra box-embedding head (MATL / TG-MATL /
DAAL), so that any mmdet single-stage config can add the metric-learning
loss by changing ``type`` and adding ``embed_head``."""
from typing import Union

from torch import Tensor

from mmdet.models.detectors.single_stage import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class EmbeddingSingleStageDetector(SingleStageDetector):
    """``SingleStageDetector`` + ``embed_head`` (e.g.
    :class:`~bombo.models.heads.MATLEmbeddingHead`).

    Training adds ``embed_head.loss(neck_features, batch_data_samples)``
    (already weighted) to the detection losses; inference is unchanged.

    Usage in a config::

        model = dict(
            type='EmbeddingSingleStageDetector',
            embed_head=dict(type='MATLEmbeddingHead', in_channels=256,
                            box_labels_file='data/voc_box_labels.json'),
            ...)  # backbone, neck, bbox_head as for RetinaNet, FCOS, ...

    Args:
        embed_head (dict): config of the embedding head.
        Others: as :class:`SingleStageDetector`.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType = None,
                 bbox_head: OptConfigType = None,
                 embed_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.embed_head = MODELS.build(embed_head) if embed_head else None

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Union[dict, list]:
        """Detection losses plus ``loss_embed``."""
        x = self.extract_feat(batch_inputs)
        losses = self.bbox_head.loss(x, batch_data_samples)
        if self.embed_head is not None:
            losses.update(self.embed_head.loss(x, batch_data_samples))
        return losses
