"""Small synthetic datasets in the exact on-disk formats of VOC, SBD and COCO.

:func:`make_real_format_data` writes, under one output folder and exactly
where a user unpacks the real datasets::

    VOCdevkit/VOC2007/{JPEGImages,Annotations,SegmentationClass,
                       SegmentationObject,ImageSets/{Main,Segmentation}}
    VOCdevkit/VOC2012/...              (same layout)
    SBD/dataset/{cls,inst,img}/ + SBD/dataset/{train,val}.txt
    coco/{train2017,val2017}/ + coco/annotations/instances_{train,val}2017.json

Everything is drawn from ``numpy.random.default_rng``: VOC + SBD from
``default_rng([seed, 0])``, COCO from ``default_rng([seed, 1])`` (so that
COCO options leave the VOC files unchanged); one seed gives byte-identical
files (the ``.mat`` header text is fixed, not dated). Every drawn object is
annotated, and every annotation agrees with the pixels: a VOC box is the
extent of the object's visible pixels (= its SBD ``GTinst`` region), the
``SegmentationObject`` index is the object's rank in the XML.

The format facts reproduced are:

Images
    JPEG (quality 90), non-square, several sizes per set (``VOC_SIZES`` /
    ``COCO_SIZES`` times ``scale``); textured, cluttered backgrounds; 1-5
    textured, shaded objects per image, later ones occluding earlier ones,
    some same-class instances touching, some cut by the image border, small
    and large ones.
VOC (2007 and 2012)
    * ids ``NNNNNN`` (VOC2007) and ``YYYY_NNNNNN`` with years 2008-2011
      (VOC2012); id lists sorted, one id a line;
    * ``ImageSets/Main/{train,val,trainval}.txt`` and the per-class
      ``<class>_<split>.txt`` (``id  1`` / ``id -1`` / ``id  0`` when only
      difficult instances are present);
    * ``ImageSets/Segmentation/{train,val,trainval}.txt`` list only the images
      that have masks (about half of VOC2007);
    * VOC2012's Segmentation lists also hold ``2007_NNNNNN`` images: the
      VOC2007 photo ``NNNNNN`` (same JPEG bytes, objects and masks) stored in
      VOC2012's JPEGImages / Annotations / Segmentation* but absent from
      VOC2012's Main lists; the VOC2007 originals are in VOC2007's
      ``Main/trainval.txt`` (the leak a correct split tool removes);
    * the non-twin VOC2012 segmentation val images are in VOC2012
      ``Main/trainval.txt``, as in the real devkit;
    * XML with ``folder``, ``filename``, ``source``, ``size`` (``depth`` 3),
      ``segmented`` and one ``object`` (``name``, ``pose``, ``truncated``,
      ``difficult``, ``bndbox``) per instance; 1-based inclusive pixel
      coordinates (``xmin`` = leftmost column + 1, ``xmax`` = rightmost
      column + 1) of the instance's visible pixels. VOC2012's own files
      (2008-2011 ids) use that devkit's style: children in alphabetical
      order after ``name``, an ``occluded`` element, coordinates written as
      floats (``"123.0"``) in some files, ``difficult`` missing on some
      objects, and ``<part><name>head</name><bndbox>..`` on some persons;
    * at least one ``difficult`` and one ``truncated`` (cut by the border)
      object per year;
    * ``SegmentationClass`` / ``SegmentationObject`` palette PNGs (mode
      ``'P'``, the devkit's bit-interleaved colour map, 255 = (224, 224, 192))
      with 0 background, class index 1..20 (resp. the 1-based index of the
      object in the XML) and 255 on a ``band``-pixel band along every
      object's outline, the same void pixels in both PNGs.
SBD
    ``SBD/dataset/cls/<id>.mat``: a MATLAB struct ``GTcls`` with
    ``Boundaries`` (20x1 cell of sparse logical HxW matrices, the class
    boundaries), ``Segmentation`` (uint8 HxW class map 0..20, no 255 band,
    touching same-class instances merged) and ``CategoriesPresent`` (uint8
    column); ``inst/<id>.mat``: struct ``GTinst`` with ``Segmentation``
    (instance map 0..N), ``Boundaries`` (Nx1 cell) and ``Categories``
    (uint8 column); ``img/<id>.jpg`` (the VOC2012 JPEG);
    ``{train,val}.txt``. SBD ids are VOC2012 ids that are in VOC2012's
    JPEGImages, Annotations and ``Main/trainval.txt``; most have no official
    VOC2012 mask, two have one (one of them a segmentation val image).
COCO 2017
    ``instances_{train,val}2017.json`` with ``info``, ``licenses``,
    ``images`` (``000000NNNNNN.jpg`` names, ids up to 581929),
    ``annotations`` and the real 80 ``categories`` (ids 1..90 with the real
    gaps). ``iscrowd=0`` annotations have polygons (two or more when
    occlusion splits the object), ``iscrowd=1`` ones an uncompressed
    column-major RLE ``{"counts": [...], "size": [h, w]}``; ``area`` and
    ``bbox`` (``[x, y, w, h]`` floats) are those of the mask that
    ``pycocotools`` decodes; crowd annotations have large ids
    (``900100000000 + image_id``), like the real ones. Each split has
    images without any annotation, crowd annotations and single-channel
    (grayscale) JPEGs. ``info`` / ``licenses`` have the real keys; ``info``
    says the data are synthetic and ``coco_url`` / ``flickr_url`` are empty.
"""
import io
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from bombo.datasets.partial_voc import voc_palette

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')

#: the 80 COCO 2017 categories: (id, name, supercategory)
COCO_CATEGORIES = (
    (1, 'person', 'person'), (2, 'bicycle', 'vehicle'), (3, 'car', 'vehicle'),
    (4, 'motorcycle', 'vehicle'), (5, 'airplane', 'vehicle'),
    (6, 'bus', 'vehicle'), (7, 'train', 'vehicle'), (8, 'truck', 'vehicle'),
    (9, 'boat', 'vehicle'), (10, 'traffic light', 'outdoor'),
    (11, 'fire hydrant', 'outdoor'), (13, 'stop sign', 'outdoor'),
    (14, 'parking meter', 'outdoor'), (15, 'bench', 'outdoor'),
    (16, 'bird', 'animal'), (17, 'cat', 'animal'), (18, 'dog', 'animal'),
    (19, 'horse', 'animal'), (20, 'sheep', 'animal'), (21, 'cow', 'animal'),
    (22, 'elephant', 'animal'), (23, 'bear', 'animal'),
    (24, 'zebra', 'animal'), (25, 'giraffe', 'animal'),
    (27, 'backpack', 'accessory'), (28, 'umbrella', 'accessory'),
    (31, 'handbag', 'accessory'), (32, 'tie', 'accessory'),
    (33, 'suitcase', 'accessory'), (34, 'frisbee', 'sports'),
    (35, 'skis', 'sports'), (36, 'snowboard', 'sports'),
    (37, 'sports ball', 'sports'), (38, 'kite', 'sports'),
    (39, 'baseball bat', 'sports'), (40, 'baseball glove', 'sports'),
    (41, 'skateboard', 'sports'), (42, 'surfboard', 'sports'),
    (43, 'tennis racket', 'sports'), (44, 'bottle', 'kitchen'),
    (46, 'wine glass', 'kitchen'), (47, 'cup', 'kitchen'),
    (48, 'fork', 'kitchen'), (49, 'knife', 'kitchen'),
    (50, 'spoon', 'kitchen'), (51, 'bowl', 'kitchen'),
    (52, 'banana', 'food'), (53, 'apple', 'food'), (54, 'sandwich', 'food'),
    (55, 'orange', 'food'), (56, 'broccoli', 'food'), (57, 'carrot', 'food'),
    (58, 'hot dog', 'food'), (59, 'pizza', 'food'), (60, 'donut', 'food'),
    (61, 'cake', 'food'), (62, 'chair', 'furniture'),
    (63, 'couch', 'furniture'), (64, 'potted plant', 'furniture'),
    (65, 'bed', 'furniture'), (67, 'dining table', 'furniture'),
    (70, 'toilet', 'furniture'), (72, 'tv', 'electronic'),
    (73, 'laptop', 'electronic'), (74, 'mouse', 'electronic'),
    (75, 'remote', 'electronic'), (76, 'keyboard', 'electronic'),
    (77, 'cell phone', 'electronic'), (78, 'microwave', 'appliance'),
    (79, 'oven', 'appliance'), (80, 'toaster', 'appliance'),
    (81, 'sink', 'appliance'), (82, 'refrigerator', 'appliance'),
    (84, 'book', 'indoor'), (85, 'clock', 'indoor'), (86, 'vase', 'indoor'),
    (87, 'scissors', 'indoor'), (88, 'teddy bear', 'indoor'),
    (89, 'hair drier', 'indoor'), (90, 'toothbrush', 'indoor'))

