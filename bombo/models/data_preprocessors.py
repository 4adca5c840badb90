"""Data preprocessor for batches that mix detection and segmentation images."""
import torch.nn.functional as F
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.structures import PixelData

SEG_KEYS = ('gt_sem_seg', 'gt_box_mask')


@MODELS.register_module()
class PartialDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` that pads the semantic maps of *every* sample
    that has one.

    mmdet's version looks at the first sample only to decide whether the batch
    has ``gt_sem_seg``; in a partially annotated batch (detection images
    first, segmentation images after) that skips the masks or fails. Maps are
    padded at the bottom/right with ``seg_pad_value`` (255, ignored), to the
    padded input size (``batch_input_shape``), into a *new* ``PixelData``
    (mmengine's ``PixelData`` refuses a field whose H x W differs from the
    existing ones), keeping its metainfo. Besides ``gt_sem_seg`` the
    Box-for-Mask box-shaped mask ``gt_box_mask`` is padded the same way.

    A map whose size differs from its image's (``img_shape``) is refused with
    an error naming the image: it would be misaligned with the pixels.
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
                old = getattr(sample, key)
                seg = old.sem_seg
                h, w = seg.shape[-2:]
                img_shape = sample.metainfo.get('img_shape')
                if img_shape is not None and (h, w) != tuple(img_shape[:2]):
                    raise ValueError(
                        f'{key} of {sample.metainfo.get("img_path")!r} is '
                        f'{h}x{w} but the image is {img_shape[0]}x'
                        f'{img_shape[1]} after the pipeline: the mask does '
                        'not belong to this image (or a transform resized '
                        'one and not the other)')
                if h > pad_h or w > pad_w:
                    raise ValueError(
                        f'{key} of {sample.metainfo.get("img_path")!r} '
                        f'({h}x{w}) is larger than the batch ({pad_h}x'
                        f'{pad_w})')
                padded = F.pad(seg, pad=(0, pad_w - w, 0, pad_h - h),
                               mode='constant', value=self.seg_pad_value)
                setattr(sample, key,
                        PixelData(sem_seg=padded, metainfo=old.metainfo))
