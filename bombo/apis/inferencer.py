"""Inference on images with a bombo config and checkpoint.

mmdet's ``DetInferencer`` refuses bombo's configs and drops the semantic
map:

* its ``_init_pipeline`` looks the image loader up by *type name*: it takes
  the test pipeline's step whose ``type`` is the string
  ``'LoadImageFromFile'`` or mmcv's ``LoadImageFromFile`` class itself (no
  registry lookup, no ``isinstance``), so bombo's registered subclass
  ``LoadImageOrSkip`` is not found ("LoadImageFromFile is not found in the
  test pipeline") and registering more names cannot help;
* bombo's test pipelines load annotations (``LoadPartialAnnotations``,
  ``InstancesToSemSeg``), which images given to an inferencer do not have;
* its ``pred2dict`` keeps boxes, instance masks and panoptic maps only;
* the configs' ``DetLocalVisualizer`` cannot draw bombo's semantic labels.

:func:`inference_cfg` rewrites a config for inference: the loader becomes
``LoadImageFromFile`` (``on_error`` dropped: an unreadable image raises),
annotation-loading steps are removed, and ``DetLocalVisualizer`` becomes
:class:`~bombo.visualization.PartialDetLocalVisualizer`. With it mmdet's own
``DetInferencer(model=inference_cfg(cfg), weights=ckpt)`` runs and draws the
semantic map; :class:`PartialDetInferencer` does the same rewriting itself
(also for a config path or a config stored in the checkpoint) and keeps
``pred_sem_seg`` in its predictions.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Union

import mmcv
import mmengine
import numpy as np
from mmdet.apis import DetInferencer
from mmdet.structures import DetDataSample
from mmdet.structures.mask import encode_mask_results
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose

#: test-pipeline steps that read annotations: not run on plain images
ANNOTATION_TRANSFORMS = ('LoadAnnotations', 'LoadPartialAnnotations',
                         'InstancesToSemSeg', 'LoadPseudoMask',
                         'GenerateBoxMask', 'LoadPanopticAnnotations')
#: bombo's image loaders, replaced by mmcv's LoadImageFromFile
BOMBO_LOADERS = ('LoadImageOrSkip', )
#: visualizers that cannot draw bombo's semantic labels
MMDET_VISUALIZERS = ('DetLocalVisualizer', )
VISUALIZER = 'PartialDetLocalVisualizer'


def _type_name(obj_type) -> str:
    """``'mmdet.LoadAnnotations'`` / a class → ``'LoadAnnotations'``."""
    if isinstance(obj_type, type):
        return obj_type.__name__
    return str(obj_type).rpartition('.')[2]


def inference_pipeline(pipeline: List[dict]) -> List[dict]:
    """A test pipeline for images without annotations: bombo's loader
    becomes ``LoadImageFromFile``, annotation-loading steps are dropped.
    Returns a new list; the given one is left as it is."""
    out = []
    for step in pipeline:
        name = _type_name(step['type'])
        if name in ANNOTATION_TRANSFORMS:
            continue
        step = copy.deepcopy(step)
        if name in BOMBO_LOADERS:
            step.pop('on_error', None)
            step['type'] = 'LoadImageFromFile'
        out.append(step)
    return out


def _rewrite_pipeline(cfg: Config) -> None:
    dataset = cfg.test_dataloader.dataset
    dataset.pipeline = inference_pipeline(dataset.pipeline)


def _rewrite_visualizer(cfg: Config) -> None:
    if 'visualizer' in cfg and \
            _type_name(cfg.visualizer.get('type')) in MMDET_VISUALIZERS:
        cfg.visualizer.type = VISUALIZER


def inference_cfg(cfg: Union[Config, ConfigDict, dict]) -> Config:
    """A copy of a bombo config that mmdet's ``DetInferencer`` accepts (see
    the module docstring)."""
    cfg = copy.deepcopy(cfg) if isinstance(cfg, Config) else \
        Config(copy.deepcopy(dict(cfg)))
    _rewrite_pipeline(cfg)
    _rewrite_visualizer(cfg)
    return cfg


def encode_sem_seg(label_map: np.ndarray, ignore_index: int = 255) -> Dict:
    """A bombo label map (0 = background, ``k + 1`` = class ``k``) as COCO
    RLE, one binary mask per class present: ``{'labels': [k, ...], 'masks':
    [{'size': [h, w], 'counts': str}, ...]}`` (``labels`` count classes from
    0, as the boxes' ``labels`` do)."""
    present = [int(v) for v in np.unique(label_map)
               if v != 0 and v != ignore_index]
    masks = encode_mask_results([label_map == v for v in present])
    for rle in masks:
        if isinstance(rle['counts'], bytes):
            rle['counts'] = rle['counts'].decode()
    return dict(labels=[v - 1 for v in present], masks=list(masks))


class PartialDetInferencer(DetInferencer):
    """mmdet's ``DetInferencer`` for bombo's configs and checkpoints.

    Example::

        from bombo.apis import PartialDetInferencer
        inferencer = PartialDetInferencer(
            model='configs/toy/toy_r18_fpn_mtl.py',
            weights='work_dirs/demo/iter_1600.pth', device='cpu')
        result = inferencer('demo.jpg', out_dir='outputs/', no_save_pred=False)

    ``model`` is a config path (read with bombo's ``load_config``, so
    ``data_root`` / ``num_classes`` propagate), a ``Config`` or ``None``
    (the config stored in the checkpoint). The test pipeline and the
    visualizer are rewritten as :func:`inference_cfg` does. Each prediction
    holds mmdet's ``labels``, ``scores``, ``bboxes`` and

    * ``sem_seg``: the semantic map as COCO RLE per class present
      (:func:`encode_sem_seg`), json-serialisable;
    * with ``out_dir`` (and ``no_save_pred=False``): ``sem_seg_path``, the
      label map as a 1-channel PNG ``<out_dir>/preds/<image>_sem_seg.png``
      (0 = background, ``k + 1`` = class ``k``), next to mmdet's
      ``<out_dir>/preds/<image>.json``.

    The image written to ``<out_dir>/vis/`` shows the boxes above
    ``pred_score_thr`` and the semantic map.

    ``weights`` load with ``torch.load(weights_only=True)``; a checkpoint
    torch refuses raises :class:`~bombo.engine.UnsafeCheckpointError`
    naming ``tools/misc/convert_checkpoint.py``.
    """

    def __init__(self,
                 model: Optional[Union[str, Config, ConfigDict,
                                       dict]] = None,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = 'mmdet',
                 palette: str = 'none',
                 show_progress: bool = True) -> None:
        if isinstance(model, str) and osp.isfile(model):
            from ..utils.config import load_config
            model = load_config(model)
        from ..engine.checkpoint_io import checkpoint_errors
        with checkpoint_errors(weights):  # names the converter
            super().__init__(model=model, weights=weights, device=device,
                             scope=scope, palette=palette,
                             show_progress=show_progress)

    def _init_pipeline(self, cfg: Config) -> Compose:
        _rewrite_pipeline(cfg)
        return super()._init_pipeline(cfg)

    def _init_visualizer(self, cfg: Config):
        _rewrite_visualizer(cfg)
        return super()._init_visualizer(cfg)

    def pred2dict(self, data_sample: DetDataSample,
                  pred_out_dir: str = '') -> Dict:
        """mmdet's prediction dict plus the semantic map (class docstring)."""
        index = self.num_predicted_imgs  # mmdet's name for array inputs
        result = super().pred2dict(data_sample, pred_out_dir)
        if 'pred_sem_seg' not in data_sample:
            return result
        sem_seg = data_sample.pred_sem_seg
        ignore_index = sem_seg.metainfo.get('ignore_index', 255)
        label_map = sem_seg.sem_seg.cpu().numpy()[0].astype(np.uint8)
        result['sem_seg'] = encode_sem_seg(label_map, ignore_index)
        if pred_out_dir:
            stem = osp.splitext(osp.basename(data_sample.img_path))[0] \
                if 'img_path' in data_sample else str(index)
            png = osp.join(pred_out_dir, 'preds', f'{stem}_sem_seg.png')
            mmcv.imwrite(label_map, png)
            result['sem_seg_path'] = png
            # mmdet has written the json without the map: write it again
            mmengine.dump(result, osp.join(pred_out_dir, 'preds',
                                           f'{stem}.json'))
        return result


def init_detector(config: Union[str, Config],
                  checkpoint: Optional[str] = None,
                  device: Optional[str] = None,
                  cfg_options: Optional[dict] = None,
                  palette: str = 'none'):
    """mmdet's ``init_detector`` for bombo: a config path is read with
    bombo's ``load_config`` (``data_root`` / ``num_classes`` propagate,
    ``cfg_options`` applied), and a checkpoint that
    ``torch.load(weights_only=True)`` refuses raises
    :class:`~bombo.engine.UnsafeCheckpointError` naming
    ``tools/misc/convert_checkpoint.py`` instead of torch's
    ``UnpicklingError``. ``device`` None: ``'cuda:0'`` when CUDA is
    available, else ``'cpu'``."""
    import torch
    from mmdet.apis import init_detector as mmdet_init_detector

    from ..engine.checkpoint_io import checkpoint_errors
    if isinstance(config, str):
        from ..utils.config import load_config
        config, cfg_options = load_config(config, cfg_options), None
    if device is None:
        device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    with checkpoint_errors(checkpoint):
        return mmdet_init_detector(config, checkpoint, palette=palette,
                                   device=device, cfg_options=cfg_options)
