"""PartialDetLocalVisualizer: bombo's semantic labels (0 = background,
k + 1 = class k, 255 = ignore) drawn in the class's palette colour, directly,
through DetVisualizationHook in a test run (what ``--show-dir`` switches on)
and through mmdet's browse_dataset.py."""
import itertools
import os
import os.path as osp
import runpy
import sys

import mmcv
import mmdet
import numpy as np
import pytest
import torch
from mmdet.registry import VISUALIZERS
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmdet.visualization.palette import get_palette
from mmengine.structures import InstanceData, PixelData

from conftest import TOY_CONFIG, tiny_cfg, tiny_overrides
from drawn import ALPHA, CLASSES, PALETTE, assert_drawn, expected

_names = (f'vis_test_{i}' for i in itertools.count())


def test_registered_and_draws_classes_in_their_palette_colour(tmp_path):
    vis = VISUALIZERS.build(dict(type='PartialDetLocalVisualizer',
                                 name=next(_names)))
    vis.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
    image = np.full((120, 180, 3), 100, np.uint8)
    seg = np.zeros((1, 120, 180), np.uint8)
    seg[0, 10:70, 10:70] = 1      # class 0
    seg[0, 10:70, 100:170] = 3    # class 2: the last one (mmdet: IndexError)
    seg[0, 90:110, :] = 255       # ignore
    sample = DetDataSample()
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(seg))
    sample.pred_sem_seg = PixelData(sem_seg=torch.from_numpy(seg).long())
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[100., 10., 170., 70.]]),
        labels=torch.tensor([2]), scores=torch.tensor([0.9]))
    out = str(tmp_path / 'drawn.png')
    vis.add_datasample('img', image, sample, out_file=out)

    drawn = mmcv.imread(out, channel_order='rgb')
    assert drawn.shape == (120, 360, 3)  # ground truth | prediction
    gt, pred = drawn[:, :180], drawn[:, 180:]
    assert_drawn(gt, image, seg[0], tol=2, min_fraction=0.6)
    assert_drawn(pred, image, seg[0], tol=2, min_fraction=0.6)
    # exact colours away from the label texts and the box
    np.testing.assert_allclose(gt[15, 15], expected(image[15, 15], 0),
                               atol=2)
    np.testing.assert_allclose(pred[65, 150], expected(image[65, 150], 2),
                               atol=2)
    assert (gt[100, 80] == 100).all() and (gt[80, 80] == 100).all()
    # the predicted box is drawn in the prediction only, and the mask
    # drawn after it leaves its line as sharp as without the mask
    assert not np.array_equal(pred[10:71, 100], gt[10:71, 100])
    np.testing.assert_allclose(
        pred[40, 100], 0.2 * 100 + 0.8 * np.array(PALETTE[2]), atol=2)

    # mmdet's own visualizer cannot draw the same sample
    plain = DetLocalVisualizer(name=next(_names))
    plain.dataset_meta = vis.dataset_meta
    with pytest.raises(IndexError):
        plain.add_datasample('img', image, sample, draw_pred=False)


def test_labels_beyond_the_palette_and_no_metadata_do_not_crash():
    vis = VISUALIZERS.build(dict(type='PartialDetLocalVisualizer',
                                 name=next(_names)))
    image = np.zeros((60, 60, 3), np.uint8)
    seg = torch.zeros((1, 60, 60), dtype=torch.long)
    seg[0, :30] = 7  # class 6 of a dataset without metadata
    sample = DetDataSample(pred_sem_seg=PixelData(sem_seg=seg))
    vis.add_datasample('img', image, sample, draw_gt=False)
    drawn = vis.get_image()
    colour = np.array(get_palette('random', 7)[6], float)
    np.testing.assert_allclose(drawn[2, 2], ALPHA * colour, atol=2)
    assert drawn[45].max() == 0


