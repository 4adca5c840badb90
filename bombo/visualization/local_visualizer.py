"""mmdet's ``DetLocalVisualizer`` for bombo's semantic maps.

bombo's semantic labels are ``0`` = background, ``k + 1`` = class ``k`` and
``ignore_index`` (255) = ignored, while a dataset's ``palette`` and
``classes`` have one entry per class. mmdet's ``DetLocalVisualizer`` indexes
the palette with the raw label (``palette[label]``), so it paints the
background in the first class's colour, every class in the next one's, and
raises ``IndexError`` on the last class. :class:`PartialDetLocalVisualizer`
draws class ``k + 1`` in ``palette[k]`` with the name ``classes[k]`` and
leaves background and ignored pixels untouched; boxes and instance masks are
drawn as mmdet draws them.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer
from mmdet.visualization.palette import get_palette
from mmengine.structures import PixelData

#: label written on pixels that are not drawn (background and ignore)
_NOT_DRAWN = -1


def to_class_map(sem_seg: Union[np.ndarray, torch.Tensor],
                 ignore_index: int = 255) -> np.ndarray:
    """bombo's label map (0 = background, ``k + 1`` = class ``k``,
    ``ignore_index``) → class indices ``k`` (int64), ``-1`` where nothing is
    drawn (background and ignored pixels)."""
    if isinstance(sem_seg, torch.Tensor):
        sem_seg = sem_seg.detach().cpu().numpy()
    seg = np.asarray(sem_seg).astype(np.int64)
    out = np.full_like(seg, _NOT_DRAWN)
    drawn = (seg > 0) & (seg != ignore_index)
    out[drawn] = seg[drawn] - 1
    return out


def class_palette(palette, num_classes: int) -> List[Tuple[int, int, int]]:
    """A colour per class: the dataset's ``palette`` (a list, or a name /
    colour that mmdet's ``get_palette`` knows; random when ``None``),
    completed with random colours when it has fewer than ``num_classes``."""
    if isinstance(palette, (list, tuple)) and len(palette) and \
            isinstance(palette[0], (list, tuple)):
        palette = [tuple(c) for c in palette]
        if len(palette) >= num_classes:
            return palette
        return palette + get_palette('random', num_classes)[len(palette):]
    return get_palette(palette, num_classes)


@VISUALIZERS.register_module()
class PartialDetLocalVisualizer(DetLocalVisualizer):
    """``DetLocalVisualizer`` that understands bombo's semantic labels.

    Use it wherever mmdet builds a visualizer from the config
    (``DetVisualizationHook``, ``tools/test.py --show-dir``, mmdet's
    ``browse_dataset.py``, ``DetInferencer``)::

        visualizer = dict(type='PartialDetLocalVisualizer',
                          vis_backends=[dict(type='LocalVisBackend')],
                          name='visualizer')

    Class ``k`` (label ``k + 1`` in the map) is drawn in ``palette[k]`` and
    named ``classes[k]`` (``class k`` without class names); background (0) and
    ``ignore_index`` (the ``PixelData``'s ``metainfo['ignore_index']``, 255
    by default) are not drawn. Labels beyond the palette get random colours
    instead of an ``IndexError``. mmdet draws the semantic map after the
    boxes: it is left out of the pixels the boxes and their labels were
    drawn on, so that they stay as sharp as without it.

    Args:
        seg_alpha (float): opacity of the semantic mask, lighter than the
            boxes' ``alpha`` so that the image stays visible under it.
            Defaults to 0.5.
        Others: as ``DetLocalVisualizer``.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[Sequence[Dict]] = None,
                 save_dir: Optional[str] = None,
                 bbox_color: Optional[Union[str, Tuple[int]]] = None,
                 text_color: Optional[Union[str,
                                            Tuple[int]]] = (200, 200, 200),
                 mask_color: Optional[Union[str, Tuple[int]]] = None,
                 line_width: Union[int, float] = 3,
                 alpha: float = 0.8,
                 seg_alpha: float = 0.5) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends,
                         save_dir=save_dir, bbox_color=bbox_color,
                         text_color=text_color, mask_color=mask_color,
                         line_width=line_width, alpha=alpha)
        self.seg_alpha = seg_alpha
        self._undrawn = None  # the image add_datasample is drawing on

    def add_datasample(self, name: str, image: np.ndarray, *args,
                       **kwargs) -> None:
        """mmdet's ``add_datasample``; keeps the plain image meanwhile
        (see the class docstring)."""
        self._undrawn = image.clip(0, 255).astype(np.uint8)
        try:
            super().add_datasample(name, image, *args, **kwargs)
        finally:
            self._undrawn = None

    def _draw_sem_seg(self, image: np.ndarray, sem_seg: PixelData,
                      classes: Optional[List],
                      palette: Optional[List]) -> np.ndarray:
        """Draw a bombo semantic map (see the class docstring) with mmdet's
        own drawing code, on the map shifted to class indices."""
        ignore_index = sem_seg.metainfo.get('ignore_index', 255)
        class_map = to_class_map(sem_seg.sem_seg, ignore_index)
        class_map = class_map.reshape((1, ) + class_map.shape[-2:])
        if self._undrawn is not None and \
                self._undrawn.shape == image.shape:
            # leave the boxes and labels drawn before as they are
            class_map[:, (image != self._undrawn).any(axis=-1)] = _NOT_DRAWN
        num_classes = max(len(classes) if classes else 0,
                          int(class_map.max()) + 1)
        names = list(classes) if classes else []
        names += [f'class {k}' for k in range(len(names), num_classes)]
        shifted = PixelData(sem_seg=class_map,
                            metainfo=dict(ignore_index=_NOT_DRAWN))
        alpha, self.alpha = self.alpha, self.seg_alpha
        try:
            return super()._draw_sem_seg(image, shifted, names,
                                         class_palette(palette, num_classes))
        finally:
            self.alpha = alpha