#: (width, height) of typical VOC images; multiplied by ``scale``
VOC_SIZES = ((500, 375), (375, 500), (500, 333), (333, 500), (500, 442),
             (480, 360))
#: (width, height) of typical COCO images; multiplied by ``scale``
COCO_SIZES = ((640, 480), (480, 640), (640, 427), (427, 640), (640, 360),
              (500, 375))
#: default size factor: VOC images of about 160 x 120 px
DEFAULT_SCALE = 0.32
#: the highest image id of COCO 2017 train/val
COCO_MAX_IMAGE_ID = 581929
COCO_INFO = {
    'description': 'Synthetic data in the COCO 2017 format '
                   '(bombo.testing.real_format)',
    'url': '', 'version': '1.0', 'year': 2017,
    'contributor': 'bombo', 'date_created': '2017/09/01'}
COCO_LICENSES = (
    (1, 'Attribution-NonCommercial-ShareAlike License', 'by-nc-sa/2.0/'),
    (2, 'Attribution-NonCommercial License', 'by-nc/2.0/'),
    (3, 'Attribution-NonCommercial-NoDerivs License', 'by-nc-nd/2.0/'),
    (4, 'Attribution License', 'by/2.0/'),
    (5, 'Attribution-ShareAlike License', 'by-sa/2.0/'),
    (6, 'Attribution-NoDerivs License', 'by-nd/2.0/'))
VOC_POSES = ('Unspecified', 'Unspecified', 'Unspecified', 'Left', 'Right',
             'Frontal', 'Rear')
#: MATLAB 5 header text (116 bytes) written instead of scipy's, whose date
#: would make the ``.mat`` bytes differ from one run to the next
MAT_HEADER = b'MATLAB 5.0 MAT-file, Platform: posix, written by ' \
             b'bombo.testing.real_format'


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

class Deck:
    """Draws items from shuffled copies of ``items``: any run of
    ``len(items)`` consecutive draws meets every item at most twice, and
    every item appears once per pass."""

    def __init__(self, rng: np.random.Generator, items: Sequence[int]):
        self.rng, self.items, self.pile = rng, list(items), []

    def draw(self) -> int:
        if not self.pile:
            self.pile = [self.items[i]
                         for i in self.rng.permutation(len(self.items))]
        return self.pile.pop()


def scaled_sizes(sizes: Sequence[Tuple[int, int]],
                 scale: float) -> List[Tuple[int, int]]:
    """``(w, h)`` sizes times ``scale``, rounded, at least 32 px a side."""
    return [(max(32, round(w * scale)), max(32, round(h * scale)))
            for w, h in sizes]


def pick(rng: np.random.Generator, items: Sequence, k: int) -> list:
    """``k`` distinct items of ``items`` (sorted like ``items``)."""
    idx = sorted(rng.choice(len(items), size=k, replace=False).tolist())
    return [items[i] for i in idx]


def halves(rng: np.random.Generator, items: Sequence[str],
           first: Optional[int] = None) -> Tuple[List[str], List[str]]:
    """Split ``items`` at random into two sorted lists (``first`` items, by
    default half, in the first)."""
    first = len(items) // 2 if first is None else first
    a = pick(rng, list(items), first)
    return sorted(a), sorted(set(items) - set(a))