def _toy_config_options(toy_root, name):
    """cfg-options of the tiny toy config + this visualizer, no flipping."""
    options = {k: v for k, v in tiny_overrides(toy_root, '').items()
               if k != 'work_dir'}
    options.update({
        'visualizer.type': 'PartialDetLocalVisualizer',
        'visualizer.name': name,
        'train_dataloader.dataset.datasets.0.pipeline.3.prob': 0.0,
        'train_dataloader.dataset.datasets.1.pipeline.3.prob': 0.0,
    })
    return options


def _mask(seg_map_path):
    return mmcv.imread(seg_map_path, flag='unchanged', backend='pillow')


def test_visualization_hook_draws_ground_truth_and_prediction(
        toy_root, tmp_path, monkeypatch):
    """What ``tools/test.py --show-dir DIR`` sets: DetVisualizationHook with
    ``draw=True`` and ``test_out_dir``, on the toy validation images."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    # the Runner formats the config with yapf three times (log, dump,
    # vis backend): most of its start-up, and nothing this test looks at
    monkeypatch.setattr(Config, 'pretty_text', property(lambda c: c.text))
    cfg = tiny_cfg(toy_root, str(tmp_path))
    cfg.visualizer = dict(type='PartialDetLocalVisualizer', name=next(_names),
                          vis_backends=[dict(type='LocalVisBackend')])
    cfg.default_hooks.visualization = dict(  # score_thr: no predicted box
        type='DetVisualizationHook', draw=True, test_out_dir='show',
        score_thr=1.0)
    cfg.test_evaluator = [dict(type='SemanticIoUMetric')]
    runner = Runner.from_cfg(cfg)
    runner.test()

    dataset = runner.test_dataloader.dataset
    show = osp.join(str(tmp_path), runner.timestamp, 'show')
    assert len(os.listdir(show)) == len(dataset)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        image = mmcv.imread(info['img_path'], channel_order='rgb')
        drawn = mmcv.imread(osp.join(show, osp.basename(info['img_path'])),
                            channel_order='rgb')
        h, w = image.shape[:2]
        assert drawn.shape == (h, 2 * w, 3)
        # left: the ground truth (JPEG: a looser tolerance)
        assert_drawn(drawn[:, :w], image, _mask(info['seg_map_path']),
                     tol=12, min_fraction=0.1, erode=2)


def test_browse_dataset_draws_segmentation_and_detection_images(toy_root,
                                                                tmp_path):
    """mmdet's tools/analysis_tools/browse_dataset.py on bombo's training
    set (detection images, then segmentation images with gt_sem_seg)."""
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                      'analysis_tools', 'browse_dataset.py')
    if not osp.isfile(script):
        pytest.skip('mmdet was installed without its tools')
    out = str(tmp_path / 'browse')
    options = [f'{k}={v}' for k, v in
               _toy_config_options(toy_root, next(_names)).items()
               if k.startswith(('train_dataloader.dataset', 'visualizer'))]
    argv = [script, TOY_CONFIG, '--output-dir', out, '--not-show',
            '--cfg-options'] + options
    old_argv, sys.argv = sys.argv, argv
    try:
        runpy.run_path(script, run_name='__main__')
    finally:
        sys.argv = old_argv

    root = toy_root.rstrip('/')
    split = {s: open(f'{root}/ImageSets/Main/{s}_train.txt').read().split()
             for s in ('det', 'seg')}
    assert len(os.listdir(out)) == len(split['det']) + len(split['seg'])
    for stem in split['seg']:
        image = mmcv.imread(f'{root}/JPEGImages/{stem}.jpg',
                            channel_order='rgb')
        drawn = mmcv.imread(f'{out}/{stem}.jpg', channel_order='rgb')
        label_map = _mask(f'{root}/SegmentationClass/{stem}.png')
        assert (label_map > 0).any()
        assert_drawn(drawn, image, label_map, tol=12, min_fraction=0.1,
                     erode=2)
    for stem in split['det']:  # boxes drawn, nothing else
        image = mmcv.imread(f'{root}/JPEGImages/{stem}.jpg')
        drawn = mmcv.imread(f'{out}/{stem}.jpg')
        changed = np.abs(drawn.astype(int) - image).max(axis=2) > 40
        assert 0 < changed.mean() < 0.5
