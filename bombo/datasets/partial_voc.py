"""VOC-layout dataset for multi-task partially supervised learning.

One class reads Pascal VOC (with SBD masks converted to PNG), the bombo toy
dataset and any other data laid out like VOC. Each split file lists image ids;
the ``ann_task`` argument says what the images of the split are annotated for:

* ``'det'``: boxes from ``Annotations/<id>.xml`` only (no mask is read);
* ``'seg'``: the semantic mask ``SegmentationClass/<id>.png`` only (the XML,
  even where it exists, is never read: the image is mask-annotated);
* ``'both'``: boxes and mask (validation).

Every data info carries ``ann_task``, which the packing transform copies into
the data sample's metainfo so that the detector routes each image to the heads
its annotation can train.
"""
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List, Optional

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.fileio import list_from_file

from .bad_input import SkipCounter

ANN_TASKS = ('det', 'seg', 'both')

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


def voc_palette() -> List[int]:
    """The VOC devkit's colour map (``labelcolormap``, bit-interleaved),
    flattened to 768 ints for ``PIL.Image.putpalette``: 0 black, 1
    (128, 0, 0), ..., 255 the void colour (224, 224, 192). The palette of
    every VOC ``SegmentationClass`` / ``SegmentationObject`` PNG."""
    palette = []
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def check_ann_task(ann_task: str) -> str:
    if ann_task not in ANN_TASKS:
        raise ValueError(f'ann_task must be one of {ANN_TASKS}, '
                         f'got {ann_task!r}')
    return ann_task


def clip_box(box, width, height):
    """Clip an xyxy box to the image; return None if nothing is left."""
    x1, y1, x2, y2 = box
    x1, x2 = min(max(x1, 0), width), min(max(x2, 0), width)
    y1, y2 = min(max(y1, 0), height), min(max(y2, 0), height)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return [x1, y1, x2, y2]


