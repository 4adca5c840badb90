"""tools/image_demo.py: the image with its boxes and semantic mask drawn,
predictions as json + label-map PNG; ``--help`` explains every flag."""
import json
import os
import os.path as osp

import cv2
import image_demo
import mmcv
import numpy as np
import pytest

from tiny_model import (IMAGE_SHAPE, assert_drawn, expected,  # noqa: F401
                        tiny_model)

FLAGS = ('--weights', '--out-dir', '--device', '--pred-score-thr',
         '--batch-size', '--palette', '--show', '--no-save-vis',
         '--no-save-pred', '--print-result', '--cfg-options')


def test_help_lists_every_flag_with_its_default(capsys, tmp_path,
                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        image_demo.main(['--help'])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in text, flag
    assert '(default: outputs)' in text and '(default: 0.3)' in text
    assert os.listdir(tmp_path) == []  # --help writes nothing


def test_demo_writes_boxes_and_the_semantic_mask(tiny_model, tmp_path):  # noqa
    out = str(tmp_path / 'demo')
    result = image_demo.main([
        tiny_model.image, tiny_model.config, '--weights',
        tiny_model.checkpoint, '--out-dir', out, '--device', 'cpu',
        '--pred-score-thr', '0', '--cfg-options',
        'model.test_cfg.max_per_img=2'])
    pred = result['predictions'][0]
    assert len(pred['bboxes']) == 2  # --cfg-options reached the model
    with open(osp.join(out, 'preds', 'img.json')) as f:
        assert json.load(f)['sem_seg_path'] == pred['sem_seg_path']

    drawn = mmcv.imread(osp.join(out, 'vis', 'img.png'), channel_order='rgb')
    image = mmcv.imread(tiny_model.image, channel_order='rgb')
    label_map = mmcv.imread(pred['sem_seg_path'], flag='unchanged')
    assert drawn.shape == image.shape and label_map.shape == IMAGE_SHAPE

    # the image with the semantic mask only, as the visualizer blends it
    mask_only = image.astype(float)
    for label in np.unique(label_map[label_map > 0]):
        where = label_map == label
        mask_only[where] = expected(image[where], int(label) - 1)
    # each box is drawn: its outline differs from the image with the mask
    h, w = IMAGE_SHAPE
    outline = np.zeros(IMAGE_SHAPE, np.uint8)
    for x1, y1, x2, y2 in np.round(pred['bboxes']).astype(int):
        x1, x2 = np.clip([x1, x2], 0, w - 1)
        y1, y2 = np.clip([y1, y2], 0, h - 1)
        box = np.zeros(IMAGE_SHAPE, bool)
        box[y1:y2 + 1, [x1, x2]] = box[[y1, y2], x1:x2 + 1] = True
        diff = np.abs(drawn[box].astype(float) - mask_only[box]).max(axis=1)
        assert (diff > 20).mean() > 0.3
        outline[box] = 1
    # the mask pixels away from the boxes (and their labels) carry their
    # class colour
    near_box = cv2.dilate(outline, np.ones((9, 9), np.uint8)) > 0
    assert_drawn(drawn, image, label_map, tol=2, min_fraction=0.3,
                 ignore=near_box)
