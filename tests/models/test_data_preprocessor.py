"""PartialDataPreprocessor on a real-looking batch: non-square images of
several sizes, detection images (with and without the B4M box mask) and
segmentation images, in one batch."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from bombo.models.data_preprocessors import PartialDataPreprocessor


def _sample(h, w, task, seg=None, box_mask=None):
    s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                    ann_task=task, img_path=f'{task}_{h}x{w}'))
    s.gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                  labels=torch.zeros(0, dtype=torch.long))
    if seg is not None:
        s.gt_sem_seg = PixelData(sem_seg=seg[None],
                                 metainfo=dict(ignore_index=255))
    if box_mask is not None:
        s.gt_box_mask = PixelData(sem_seg=box_mask[None])
    return s


def _batch():
    sizes = [(240, 320), (320, 213), (150, 200), (333, 250)]
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 255, (3, h, w), generator=g).to(torch.uint8)
              for h, w in sizes]
    maps = [torch.randint(0, 21, (h, w), generator=g).to(torch.uint8)
            for h, w in sizes]
    samples = [
        _sample(*sizes[0], 'det'),                       # boxes only
        _sample(*sizes[1], 'det', seg=maps[1], box_mask=maps[1] % 3),
        _sample(*sizes[2], 'seg', seg=maps[2]),
        _sample(*sizes[3], 'seg', seg=maps[3]),
    ]
    return inputs, samples, maps, sizes


def test_pads_every_map_of_a_mixed_batch_to_the_batch_shape():
    pre = PartialDataPreprocessor(pad_size_divisor=32, bgr_to_rgb=True)
    inputs, samples, maps, sizes = _batch()
    out = pre(dict(inputs=inputs, data_samples=samples), training=True)
    assert tuple(out['inputs'].shape) == (4, 3, 352, 320)
    for i, s in enumerate(out['data_samples']):
        assert s.batch_input_shape == (352, 320)
        if 'gt_sem_seg' not in s:
            assert i == 0
            continue
        seg = s.gt_sem_seg.sem_seg
        h, w = sizes[i]
        assert tuple(seg.shape) == (1, 352, 320)
        assert torch.equal(seg[0, :h, :w], maps[i])       # content kept
        assert (seg[0, h:] == 255).all() and (seg[0, :, w:] == 255).all()
        assert s.gt_sem_seg.metainfo.get('ignore_index', 255) == 255
    box = out['data_samples'][1].gt_box_mask.sem_seg
    assert tuple(box.shape) == (1, 352, 320)
    assert torch.equal(box[0, :320, :213], maps[1] % 3)


def test_a_map_of_another_size_than_its_image_is_named():
    pre = PartialDataPreprocessor(pad_size_divisor=32)
    inputs, samples, maps, sizes = _batch()
    samples[2].set_metainfo(dict(img_shape=(151, 200)))
    with pytest.raises(ValueError, match=r"seg_150x200.*150x200 but the "
                       r"image is 151x200"):
        pre(dict(inputs=inputs, data_samples=samples), training=True)


def test_evaluation_does_not_pad_maps():
    pre = PartialDataPreprocessor(pad_size_divisor=32)
    inputs, samples, maps, sizes = _batch()
    out = pre(dict(inputs=inputs, data_samples=samples), training=False)
    assert tuple(out['data_samples'][2].gt_sem_seg.sem_seg.shape) == \
        (1, 150, 200)