@DATASETS.register_module()
class PartialVOCDataset(BaseDetDataset):
    """A VOC-layout split annotated for one task (or both).

    Args:
        ann_file (str): split file listing one image id per line (the first
            whitespace-separated token of each line is used).
        ann_task (str): ``'det'``, ``'seg'`` or ``'both'``.
        data_prefix (dict): sub-folders of ``data_root`` for images (``img``),
            XML annotations (``ann``) and semantic masks (``seg``).
        img_suffix (str): image file suffix. Default ``'.jpg'``.
        seg_suffix (str): mask file suffix. Default ``'.png'``.
        on_missing (str): what to do with a split entry whose image (or whose
            needed XML / mask) is missing: ``'error'`` (default) raises a
            ``FileNotFoundError`` naming the file and the split file;
            ``'skip'`` drops the entry, logs it and counts it in
            ``self.skipped``.
        check_masks (bool): for ``'seg'`` splits, read every mask once and skip
            (counted) those with no labelled pixel (all 255). Default True.

    Boxes are read in VOC convention (1-based inclusive corners) and stored as
    0-based pixel-edge ``xyxy`` (``x1 = xmin - 1, x2 = xmax``). Boxes that
    extend beyond the image are clipped to it; boxes with no area inside the
    image are dropped and counted. ``difficult`` objects are kept with
    ``ignore_flag=1`` as in mmdet's ``VOCDataset``.
    """

    METAINFO = dict(classes=VOC_CLASSES,
                    palette=[(106, 0, 228), (119, 11, 32), (165, 42, 42),
                             (0, 0, 192), (197, 226, 255), (0, 60, 100),
                             (0, 0, 142), (255, 77, 255), (153, 69, 1),
                             (120, 166, 157), (0, 182, 199), (0, 226, 252),
                             (182, 182, 255), (0, 0, 230), (220, 20, 60),
                             (163, 255, 0), (0, 82, 0), (3, 95, 161),
                             (0, 80, 100), (183, 130, 88)])

    def __init__(self,
                 *args,
                 ann_task: str = 'det',
                 data_prefix: dict = dict(img='JPEGImages',
                                          ann='Annotations',
                                          seg='SegmentationClass'),
                 img_suffix: str = '.jpg',
                 seg_suffix: str = '.png',
                 on_missing: str = 'error',
                 check_masks: bool = True,
                 **kwargs):
        self.ann_task = check_ann_task(ann_task)
        if on_missing not in ('error', 'skip'):
            raise ValueError("on_missing must be 'error' or 'skip'")
        self.img_suffix = img_suffix
        self.seg_suffix = seg_suffix
        self.on_missing = on_missing
        self.check_masks = check_masks
        self.skipped = SkipCounter(type(self).__name__)
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    # ------------------------------------------------------------------
    def _missing(self, kind: str, path: str, img_id: str) -> None:
        msg = (f'{kind} {path!r} for image id {img_id!r} listed in split '
               f'file {self.ann_file!r} does not exist')
        if self.on_missing == 'error':
            raise FileNotFoundError(msg + " (set on_missing='skip' to skip "
                                    'such entries)')
        self.skipped.add(f'missing {kind}', msg)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            hint = ''
            if 'ImageSets/Partial' in self.ann_file.replace(osp.sep, '/'):
                root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
                    self.ann_file))))
                hint = (' Write the partial splits with: python '
                        f'tools/make_splits.py voc --voc-root {root} '
                        '(see docs/data_preparation.md)')
            raise FileNotFoundError(
                f'split file {self.ann_file!r} not found.{hint}')
        self.cat2label = {c: i for i, c in enumerate(self.metainfo['classes'])}
        data_list = []
        for line in list_from_file(self.ann_file):
            if not line.strip():
                continue
            img_id = line.split()[0]
            info = self.parse_one(img_id)
            if info is not None:
                data_list.append(info)
        self.skipped.log()
        return data_list

    def parse_one(self, img_id: str) -> Optional[dict]:
        prefix = self.data_prefix
        img_path = osp.join(prefix['img'], img_id + self.img_suffix)
        if not osp.isfile(img_path):
            self._missing('image', img_path, img_id)
            return None
        info = dict(img_id=img_id, img_path=img_path, seg_map_path=None,
                    ann_task=self.ann_task, instances=[])
        if self.ann_task in ('seg', 'both'):
            seg_path = osp.join(prefix['seg'], img_id + self.seg_suffix)
            if not osp.isfile(seg_path):
                self._missing('mask', seg_path, img_id)
                return None
            info['seg_map_path'] = seg_path
        xml_path = osp.join(prefix.get('ann', ''), img_id + '.xml')
        if self.ann_task in ('det', 'both'):
            if not osp.isfile(xml_path):
                self._missing('annotation', xml_path, img_id)
                return None
            self._parse_xml(xml_path, info)
        else:
            self._image_size(info, xml_path)
        return info

    def _image_size(self, info: dict, xml_path: str) -> None:
        """Width/height from the XML if there is one, else from the image."""
        if osp.isfile(xml_path):
            size = ET.parse(xml_path).getroot().find('size')
            if size is not None:
                info['width'] = int(float(size.find('width').text))
                info['height'] = int(float(size.find('height').text))
                return
        from PIL import Image
        with Image.open(info['img_path']) as im:
            info['width'], info['height'] = im.size

    def _parse_xml(self, xml_path: str, info: dict) -> None:
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as e:
            raise ValueError(f'cannot parse annotation {xml_path!r}: {e}')
        size = root.find('size')
        if size is not None:
            width = int(float(size.find('width').text))
            height = int(float(size.find('height').text))
        else:
            from PIL import Image
            with Image.open(info['img_path']) as im:
                width, height = im.size
        info['width'], info['height'] = width, height
        for obj in root.findall('object'):
            name = obj.find('name').text.strip()
            if name not in self.cat2label:
                continue
            bnd = obj.find('bndbox')
            raw = [float(bnd.find(k).text)
                   for k in ('xmin', 'ymin', 'xmax', 'ymax')]
            box = clip_box([raw[0] - 1, raw[1] - 1, raw[2], raw[3]], width,
                           height)
            if box is None:
                self.skipped.add(
                    'box outside image',
                    f'{xml_path}: box {raw} of {name!r} lies outside the '
                    f'{width}x{height} image')
                continue
            difficult = obj.find('difficult')
            difficult = 0 if difficult is None else int(difficult.text)
            info['instances'].append(
                dict(bbox=box, bbox_label=self.cat2label[name],
                     ignore_flag=int(difficult)))

    def get_data_info(self, idx: int) -> dict:
        """The data info, plus ``num_classes`` so that the pipeline can
        check the labels of the mask it reads (``LoadPartialAnnotations``)."""
        info = super().get_data_info(idx)
        info['num_classes'] = len(self.metainfo['classes'])
        return info

    # ------------------------------------------------------------------
    def filter_data(self) -> List[dict]:
        """Drop (counted, logged) images that cannot train anything.

        With ``filter_cfg=dict(filter_empty_gt=True)`` (training configs): a
        detection image without a non-ignored box, and (with ``check_masks``)
        a segmentation image whose mask holds no labelled pixel (only 255).
        An all-background mask (only 0) is kept: it is valid supervision.
        """
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        if not self.filter_cfg.get('filter_empty_gt', False):
            return self.data_list
        kept = []
        for info in self.data_list:
            task = info['ann_task']
            if task in ('det', 'both') and not any(
                    not i['ignore_flag'] for i in info['instances']):
                self.skipped.add('no boxes',
                                 f'image {info["img_path"]} has no box')
                continue
            if task in ('seg', 'both') and self.check_masks:
                if not mask_has_labels(info['seg_map_path']):
                    self.skipped.add(
                        'mask all ignore',
                        f'mask {info["seg_map_path"]} has no labelled pixel')
                    continue
            kept.append(info)
        self.skipped.log()
        return kept


def mask_has_labels(path: str, ignore_index: int = 255) -> bool:
    """True if the mask at ``path`` holds at least one non-ignored pixel."""
    from PIL import Image
    with Image.open(path) as im:
        arr = np.asarray(im)
    return bool((arr != ignore_index).any())

