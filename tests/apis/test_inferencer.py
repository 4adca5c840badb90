"""Inference with bombo configs: PartialDetInferencer, and mmdet's own
DetInferencer on ``inference_cfg(cfg)``."""
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
from mmdet.apis import DetInferencer
from mmengine.config import Config
from mmengine.dataset import Compose
from pycocotools import mask as mask_utils

from bombo.apis import PartialDetInferencer, inference_cfg, inference_pipeline
from conftest import ROOT
from tiny_model import IMAGE_SHAPE, assert_drawn, tiny_model  # noqa: F401

CONFIGS = [  # each kind of test pipeline the configs have
    'configs/toy/toy_r18_fpn_mtl.py',                    # VOC layout
    'configs/bombo/bombo_r18_fpn_coco.py',               # + InstancesToSemSeg
    'configs/own_data/bombo_r18_fpn_own_coco.py',
    'configs/toy/retinanet_r18_fpn_toy_det.py',          # mmdet's own steps
]


@pytest.mark.parametrize('config', CONFIGS)
def test_inference_pipeline_loads_plain_images(config, tiny_model):  # noqa
    cfg = Config.fromfile(osp.join(ROOT, config))
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    before = [dict(step) for step in test_pipeline]
    pipeline = inference_pipeline(test_pipeline)
    assert [s['type'] for s in pipeline][:2] == ['LoadImageFromFile',
                                                 'Resize']
    assert pipeline[-1]['type'] in ('PackPartialInputs', 'PackDetInputs')
    assert 'on_error' not in pipeline[0]
    assert len(pipeline) == 3  # annotation-loading steps are gone
    assert [dict(step) for step in test_pipeline] == before  # a new list

    out = Compose(pipeline)(dict(img_path=tiny_model.image))
    assert out['data_samples'].ori_shape == IMAGE_SHAPE
    assert 'gt_sem_seg' not in out['data_samples']

    cfg.visualizer.type = 'DetLocalVisualizer'  # as mmdet's configs
    converted = inference_cfg(cfg)
    assert converted.visualizer.type == 'PartialDetLocalVisualizer'
    assert cfg.visualizer.type == 'DetLocalVisualizer'  # a copy
    assert cfg.test_dataloader.dataset.pipeline[0].type != \
        'LoadImageFromFile' or converted is not cfg


def _decode(rle):
    return mask_utils.decode(dict(rle, counts=rle['counts'].encode()))


def test_partial_inferencer_keeps_and_draws_the_semantic_map(
        tiny_model, tmp_path):  # noqa: F811
    inferencer = PartialDetInferencer(
        model=tiny_model.config, weights=tiny_model.checkpoint,
        device='cpu', show_progress=False)
    out = str(tmp_path / 'out')
    result = inferencer(tiny_model.image, out_dir=out, no_save_pred=False,
                        pred_score_thr=1.0)  # no box over the mask
    pred = result['predictions'][0]
    assert {'labels', 'scores', 'bboxes', 'sem_seg', 'sem_seg_path'} <= \
        set(pred)

    # the label map: a 1-channel PNG at the image's size, 0 = background
    label_map = mmcv.imread(pred['sem_seg_path'], flag='unchanged')
    assert label_map.shape == IMAGE_SHAPE and label_map.dtype == np.uint8
    assert pred['sem_seg_path'] == osp.join(out, 'preds', 'img_sem_seg.png')
    assert set(np.unique(label_map)) <= {0, 1, 2, 3}
    # RLE per class present, labels counted from 0 as the boxes' labels
    sem_seg = pred['sem_seg']
    assert sem_seg['labels'] == [int(v) - 1 for v in np.unique(label_map)
                                 if v != 0]
    for k, rle in zip(sem_seg['labels'], sem_seg['masks']):
        assert rle['size'] == list(IMAGE_SHAPE)
        np.testing.assert_array_equal(_decode(rle), label_map == k + 1)
    # the json on disk holds the same, the semantic map included
    with open(osp.join(out, 'preds', 'img.json')) as f:
        assert json.load(f) == json.loads(json.dumps(pred))

    # the drawn image: every predicted class in its palette colour
    drawn = mmcv.imread(osp.join(out, 'vis', 'img.png'), channel_order='rgb')
    image = mmcv.imread(tiny_model.image, channel_order='rgb')
    assert drawn.shape == image.shape
    assert_drawn(drawn, image, label_map, tol=2, min_fraction=0.5)


def test_mmdet_inferencer_runs_on_the_inference_cfg(tiny_model):  # noqa
    """mmdet's DetInferencer finds the loader by type name only: it refuses
    bombo's config, and runs on ``inference_cfg(cfg)`` (boxes and drawn
    semantic map; its predictions have no semantic map)."""
    with pytest.raises(ValueError, match='LoadImageFromFile is not found'):
        DetInferencer(model=tiny_model.cfg, weights=tiny_model.checkpoint,
                      device='cpu')
    inferencer = DetInferencer(model=inference_cfg(tiny_model.cfg),
                               weights=tiny_model.checkpoint, device='cpu',
                               show_progress=False)
    assert type(inferencer.visualizer).__name__ == \
        'PartialDetLocalVisualizer'
    result = inferencer(tiny_model.image, return_vis=True,
                        return_datasamples=True, pred_score_thr=1.0)
    sample = result['predictions'][0]
    label_map = sample.pred_sem_seg.sem_seg[0].numpy()
    assert label_map.shape == IMAGE_SHAPE and len(sample.pred_instances)
    image = mmcv.imread(tiny_model.image, channel_order='rgb')
    assert_drawn(result['visualization'][0], image, label_map, tol=2,
                 min_fraction=0.5)
