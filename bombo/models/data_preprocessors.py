"""Data preprocessor for batches that mix detection and segmentation images."""
import torch.nn.functional as F
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmdet.structures import SampleList

SEG_KEYS = ('gt_sem_seg', 'gt_box_mask')


@MODELS.register_module()
class PartialDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` that pads the semantic maps of *every* sample
    that has one.

    mmdet's version looks at the first sample only to decide whether the batch
    has ``gt_sem_seg``; in a partially annotated batch (detection images
    first, segmentation images after) that skips the masks or fails. Maps are
    padded at the bottom/right with ``seg_pad_value`` (255, ignored), to the
    padded input size. Besides ``gt_sem_seg`` the Box-for-Mask box-shaped mask
    ``gt_box_mask`` is padded the same way.
    """

    def __init__(self, *args, pad_seg: bool = True, seg_pad_value: int = 255,
                 **kwargs):
        super().__init__(*args, pad_seg=pad_seg,
                         seg_pad_value=seg_pad_value, **kwargs)

    def pad_gt_sem_seg(self, batch_data_samples: SampleList) -> None:
        for sample in batch_data_samples:
            pad_h, pad_w = sample.batch_input_shape
            for key in SEG_KEYS:
                if key not in sample:
                    continue
                seg = getattr(sample, key).sem_seg
                h, w = seg.shape[-2:]
                getattr(sample, key).sem_seg = F.pad(
                    seg, pad=(0, max(pad_w - w, 0), 0, max(pad_h - h, 0)),
                    mode='constant', value=self.seg_pad_value)