def write_text(path: str, text: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def write_bytes(path: str, data: bytes) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def write_id_list(path: str, ids: Sequence) -> None:
    """An ImageSets-style list: sorted, one id a line, final newline."""
    write_text(path, ''.join(f'{i}\n' for i in sorted(ids)))


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes (quality 90) of an RGB (H, W, 3) or gray (H, W) image;
    a gray image gives a single-channel JPEG."""
    arr = image if image.ndim == 2 else image[..., ::-1]
    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(arr),
                           [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok, 'JPEG encoding failed'
    return buf.tobytes()


def encode_palette_png(values: np.ndarray) -> bytes:
    """PNG bytes of a (H, W) uint8 index map as a mode ``'P'`` image with
    the VOC colour map."""
    png = Image.fromarray(values.astype(np.uint8))
    png.putpalette(voc_palette())
    buf = io.BytesIO()
    png.save(buf, format='PNG')
    return buf.getvalue()


def kernel(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                     (2 * radius + 1, 2 * radius + 1))


def outline_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within a ``width``-pixel band centred on the outline of a
    boolean mask (none along the image border, as in VOC's void band)."""
    m = mask.astype(np.uint8)
    inner, outer = width // 2, width - width // 2
    grown = cv2.dilate(m, kernel(outer)) if outer else m
    shrunk = cv2.erode(m, kernel(inner)) if inner else m
    return (grown > 0) & ~(shrunk > 0)


def inner_boundary(mask: np.ndarray) -> np.ndarray:
    """The 1-pixel inner boundary of a boolean mask (SBD's boundaries)."""
    m = mask.astype(np.uint8)
    return mask & ~(cv2.erode(m, np.ones((3, 3), np.uint8)) > 0)


def mask_box(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """0-based inclusive ``(x1, y1, x2, y2)`` of a non-empty mask."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


# ---------------------------------------------------------------------------
# scene synthesis
# ---------------------------------------------------------------------------
@dataclass
class ObjectSpec:
    """What to draw: class index, shape, size (fraction of the short image
    side), placement and annotation flags."""
    label: int
    kind: str
    extent: float
    touch: Optional[int] = None   # index of an earlier spec to touch
    cross: Optional[int] = None   # index of an earlier spec to cut in two
    at_border: bool = False       # placed across the image border
    difficult: bool = False
    part: bool = False            # keep the head part of a 'figure' visible


@dataclass
class SceneObject:
    """One drawn instance: its visible mask (after occlusion by later
    objects) and its annotation flags."""
    label: int
    visible: np.ndarray
    full_area: int
    truncated: bool
    difficult: bool
    crowd: bool
    part: Optional[np.ndarray] = None   # visible head pixels of a figure
    show_part: bool = False
    pose: str = 'Unspecified'

    @property
    def occluded(self) -> bool:
        return int(self.visible.sum()) < self.full_area


@dataclass
class Scene:
    image: np.ndarray                    # (H, W, 3) uint8 RGB
    objects: List[SceneObject] = field(default_factory=list)

    @property
    def size(self) -> Tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


def smooth_noise(rng: np.random.Generator, h: int, w: int,
                 cell: float) -> np.ndarray:
    """(H, W, 3) low-frequency noise: a random grid with cells of ``cell``
    times the long side, cubic-resized."""
    cell = max(2, round(cell * max(h, w)))
    small = rng.normal(0, 1, (h // cell + 2, w // cell + 2, 3))
    return cv2.resize(small.astype(np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC)


def directional(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W) coordinate along a random direction, about -0.5..0.5."""
    t = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return ((xx - w / 2) * np.cos(t) + (yy - h / 2) * np.sin(t)) / max(h, w)


def stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W) sine stripes of random direction and period."""
    period = rng.uniform(0.03, 0.15)
    return np.sin(2 * np.pi * directional(rng, h, w) / period
                  + rng.uniform(0, 2 * np.pi))


def checker(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W) +-1 checkerboard, cells of 1-4 % of the long side."""
    cell = max(2, round(rng.uniform(0.012, 0.04) * max(h, w)))
    yy, xx = np.mgrid[0:h, 0:w]
    return (((xx // cell + yy // cell) % 2) * 2 - 1).astype(np.float32)


def add_blobs(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Blend 2-5 faint, blurred ellipses of random colour (clutter)."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(2, 6))):
        alpha = np.zeros((h, w), np.float32)
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.uniform(0.05, 0.3) * w),
                int(rng.uniform(0.05, 0.3) * h))
        cv2.ellipse(alpha, centre, axes, rng.uniform(0, 180), 0, 360,
                    float(rng.uniform(0.2, 0.5)), -1)
        sigma = rng.uniform(0.02, 0.05) * max(h, w)
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)[..., None]
        img = img * (1 - alpha) + rng.uniform(0, 255, 3) * alpha
    return img


def textured_background(rng: np.random.Generator, h: int,
                        w: int) -> np.ndarray:
    """(H, W, 3) float image: base colour + smooth noise + gradient +
    stripes + soft blobs + fine noise."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.uniform(40, 215, 3)
    img += smooth_noise(rng, h, w, rng.uniform(0.04, 0.12)) \
        * rng.uniform(8, 30)
    img += directional(rng, h, w)[..., None] * rng.uniform(-60, 60, 3)
    img += stripes(rng, h, w)[..., None] * rng.uniform(2, 14, 3)
    img = add_blobs(rng, img)
    return img + rng.normal(0, rng.uniform(2, 8), img.shape)


def contrasting_colour(rng: np.random.Generator,
                       around: np.ndarray) -> np.ndarray:
    """A random RGB colour far (L1 > 150) from ``around`` when possible."""
    colour = rng.uniform(0, 255, 3)
    for _ in range(10):
        if np.abs(colour - around).sum() > 150:
            break
        colour = rng.uniform(0, 255, 3)
    return colour


def object_texture(rng: np.random.Generator, h: int, w: int,
                   colour: np.ndarray) -> np.ndarray:
    """(H, W, 3) texture of one object: its colour, a pattern (stripes,
    checker, smooth noise or none), linear shading and fine noise."""
    kind = int(rng.integers(0, 4))
    if kind == 0:
        pattern = stripes(rng, h, w)[..., None] * rng.uniform(8, 25)
    elif kind == 1:
        pattern = checker(rng, h, w)[..., None] * rng.uniform(6, 20)
    elif kind == 2:
        pattern = smooth_noise(rng, h, w, 0.02) * rng.uniform(8, 20)
    else:
        pattern = 0
    shade = 1 + rng.uniform(0.3, 0.9) * directional(rng, h, w)[..., None]
    return (colour + pattern) * shade + rng.normal(0, 4, (h, w, 3))


def draw_shape(rng: np.random.Generator, kind: str, canvas: np.ndarray,
               cx: float, cy: float, e: float) -> Optional[np.ndarray]:
    """Draw a shape of kind ``kind`` and diameter ~``e`` px centred on
    ``(cx, cy)`` into the uint8 ``canvas`` (value 1).

    Kinds: ``ellipse``, ``polygon`` (star-shaped, 5-11 vertices), ``box``
    (rotated rectangle), ``bar`` (long thin rotated rectangle), ``figure``
    (body ellipse + head disc) and ``crowd`` (a cluster of 4-8 small
    figures).

    Returns:
        np.ndarray | None: for ``figure``, the head drawn on its own canvas
        (the ``head`` part of VOC persons); None otherwise.
    """
    if kind == 'ellipse':
        axes = (max(1, round(e / 2)),
                max(1, round(e / 2 * rng.uniform(0.5, 1))))
        cv2.ellipse(canvas, (round(cx), round(cy)), axes,
                    rng.uniform(0, 180), 0, 360, 1, -1)
    elif kind == 'polygon':
        n = int(rng.integers(5, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = e / 2 * rng.uniform(0.55, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    elif kind == 'box':
        bw, bh = e, e * rng.uniform(0.45, 1.0)
        if rng.random() < 0.5:
            bw, bh = bh, bw
        pts = cv2.boxPoints(((cx, cy), (bw, bh), rng.uniform(-20, 20)))
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    elif kind == 'bar':
        pts = cv2.boxPoints(((cx, cy), (e, e * rng.uniform(0.08, 0.14)),
                             rng.uniform(0, 180)))
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    elif kind == 'figure':
        body = (max(1, round(e * 0.2)), max(1, round(e * 0.36)))
        cv2.ellipse(canvas, (round(cx), round(cy + 0.12 * e)), body,
                    rng.uniform(-12, 12), 0, 360, 1, -1)
        head = np.zeros_like(canvas)
        cv2.circle(head, (round(cx + rng.uniform(-0.05, 0.05) * e),
                          round(cy - 0.33 * e)), max(2, round(0.13 * e)), 1,
                   -1)
        canvas |= head
        return head
    elif kind == 'crowd':
        for _ in range(int(rng.integers(4, 9))):
            draw_shape(rng, 'figure', canvas, cx + rng.uniform(-0.4, 0.4) * e,
                       cy + rng.uniform(-0.25, 0.25) * e,
                       e * rng.uniform(0.3, 0.45))
    else:
        raise ValueError(f'unknown shape kind {kind!r}')
    return None


def shape_mask(rng: np.random.Generator, kind: str, h: int, w: int,
               centre: Tuple[float, float], e: float):
    """Draw a shape on a padded canvas and crop it to the image.

    Returns:
        tuple: ``(full, truncated, part)``: the (H, W) boolean mask of the
        shape inside the image, whether part of it fell outside the image,
        and the head mask of a figure (else None).
    """
    pad = int(e) + 2
    canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    part = draw_shape(rng, kind, canvas, centre[0] + pad, centre[1] + pad, e)
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    full = canvas[crop] > 0
    truncated = int(canvas.sum()) > int(full.sum())
    return full, truncated, None if part is None else part[crop] > 0


def place(rng: np.random.Generator, spec: ObjectSpec, h: int, w: int,
          e: float, ref: Optional[SceneObject]) -> Tuple[float, float]:
    """The centre of a new object: across a random image edge
    (``at_border``), on the centre of ``ref`` (``cross``: a bar cutting it
    in two), next to ``ref`` so that the two overlap (``touch``: touching
    same-class instances), or anywhere."""
    if spec.at_border:
        d = rng.uniform(-0.1, 0.15) * e
        along = rng.uniform(0.2, 0.8)
        side = int(rng.integers(0, 4))
        return ((d, along * h), (w - d, along * h), (along * w, d),
                (along * w, h - d))[side]
    if ref is not None and spec.cross is not None:
        x1, y1, x2, y2 = mask_box(ref.visible)
        return (x1 + x2) / 2, (y1 + y2) / 2
    if ref is not None:
        x1, y1, x2, y2 = mask_box(ref.visible)
        t = rng.uniform(0, 2 * np.pi)
        r = 0.5 * (max(x2 - x1, y2 - y1) + e) * rng.uniform(0.5, 0.8)
        return ((x1 + x2) / 2 + r * np.cos(t), (y1 + y2) / 2 + r * np.sin(t))
    lo = min(0.3 * e, w / 2), min(0.3 * e, h / 2)
    return rng.uniform(lo[0], w - lo[0]), rng.uniform(lo[1], h - lo[1])


def on_border(mask: np.ndarray) -> bool:
    """Whether a mask has a pixel on the image border."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any()
                or mask[:, -1].any())


def keeps_visible(full: np.ndarray, objects: Sequence[SceneObject],
                  min_area: int) -> bool:
    """Whether drawing ``full`` on top leaves every earlier object at least
    35 % (and ``min_area`` px) of its visible pixels, half its head and,
    if truncated, a visible pixel on the image border."""
    for o in objects:
        left = o.visible & ~full
        if left.sum() < max(min_area, 0.35 * o.visible.sum()):
            return False
        if o.truncated and not on_border(left):
            return False
        if o.part is not None and o.show_part:
            if (o.part & ~full).sum() < 0.5 * o.part.sum():
                return False
    return True


def touches(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two boolean masks overlap or are 4-adjacent."""
    return bool((cv2.dilate(a.astype(np.uint8), kernel(1)) > 0)[b].any())


def paint(rng: np.random.Generator, img: np.ndarray, full: np.ndarray,
          part: Optional[np.ndarray]) -> None:
    """Paint an object's texture over ``full`` (its part in its own
    colour), in place."""
    h, w = full.shape
    tex = object_texture(rng, h, w, contrasting_colour(rng, img[full].mean(0)))
    img[full] = tex[full]
    if part is not None and part.any():
        tex = object_texture(rng, h, w,
                             contrasting_colour(rng, img[part].mean(0)))
        img[part] = tex[part]


def render_scene(rng: np.random.Generator, size: Tuple[int, int],
                 specs: Sequence[ObjectSpec], min_area: int,
                 tries: int = 12) -> Scene:
    """Draw ``specs`` in order on a textured background.

    A later object occludes the earlier ones; a placement that would hide
    too much of an earlier object (see :func:`keeps_visible`), or that is
    smaller than ``min_area`` in the image, is redrawn (``tries`` times,
    then the object is left out), so that every drawn object is annotated.
    """
    w, h = size
    img = textured_background(rng, h, w)
    objects, drawn = [], {}
    for i, spec in enumerate(specs):
        link = spec.touch if spec.cross is None else spec.cross
        ref = objects[drawn[link]] if link in drawn else None
        e = spec.extent * min(h, w)
        for attempt in range(tries):
            full, truncated, part = shape_mask(
                rng, spec.kind, h, w, place(rng, spec, h, w, e, ref), e)
            if full.sum() < min_area or not keeps_visible(full, objects,
                                                          min_area):
                continue
            if ref is None or spec.cross is not None \
                    or touches(full, ref.visible) or attempt == tries - 1:
                break
        else:
            continue
        paint(rng, img, full, part)
        for o in objects:
            o.visible &= ~full
            if o.part is not None:
                o.part &= ~full
        drawn[i] = len(objects)
        objects.append(SceneObject(
            label=spec.label, visible=full, full_area=int(full.sum()),
            truncated=truncated, difficult=spec.difficult,
            crowd=spec.kind == 'crowd', part=part, show_part=spec.part,
            pose=VOC_POSES[int(rng.integers(0, len(VOC_POSES)))]))
    img = cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.float32), (0, 0),
                           0.6)
    return Scene(np.clip(np.round(img), 0, 255).astype(np.uint8), objects)


def shape_kind(name: str, index: int) -> str:
    """Persons are figures (with a head part); other classes get a fixed
    shape family by class index."""
    return 'figure' if name == 'person' else \
        ('ellipse', 'polygon', 'box')[index % 3]


def random_extent(rng: np.random.Generator) -> float:
    """Object size as a fraction of the short side: small (30 %), medium
    (55 %) or large (15 %)."""
    u = rng.random()
    if u < 0.3:
        return rng.uniform(0.09, 0.16)
    if u < 0.85:
        return rng.uniform(0.18, 0.45)
    return rng.uniform(0.55, 0.85)


def plan_objects(rng: np.random.Generator, deck: Deck, names: Sequence[str],
                 n: int, forced: Sequence[ObjectSpec] = (),
                 touch_prob: float = 0.3) -> List[ObjectSpec]:
    """Specs of ``n`` objects in drawing order.

    Classes come from ``deck``; each object after the first is, with
    probability ``touch_prob``, a same-class neighbour that touches an
    earlier one (it is drawn right after it). The other objects are drawn
    largest first (large ones at the back); the ``forced`` specs (objects
    with forced flags; their ``touch`` / ``cross`` index into ``forced``)
    come before all and count in ``n``. Small objects are ``difficult`` with
    probability 0.25; persons show their head part with probability 0.5.
    """
    def spec(label, extent, touch=None):
        return ObjectSpec(
            label=label, kind=shape_kind(names[label], label), extent=extent,
            touch=touch, difficult=bool(extent < 0.16 and rng.random() < 0.25),
            part=bool(rng.random() < 0.5))

    head = [replace(s) for s in forced]
    n_main = max(1, n - int((rng.random(max(n - 1, 0)) < touch_prob).sum()))
    mains = [spec(deck.draw(), random_extent(rng))
             for _ in range(n_main - len(head))]
    mains = head + sorted(mains, key=lambda s: -s.extent)
    neighbours = [[] for _ in mains]
    for _ in range(n - len(mains)):
        ref = int(rng.integers(0, len(mains)))
        neighbours[ref].append(
            spec(mains[ref].label, mains[ref].extent * rng.uniform(0.6, 1)))
    out, pos = [], []
    for main, extra in zip(mains, neighbours):
        pos.append(len(out))
        out.append(main)
        for s in extra:
            s.touch = pos[-1]
            out.append(s)
    for s in head:  # the forced specs' links index ``forced``: re-point
        s.touch = None if s.touch is None else pos[s.touch]
        s.cross = None if s.cross is None else pos[s.cross]
    return out


def render_set(rng: np.random.Generator, n: int, deck: Deck,
               names: Sequence[str], sizes: Sequence[Tuple[int, int]],
               forced: Dict[int, List[ObjectSpec]],
               counts: Optional[dict] = None) -> List[Scene]:
    """``n`` scenes of random sizes with 1-5 objects each (``counts`` may
    fix the number of objects of image ``i``; ``forced[i]`` are specs with
    forced flags drawn first in image ``i``)."""
    counts = counts or {}
    scenes = []
    for i in range(n):
        w, h = sizes[int(rng.integers(0, len(sizes)))]
        k = counts.get(i, int(rng.integers(1, 6)))
        specs = plan_objects(rng, deck, names, k, forced.get(i, ())) \
            if k else []
        scenes.append(render_scene(rng, (w, h), specs, min_area(w, h)))
    return scenes


def min_area(w: int, h: int) -> int:
    """Smallest visible area (px) of an annotated object."""
    return max(12, round(0.0012 * w * h))


# ---------------------------------------------------------------------------
# VOC
# ---------------------------------------------------------------------------
@dataclass
class XmlStyle:
    """How a VOC XML file is written: ``'2007'`` (the VOC2007 devkit's
    element order) or ``'2012'`` (VOC2012's own files: alphabetical after
    ``name``, with ``occluded``), coordinates as floats, ``difficult``
    omitted on the non-difficult objects."""
    devkit: str = '2007'
    float_coords: bool = False
    omit_difficult: bool = False


def el(tag: str, text=None, children: Sequence[ET.Element] = ()
       ) -> ET.Element:
    e = ET.Element(tag)
    if text is not None:
        e.text = str(text)
    e.extend(children)
    return e


def ordered(children: List[ET.Element], style: XmlStyle) -> List[ET.Element]:
    """VOC2012's files list children alphabetically (``name`` first)."""
    if style.devkit != '2012':
        return children
    head = [c for c in children if c.tag == 'name']
    return head + sorted((c for c in children if c.tag != 'name'),
                         key=lambda c: c.tag)


def bndbox(mask: np.ndarray, style: XmlStyle) -> ET.Element:
    """``<bndbox>`` of a mask: 1-based inclusive pixel coordinates."""
    x1, y1, x2, y2 = mask_box(mask)
    fmt = (lambda v: f'{v:.1f}') if style.float_coords else str
    return el('bndbox', children=ordered(
        [el(k, fmt(v + 1)) for k, v in
         (('xmin', x1), ('ymin', y1), ('xmax', x2), ('ymax', y2))], style))


def voc_object(obj: SceneObject, style: XmlStyle) -> ET.Element:
    """One ``<object>``: name, pose, truncated, difficult, (occluded),
    bndbox of the visible pixels and a visible ``head`` part."""
    children = [el('name', VOC_CLASSES[obj.label]), el('pose', obj.pose),
                el('truncated', int(obj.truncated))]
    if obj.difficult or not style.omit_difficult:
        children.append(el('difficult', int(obj.difficult)))
    if style.devkit == '2012':
        children.append(el('occluded', int(obj.occluded)))
    children.append(bndbox(obj.visible, style))
    if obj.show_part and obj.part is not None and obj.part.sum() >= 4:
        children.append(el('part', children=[el('name', 'head'),
                                             bndbox(obj.part, style)]))
    return el('object', children=ordered(children, style))


def voc_xml(scene: Scene, filename: str,
            folder: str, database: str, segmented: bool,
            style: XmlStyle) -> bytes:
    """The ``Annotations/<id>.xml`` text of a scene (tab-indented, no XML
    declaration, as in the devkit)."""
    w, h = scene.size
    source = el('source', children=ordered([
        el('database', f'The {database} Database'),
        el('annotation', f'PASCAL {database}'), el('image', 'flickr')],
        style))
    size = el('size', children=ordered(
        [el('width', w), el('height', h), el('depth', 3)], style))
    objects = [voc_object(o, style) for o in scene.objects]
    if style.devkit == '2012':
        children = [el('filename', filename), el('folder', folder)] \
            + objects + [el('segmented', int(segmented)), size, source]
    else:
        children = [el('folder', folder), el('filename', filename), source,
                    size, el('segmented', int(segmented))] + objects
    root = el('annotation', children=children)
    ET.indent(root, space='\t')
    return (ET.tostring(root, encoding='unicode') + '\n').encode()


def voc_masks(scene: Scene, band: int) -> Tuple[np.ndarray, np.ndarray]:
    """``SegmentationClass`` and ``SegmentationObject`` index maps: class
    index 1..20 / object index 1..N (XML order) on the visible pixels, 0
    background, 255 on a ``band``-px band along every object's outline."""
    w, h = scene.size
    cls, obj = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    void = np.zeros((h, w), bool)
    for k, o in enumerate(scene.objects):
        cls[o.visible] = o.label + 1
        obj[o.visible] = k + 1
        void |= outline_band(o.visible, band)
    cls[void] = 255
    obj[void] = 255
    return cls, obj


def class_flags(scene: Scene) -> Dict[int, int]:
    """Per-class image flag of the ``<class>_<split>.txt`` lists: 1 if a
    non-difficult instance is present, 0 if only difficult ones, else -1."""
    flags = {c: -1 for c in range(len(VOC_CLASSES))}
    for o in scene.objects:
        flags[o.label] = max(flags[o.label], 0 if o.difficult else 1)
    return flags


def write_main_lists(root: str, lists: Dict[str, List[str]],
                     scenes: Dict[str, Scene]) -> None:
    """``ImageSets/Main/{split}.txt`` and ``{class}_{split}.txt``."""
    for split, ids in lists.items():
        write_id_list(osp.join(root, 'ImageSets', 'Main', f'{split}.txt'),
                      ids)
        flags = {i: class_flags(scenes[i]) for i in ids}
        for c, name in enumerate(VOC_CLASSES):
            write_text(osp.join(root, 'ImageSets', 'Main',
                                f'{name}_{split}.txt'),
                       ''.join(f'{i} {flags[i][c]:2d}\n' for i in sorted(ids)))


def write_voc_image(root: str, img_id: str, jpeg: bytes, xml: bytes,
                    masks: Optional[Tuple[bytes, bytes]]) -> None:
    """JPEGImages/, Annotations/ and (if ``masks``) Segmentation{Class,
    Object}/ files of one image."""
    write_bytes(osp.join(root, 'JPEGImages', f'{img_id}.jpg'), jpeg)
    write_bytes(osp.join(root, 'Annotations', f'{img_id}.xml'), xml)
    if masks is not None:
        for sub, data in zip(('SegmentationClass', 'SegmentationObject'),
                             masks):
            write_bytes(osp.join(root, sub, f'{img_id}.png'), data)


def voc2007_ids(rng: np.random.Generator, n: int) -> List[str]:
    """``n`` distinct VOC2007-style ids (``000001``..``009963``)."""
    return [f'{i:06d}' for i in sorted(
        (rng.choice(9963, size=n, replace=False) + 1).tolist())]


def voc2012_ids(rng: np.random.Generator, n: int) -> List[str]:
    """``n`` distinct VOC2012-style ids ``YYYY_NNNNNN`` (2008-2011)."""
    top = {2008: 8776, 2009: 5311, 2010: 6295, 2011: 3359}
    ids = set()
    while len(ids) < n:
        year = int(rng.integers(2008, 2012))
        ids.add(f'{year}_{int(rng.integers(1, top[year] + 1)):06d}')
    return sorted(ids)


def forced_specs(rng: np.random.Generator, deck: Deck,
                 ids: Sequence[str]) -> Dict[int, List[ObjectSpec]]:
    """First objects with forced flags in three distinct images: one cut
    by the border (truncated), one small difficult one, one person whose
    head part stays visible."""
    def spec(label: int, **kw) -> ObjectSpec:
        return ObjectSpec(label=label, kind=shape_kind(VOC_CLASSES[label],
                                                       label), **kw)

    where = rng.permutation(len(ids))[:3].tolist()
    specs = [spec(deck.draw(), extent=rng.uniform(0.3, 0.5), at_border=True),
             spec(deck.draw(), extent=0.13, difficult=True),
             spec(VOC_CLASSES.index('person'), extent=rng.uniform(0.4, 0.6),
                  part=True)]
    return {i: [s] for i, s in zip(where, specs)}


def voc_layout(rng: np.random.Generator, ids07: List[str], ids12: List[str],
               twins_val: int, twins_train: int) -> dict:
    """All id lists of VOC2007, VOC2012 and SBD (see the module doc)."""
    main07 = halves(rng, ids07)
    seg07 = pick(rng, ids07, max(len(ids07) // 2, twins_val + twins_train))
    twins = [seg07[i] for i in rng.permutation(len(seg07))[
        :twins_val + twins_train]]
    twin_val = sorted('2007_' + i for i in twins[:twins_val])
    twin_train = sorted('2007_' + i for i in twins[twins_val:])
    n = len(ids12)
    seg_val = pick(rng, ids12, max(3, round(n / 4)))
    rest = sorted(set(ids12) - set(seg_val))
    seg_train = pick(rng, rest, max(2, round(n / 5)))
    sbd = sorted(set(rest) - set(seg_train)) \
        + pick(rng, seg_train, 1) + pick(rng, seg_val, 1)
    seg07_train, seg07_val = halves(rng, seg07)
    main12_train, main12_val = halves(rng, ids12)
    seg12_train = sorted(seg_train + twin_train)
    seg12_val = sorted(seg_val + twin_val)
    sbd_train, sbd_val = halves(rng, sorted(sbd), round(0.7 * len(sbd)))
    return {
        'voc2007': {
            'Main/train': main07[0], 'Main/val': main07[1],
            'Main/trainval': sorted(ids07),
            'Segmentation/train': seg07_train,
            'Segmentation/val': seg07_val,
            'Segmentation/trainval': sorted(seg07)},
        'voc2012': {
            'Main/train': main12_train, 'Main/val': main12_val,
            'Main/trainval': sorted(ids12),
            'Segmentation/train': seg12_train,
            'Segmentation/val': seg12_val,
            'Segmentation/trainval': sorted(seg12_train + seg12_val)},
        'twins': {'val': twin_val, 'train': twin_train},
        'sbd': {'train': sbd_train, 'val': sbd_val},
        'sbd_official': sorted(set(sbd) & set(seg_train + seg_val)),
    }


def write_voc_year(root: str, year: str,
                   scenes: Dict[str, Scene], jpegs: Dict[str, bytes],
                   lists: Dict[str, List[str]], styles: Dict[str, XmlStyle],
                   band: int) -> None:
    """Write one ``VOC<year>`` folder: every image of ``scenes`` with its
    XML, masks for the images in ``Segmentation/trainval``, the lists."""
    segmented = set(lists['Segmentation/trainval'])
    for img_id in sorted(scenes):
        scene = scenes[img_id]
        # the year the photo was taken: VOC2007, or that of a 2008_ .. id
        database = f'VOC{img_id[:4]}' if '_' in img_id else f'VOC{year}'
        xml = voc_xml(scene, f'{img_id}.jpg', f'VOC{year}', database,
                      img_id in segmented, styles[img_id])
        masks = None
        if img_id in segmented:
            masks = tuple(encode_palette_png(m)
                          for m in voc_masks(scene, band))
        write_voc_image(root, img_id, jpegs[img_id], xml, masks)
    write_main_lists(root, {k[5:]: v for k, v in lists.items()
                            if k.startswith('Main/')}, scenes)
    for key, ids in lists.items():
        if key.startswith('Segmentation/'):
            write_id_list(osp.join(root, 'ImageSets', f'{key}.txt'), ids)


def voc2012_styles(rng: np.random.Generator, ids12: List[str],
                   twins: List[str]) -> Dict[str, XmlStyle]:
    """VOC2012's own files in the 2012 style, about a third with float
    coordinates and a quarter without ``difficult`` (at least one each);
    the ``2007_`` twins in the VOC2007 style."""
    floats = set(pick(rng, ids12, max(1, len(ids12) // 3)))
    no_diff = set(pick(rng, ids12, max(1, len(ids12) // 4)))
    styles = {i: XmlStyle('2012', i in floats, i in no_diff) for i in ids12}
    styles.update({t: XmlStyle('2007') for t in twins})
    return styles


# ---------------------------------------------------------------------------
# SBD
# ---------------------------------------------------------------------------
def sparse_cell(masks: Sequence[np.ndarray]) -> np.ndarray:
    """A MATLAB Nx1 cell array of sparse logical matrices."""
    from scipy.sparse import csc_matrix
    cell = np.empty((len(masks), 1), dtype=object)
    for k, m in enumerate(masks):
        cell[k, 0] = csc_matrix(m.astype(bool))
    return cell


def sbd_structs(scene: Scene) -> Tuple[dict, dict]:
    """``GTcls`` and ``GTinst`` of a scene, as in SBD's ``cls/`` and
    ``inst/`` files (no 255 band; touching same-class instances merge in
    the class map)."""
    w, h = scene.size
    cls, inst = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    for k, o in enumerate(scene.objects):
        cls[o.visible] = o.label + 1
        inst[o.visible] = k + 1
    present = np.unique(cls[cls > 0]).astype(np.uint8).reshape(-1, 1)
    gt_cls = {
        'Boundaries': sparse_cell([inner_boundary(cls == c)
                                   for c in range(1, len(VOC_CLASSES) + 1)]),
        'Segmentation': cls, 'CategoriesPresent': present}
    gt_inst = {
        'Segmentation': inst,
        'Boundaries': sparse_cell([inner_boundary(inst == k + 1)
                                   for k in range(len(scene.objects))]),
        'Categories': np.array([o.label + 1 for o in scene.objects],
                               np.uint8).reshape(-1, 1)}
    return gt_cls, gt_inst


def encode_mat(name: str, struct: dict) -> bytes:
    """A compressed MATLAB 5 (v7) file holding one struct ``name``, with a
    fixed header text so that its bytes depend on the content only."""
    from scipy.io import savemat
    buf = io.BytesIO()
    savemat(buf, {name: struct}, do_compression=True)
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116)
    return bytes(data)


def write_sbd(root: str, scenes: Dict[str, Scene], jpegs: Dict[str, bytes],
              lists: Dict[str, List[str]]) -> None:
    """``SBD/dataset/{cls,inst,img}/<id>`` and ``{train,val}.txt``."""
    for split, ids in lists.items():
        write_id_list(osp.join(root, f'{split}.txt'), ids)
        for img_id in ids:
            gt_cls, gt_inst = sbd_structs(scenes[img_id])
            write_bytes(osp.join(root, 'cls', f'{img_id}.mat'),
                        encode_mat('GTcls', gt_cls))
            write_bytes(osp.join(root, 'inst', f'{img_id}.mat'),
                        encode_mat('GTinst', gt_inst))
            write_bytes(osp.join(root, 'img', f'{img_id}.jpg'), jpegs[img_id])


def make_voc_sbd(out_dir: str, seed: int = 0, *, voc_images: int = 12,
                 voc2012_images: Optional[int] = None, twins_val: int = 2,
                 twins_train: int = 1, scale: float = DEFAULT_SCALE,
                 band: Optional[int] = None) -> dict:
    """Write ``<out_dir>/VOCdevkit/VOC{2007,2012}`` and ``<out_dir>/SBD``.

    Args:
        out_dir (str): output root.
        seed (int): random seed.
        voc_images (int): VOC2007 images (>= 6).
        voc2012_images (int, optional): VOC2012's own (2008-2011) images
            (>= 6); default ``round(4 / 3 * voc_images)``. The ``2007_``
            twins come on top.
        twins_val, twins_train (int): ``2007_`` twins in VOC2012's
            Segmentation val / train lists.
        scale (float): image size factor (1.0: real VOC sizes).
        band (int, optional): width of the 255 band; default
            ``max(2, round(5 * scale))``.

    Returns:
        dict: ``{'voc2007': ..., 'voc2012': ..., 'sbd': ...}``, each with
        ``root``, ``ids`` and ``lists`` (list name -> ids); ``voc2012`` adds
        ``twins`` (``{'val', 'train'}``), ``sbd`` adds ``with_official_mask``.
    """
    n12 = round(4 / 3 * voc_images) if voc2012_images is None \
        else voc2012_images
    if voc_images < 6 or n12 < 6:
        raise ValueError('need at least 6 VOC2007 and 6 VOC2012 images')
    if twins_val + twins_train > max(voc_images // 2, 3):
        raise ValueError('more twins than VOC2007 segmentation images')
    band = max(2, round(5 * scale)) if band is None else band
    rng = np.random.default_rng([seed, 0])
    deck = Deck(rng, range(len(VOC_CLASSES)))
    sizes = scaled_sizes(VOC_SIZES, scale)
    ids07, ids12 = voc2007_ids(rng, voc_images), voc2012_ids(rng, n12)
    scenes = {}
    for ids in (ids07, ids12):
        forced = forced_specs(rng, deck, ids)
        scenes.update(zip(ids, render_set(rng, len(ids), deck, VOC_CLASSES,
                                          sizes, forced)))
    jpegs = {i: encode_jpeg(s.image) for i, s in scenes.items()}
    layout = voc_layout(rng, ids07, ids12, twins_val, twins_train)
    twins = layout['twins']['val'] + layout['twins']['train']
    for t in twins:
        scenes[t], jpegs[t] = scenes[t[5:]], jpegs[t[5:]]
    voc_root = osp.join(out_dir, 'VOCdevkit')
    info = {}
    for year, ids, styles in (
            ('2007', ids07, {i: XmlStyle('2007') for i in ids07}),
            ('2012', ids12 + twins, voc2012_styles(rng, ids12, twins))):
        root = osp.join(voc_root, f'VOC{year}')
        write_voc_year(root, year, {i: scenes[i] for i in ids}, jpegs,
                       layout[f'voc{year}'], styles, band)
        info[f'voc{year}'] = {'root': root, 'ids': sorted(ids),
                              'lists': layout[f'voc{year}']}
    info['voc2012']['twins'] = layout['twins']
    sbd_root = osp.join(out_dir, 'SBD', 'dataset')
    write_sbd(sbd_root, scenes, jpegs, layout['sbd'])
    info['sbd'] = {'root': sbd_root,
                   'ids': sorted(sum(layout['sbd'].values(), [])),
                   'lists': layout['sbd'],
                   'with_official_mask': layout['sbd_official']}
    return info


# ---------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------
def coco_pool(num: int) -> List[int]:
    """Indices (into :data:`COCO_CATEGORIES`) of ``num`` categories spread
    evenly over the 80, from ``person`` (id 1) to ``toothbrush`` (id 90)."""
    num = min(max(num, 1), len(COCO_CATEGORIES))
    return sorted(set(np.linspace(0, len(COCO_CATEGORIES) - 1, num)
                      .round().astype(int).tolist()))


def mask_polygons(mask: np.ndarray) -> List[List[float]]:
    """COCO polygons (``[x1, y1, x2, y2, ...]``, pixel-centre coordinates)
    of the outer contours of a mask, one per connected part, largest
    first; parts of fewer than 3 vertices are dropped."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = [(c.reshape(-1, 2) + 0.5).ravel().tolist()
             for c in contours if len(c) >= 3]
    return sorted(polys, key=lambda p: -cv2.contourArea(
        np.array(p, np.float32).reshape(-1, 2)))


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths of the column-major mask,
    starting with a (possibly empty) run of zeros."""
    flat = np.asarray(mask, np.uint8).ravel(order='F')
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {'counts': [int(c) for c in counts],
            'size': [int(mask.shape[0]), int(mask.shape[1])]}


def coco_annotation(obj: SceneObject, ann_id: int, image_id: int,
                    h: int, w: int) -> Optional[dict]:
    """The annotation of one object (None if its polygons are empty):
    polygons for ``iscrowd=0``, uncompressed RLE for ``iscrowd=1``;
    ``area`` and ``bbox`` of the mask pycocotools decodes."""
    from pycocotools import mask as mask_utils
    if obj.crowd:
        segm = uncompressed_rle(obj.visible)
        rle = mask_utils.frPyObjects(segm, h, w)
    else:
        segm = mask_polygons(obj.visible)
        if not segm:
            return None
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    area = float(mask_utils.area(rle))
    if area <= 0:
        return None
    return {'segmentation': segm, 'area': area, 'iscrowd': int(obj.crowd),
            'image_id': image_id,
            'bbox': [float(v) for v in mask_utils.toBbox(rle)],
            'category_id': COCO_CATEGORIES[obj.label][0], 'id': ann_id}


def coco_image_entry(rng: np.random.Generator, image_id: int,
                     scene: Scene) -> dict:
    w, h = scene.size
    date = (f'2013-{int(rng.integers(11, 13)):02d}-'
            f'{int(rng.integers(1, 29)):02d} {int(rng.integers(0, 24)):02d}:'
            f'{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}')
    return {'license': int(rng.integers(1, len(COCO_LICENSES) + 1)),
            'file_name': f'{image_id:012d}.jpg', 'coco_url': '',
            'height': h, 'width': w, 'date_captured': date,
            'flickr_url': '', 'id': image_id}


def coco_split_plan(rng: np.random.Generator, n: int, n_crowd: int,
                    deck: Deck, names: Sequence[str]
                    ) -> Tuple[dict, dict, set]:
    """Which images are empty (one), have a crowd region drawn first
    (``n_crowd``, each with other objects too), an object cut in two by a
    bar drawn across it (one; its annotation has two polygons) or are
    grayscale (one).

    Returns:
        tuple: ``(counts, forced, gray)``: object counts and forced specs
        by image index, and the indices of the grayscale images.
    """
    order = rng.permutation(n).tolist()
    empty, crowd, split, gray = order[0], order[1:1 + n_crowd], \
        order[1 + n_crowd], order[-1]
    counts = {empty: 0, split: int(rng.integers(2, 6))}
    counts.update({i: int(rng.integers(2, 6)) for i in crowd})
    forced = {i: [ObjectSpec(label=deck.draw(), kind='crowd',
                             extent=rng.uniform(0.4, 0.6))] for i in crowd}
    lab, extent = deck.draw(), rng.uniform(0.35, 0.5)
    forced[split] = [
        ObjectSpec(label=lab, kind=shape_kind(names[lab], lab),
                   extent=extent),
        ObjectSpec(label=deck.draw(), kind='bar', extent=1.7 * extent,
                   cross=0)]
    return counts, forced, {gray}


def write_coco_split(rng: np.random.Generator, root: str, split: str,
                     image_ids: List[int], scenes: List[Scene],
                     gray: set, next_ann: int) -> Tuple[dict, int]:
    """Write ``<root>/<split>/*.jpg`` and
    ``<root>/annotations/instances_<split>.json``."""
    images, anns = [], []
    for k, (image_id, scene) in enumerate(zip(image_ids, scenes)):
        img = cv2.cvtColor(scene.image, cv2.COLOR_RGB2GRAY) if k in gray \
            else scene.image
        write_bytes(osp.join(root, split, f'{image_id:012d}.jpg'),
                    encode_jpeg(img))
        images.append(coco_image_entry(rng, image_id, scene))
        w, h = scene.size
        for o in scene.objects:
            # crowd annotations have their own id range, as in COCO
            ann_id = 900100000000 + image_id if o.crowd else next_ann
            ann = coco_annotation(o, ann_id, image_id, h, w)
            if ann is not None:
                anns.append(ann)
                next_ann += not o.crowd
    coco = {'info': dict(COCO_INFO), 'licenses': [
        {'url': f'http://creativecommons.org/licenses/{u}', 'id': i,
         'name': n} for i, n, u in COCO_LICENSES],
        'images': images, 'annotations': anns,
        'categories': [{'supercategory': s, 'id': i, 'name': n}
                       for i, n, s in COCO_CATEGORIES]}
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    write_text(ann_file, json.dumps(coco, separators=(',', ':')))
    annotated = {a['image_id'] for a in anns}
    return {'ann_file': ann_file, 'img_dir': osp.join(root, split),
            'image_ids': list(image_ids),
            'num_annotations': len(anns),
            'num_crowd': sum(a['iscrowd'] for a in anns),
            'empty_image_ids': [i for i in image_ids if i not in annotated],
            'grayscale_image_ids': [image_ids[k] for k in sorted(gray)],
            'category_ids': sorted({a['category_id'] for a in anns})}, next_ann


def make_coco(out_dir: str, seed: int = 0, *, coco_images: int = 14,
              coco_val_images: int = 6, num_classes_coco: int = 20,
              scale: float = DEFAULT_SCALE) -> dict:
    """Write ``<out_dir>/coco/{train2017,val2017,annotations}``.

    Args:
        out_dir (str): output root.
        seed (int): random seed.
        coco_images (int): train2017 images (>= 5).
        coco_val_images (int): val2017 images (>= 4).
        num_classes_coco (int): how many of the 80 categories objects are
            drawn from (spread over the ids 1..90, see :func:`coco_pool`);
            the json always lists all 80.
        scale (float): image size factor (1.0: real COCO sizes).

    Returns:
        dict: ``{'root', 'train2017', 'val2017'}``; each split has
        ``ann_file``, ``img_dir``, ``image_ids``, ``num_annotations``,
        ``num_crowd``, ``empty_image_ids``, ``grayscale_image_ids`` and
        ``category_ids``.
    """
    if coco_images < 5 or coco_val_images < 4:
        raise ValueError('need at least 5 train2017 and 4 val2017 images')
    rng = np.random.default_rng([seed, 1])
    names = [n for _, n, _ in COCO_CATEGORIES]
    deck = Deck(rng, coco_pool(num_classes_coco))
    sizes = scaled_sizes(COCO_SIZES, scale)
    all_ids = (rng.choice(COCO_MAX_IMAGE_ID, coco_images + coco_val_images,
                          replace=False) + 1).tolist()
    root = osp.join(out_dir, 'coco')
    info, next_ann = {'root': root}, int(rng.integers(1, 10 ** 6))
    for split, ids, n_crowd in (
            ('train2017', all_ids[:coco_images], 2),
            ('val2017', all_ids[coco_images:], 1)):
        counts, forced, gray = coco_split_plan(rng, len(ids), n_crowd, deck,
                                               names)
        scenes = render_set(rng, len(ids), deck, names, sizes, forced,
                            counts)
        info[split], next_ann = write_coco_split(rng, root, split, ids,
                                                 scenes, gray, next_ann)
    return info


# ---------------------------------------------------------------------------
# everything
# ---------------------------------------------------------------------------
def make_real_format_data(out_dir: str, seed: int = 0, *,
                          voc_images: int = 12,
                          voc2012_images: Optional[int] = None,
                          twins_val: int = 2, twins_train: int = 1,
                          coco_images: int = 14, coco_val_images: int = 6,
                          num_classes_coco: int = 20,
                          scale: float = DEFAULT_SCALE,
                          band: Optional[int] = None,
                          progress: Optional[Callable[[str], None]] = None
                          ) -> dict:
    """Write VOC2007 + VOC2012, SBD and COCO 2017 in their real layouts
    under ``out_dir`` (see the module doc for the format facts).

    Files of the same names are overwritten; files an earlier run with other
    options left there are not removed, so write into an empty folder.

    Args:
        out_dir (str): output root (``<out_dir>/VOCdevkit``,
            ``<out_dir>/SBD/dataset``, ``<out_dir>/coco``).
        seed (int): random seed; one seed gives byte-identical files.
        voc_images, voc2012_images, twins_val, twins_train, band: see
            :func:`make_voc_sbd`.
        coco_images, coco_val_images, num_classes_coco: see
            :func:`make_coco`.
        scale (float): image size factor: the default gives ~160 px VOC
            images, 1.0 the real 500 x 375-like (VOC) and 640 x 480-like
            (COCO) sizes.
        progress (callable, optional): called with one line per part.

    Returns:
        dict: ``out_dir``, ``voc2007``, ``voc2012``, ``sbd`` (see
        :func:`make_voc_sbd`), ``coco`` (see :func:`make_coco`) and
        ``counts`` (name -> number).
    """
    if not 0.1 <= scale <= 2:
        raise ValueError(f'scale must be in [0.1, 2], got {scale}')
    say = progress or (lambda line: None)
    info = {'out_dir': out_dir}
    info.update(make_voc_sbd(out_dir, seed, voc_images=voc_images,
                             voc2012_images=voc2012_images,
                             twins_val=twins_val, twins_train=twins_train,
                             scale=scale, band=band))
    v7, v12, sbd = info['voc2007'], info['voc2012'], info['sbd']
    say(f'VOC2007: {len(v7["ids"])} images '
        f'({len(v7["lists"]["Segmentation/trainval"])} with masks) '
        f'-> {v7["root"]}')
    say(f'VOC2012: {len(v12["ids"])} images '
        f'({len(v12["lists"]["Segmentation/trainval"])} with masks, '
        f'{sum(map(len, v12["twins"].values()))} 2007_ twins) '
        f'-> {v12["root"]}')
    say(f'SBD: {len(sbd["ids"])} images '
        f'({len(sbd["lists"]["train"])} train, {len(sbd["lists"]["val"])} '
        f'val) -> {sbd["root"]}')
    info['coco'] = make_coco(out_dir, seed, coco_images=coco_images,
                             coco_val_images=coco_val_images,
                             num_classes_coco=num_classes_coco, scale=scale)
    for split in ('train2017', 'val2017'):
        c = info['coco'][split]
        say(f'COCO {split}: {len(c["image_ids"])} images, '
            f'{c["num_annotations"]} annotations ({c["num_crowd"]} crowd) '
            f'-> {c["img_dir"]}')
    info['counts'] = {
        'voc2007_images': len(v7['ids']),
        'voc2007_segmentation': len(v7['lists']['Segmentation/trainval']),
        'voc2012_images': len(v12['ids']),
        'voc2012_main_trainval': len(v12['lists']['Main/trainval']),
        'voc2012_segmentation_train': len(v12['lists']['Segmentation/train']),
        'voc2012_segmentation_val': len(v12['lists']['Segmentation/val']),
        'voc2012_twins': sum(map(len, v12['twins'].values())),
        'sbd_images': len(sbd['ids']),
        'coco_train2017_images': len(info['coco']['train2017']['image_ids']),
        'coco_val2017_images': len(info['coco']['val2017']['image_ids']),
        'coco_train2017_annotations':
            info['coco']['train2017']['num_annotations'],
        'coco_val2017_annotations':
            info['coco']['val2017']['num_annotations'],
    }
    return info
