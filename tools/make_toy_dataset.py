#!/usr/bin/env python
"""Generate the bombo toy dataset: a tiny, deterministic, VOC-like set of shapes.

Every image holds 1-4 instances of three classes (``rectangle``, ``ellipse``,
``triangle``) drawn on a textured background. Some instances overlap (the later
one occludes the earlier) and some are same-class neighbours that touch, so
that a semantic mask merges them into one connected component: exactly the
cases Mask-for-Box has to split. The data is written twice:

* VOC layout: ``JPEGImages/<id>.jpg``, ``Annotations/<id>.xml`` (1-based,
  inclusive corners as in VOC), ``SegmentationClass/<id>.png`` and
  ``SegmentationObject/<id>.png`` (palette PNGs with 255 on a thin border:
  around every class region in the class mask, so that touching instances
  of one class form one connected component as in SBD masks, and around
  every instance in the object mask), ``ImageSets/Main/<split>.txt``;
* COCO json: ``annotations/<split>.json`` (xywh boxes, RLE masks).

Splits: ``det_train`` (used with boxes only), ``seg_train`` (used with masks
only) and ``val`` (both). Instance ground truth (XML boxes and
``SegmentationObject``) is written for *every* image, so that pseudo-boxes
(Mask-for-Box) and pseudo-masks (Box-for-Mask) can be scored against it.

Usage::

    python tools/make_toy_dataset.py --out data/toy --seed 0
    python tools/make_toy_dataset.py --preset hard --out data/toy_hard --seed 0

Presets (``--preset``):

* ``default``: the set above (128 x 128, three flat-coloured classes on a
  contrasting background; GrabCut's M^c reaches ~99 % mIoU on it). Its output
  is fixed: ``tests/tools/test_make_toy_dataset.py`` pins file checksums.
* ``hard``: closer to photographs. Six classes (``HARD_CLASSES``), non-square
  images whose sides are drawn from ``--min-side``..``--max-side`` (96-160 px,
  so batches mix sizes), objects that are *textured* with the same kind of
  texture as the background (smooth field + oriented stripes + noise) and
  shaded by a linear gradient, in colours only moderately different from
  the local background (sometimes close to it), background clutter (textured
  unlabelled blobs and strokes in object-like colours), unlabelled occluders
  lying on top of objects, up to 6 instances with overlaps, and touching
  same-class neighbours that merge in ``SegmentationClass`` as in SBD.
"""
import argparse
import json
import os
import os.path as osp
import sys
import xml.etree.ElementTree as ET

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from bombo.datasets.partial_voc import voc_palette  # noqa: E402

CLASSES = ('rectangle', 'ellipse', 'triangle')
HARD_CLASSES = ('rectangle', 'ellipse', 'triangle', 'cross', 'star',
                'hexagon')
PRESETS = ('default', 'hard')



def textured_background(rng, size):
    """A smooth random field plus fine noise around a random base colour."""
    base = rng.uniform(40, 215, size=3)
    low = rng.normal(0, 1, size=(size // 16 + 2, size // 16 + 2, 3))
    low = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    stripes = np.sin(np.arange(size)[None, :, None] * rng.uniform(0.2, 0.6)
                     + rng.uniform(0, 6.28))
    img = base + 25 * low + 8 * stripes + rng.normal(0, 6, (size, size, 3))
    return img


def draw_shape(rng, cls, size, centre=None):
    """Return a boolean mask of one shape of class ``cls``."""
    mask = np.zeros((size, size), dtype=np.uint8)
    s = rng.uniform(0.13, 0.42) * size  # object extent, 16-54 px at 128
    if centre is None:
        cx, cy = rng.uniform(0.15, 0.85, size=2) * size
    else:
        cx, cy = centre
    if cls == 0:  # rectangle, slightly rotated
        w, h = s, s * rng.uniform(0.45, 1.0)
        if rng.random() < 0.5:
            w, h = h, w
        angle = rng.uniform(-15, 15)
        pts = cv2.boxPoints(((cx, cy), (w, h), angle))
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    elif cls == 1:  # ellipse
        axes = (int(s / 2), int(s / 2 * rng.uniform(0.5, 1.0)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0,
                    360, 1, -1)
    else:  # triangle
        angles = rng.uniform(0, 2 * np.pi) + np.array(
            [0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
        pts = np.stack([cx + s / 1.7 * np.cos(angles),
                        cy + s / 1.7 * np.sin(angles)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(bool), s


def make_image(rng, size, max_objects=4, min_area=40):
    """One image with its instance masks (visible parts) and labels."""
    img = textured_background(rng, size)
    inst_masks, labels = [], []
    n = rng.integers(1, max_objects + 1)
    while len(labels) < n:
        cls = int(rng.integers(0, len(CLASSES)))
        centre = None
        if labels and rng.random() < 0.3:
            # a same-class neighbour touching/overlapping an earlier instance
            j = int(rng.integers(0, len(labels)))
            cls = labels[j]
            ys, xs = np.nonzero(inst_masks[j])
            if len(xs) == 0:
                continue
            w = xs.max() - xs.min()
            h = ys.max() - ys.min()
            d = rng.choice([-1, 1]) * (0.5 + rng.uniform(0.2, 0.5))
            if rng.random() < 0.5:
                centre = (xs.mean() + d * w, ys.mean())
            else:
                centre = (xs.mean(), ys.mean() + d * h)
        mask, _ = draw_shape(rng, cls, size, centre)
        # colour with a clear contrast to the local background
        bg = img[mask].mean(0) if mask.any() else img.mean((0, 1))
        colour = rng.uniform(0, 255, 3)
        for _ in range(10):
            if np.abs(colour - bg).sum() > 150:
                break
            colour = rng.uniform(0, 255, 3)
        shade = rng.normal(0, 6, (size, size, 3))
        img[mask] = colour + shade[mask]
        for m in inst_masks:  # occlusion: later objects lie on top
            m &= ~mask
        inst_masks.append(mask)
        labels.append(cls)
    keep = [i for i, m in enumerate(inst_masks) if m.sum() >= min_area]
    inst_masks = [inst_masks[i] for i in keep]
    labels = [labels[i] for i in keep]
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img, inst_masks, labels


# --------------------------------------------------------------------------
# the ``hard`` preset (the default preset above must not change: its files
# are pinned by checksums in tests/tools/test_make_toy_dataset.py)
# --------------------------------------------------------------------------
def texture_field(rng, h, w, base, amp=None):
    """Background-like texture: a smooth random field, oriented stripes and
    fine noise around ``base`` (an RGB colour), ``(h, w, 3)`` float."""
    amp = rng.uniform(15, 35) if amp is None else amp
    cell = int(rng.integers(8, 24))
    low = rng.normal(0, 1, size=(h // cell + 2, w // cell + 2, 3))
    low = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    theta = rng.uniform(0, np.pi)
    freq = rng.uniform(0.15, 0.7)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * freq
                     + rng.uniform(0, 2 * np.pi))[..., None]
    stripe_col = rng.uniform(-1, 1, 3)
    return (base + amp * low + rng.uniform(5, 20) * stripes * stripe_col
            + rng.normal(0, rng.uniform(4, 10), (h, w, 3)))


def linear_shading(rng, h, w, strength):
    """A linear brightness gradient in a random direction, ``(h, w, 1)``."""
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    g = xx * np.cos(theta) + yy * np.sin(theta)
    g = (g - g.min()) / max(g.max() - g.min(), 1e-6) - 0.5
    return (strength * g)[..., None]


def draw_hard_shape(rng, cls, h, w, centre=None, scale=None):
    """Boolean mask of one shape of class ``cls`` of :data:`HARD_CLASSES`."""
    mask = np.zeros((h, w), dtype=np.uint8)
    side = min(h, w)
    s = (rng.uniform(0.18, 0.5) if scale is None else scale) * side
    if centre is None:
        cx, cy = rng.uniform(0.12, 0.88) * w, rng.uniform(0.12, 0.88) * h
    else:
        cx, cy = centre
    rot = rng.uniform(0, 2 * np.pi)

    def polygon(radii, angles):
        pts = np.stack([cx + radii * np.cos(angles + rot),
                        cy + radii * np.sin(angles + rot)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)

    if cls == 0:  # rectangle
        bw, bh = s, s * rng.uniform(0.4, 1.0)
        pts = cv2.boxPoints(((cx, cy), (bw, bh), rng.uniform(-30, 30)))
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    elif cls == 1:  # ellipse
        axes = (max(int(s / 2), 2), max(int(s / 2 * rng.uniform(0.4, 1.0)), 2))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0,
                    360, 1, -1)
    elif cls == 2:  # triangle
        a = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(
            -0.3, 0.3, 3)
        polygon(np.full(3, s / 1.7), a)
    elif cls == 3:  # cross (plus sign)
        arm = s * rng.uniform(0.25, 0.4)
        ang = rng.uniform(-30, 30)
        for dims in ((s, arm), (arm, s)):
            pts = cv2.boxPoints(((cx, cy), dims, ang))
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    elif cls == 4:  # five-pointed star
        a = np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, s / 2, s / 2 * rng.uniform(
            0.38, 0.55))
        polygon(r, a)
    else:  # hexagon
        polygon(np.full(6, s / 2) * rng.uniform(0.9, 1.1, 6),
                np.arange(6) * np.pi / 3)
    return mask.astype(bool)


def _contrasting_colour(rng, ref, lo, hi):
    """A colour whose L1 distance to ``ref`` lies in [lo, hi] (best of 20)."""
    best, best_err = None, np.inf
    for _ in range(20):
        c = rng.uniform(20, 235, 3)
        d = np.abs(c - ref).sum()
        err = 0 if lo <= d <= hi else min(abs(d - lo), abs(d - hi))
        if err < best_err:
            best, best_err = c, err
        if err == 0:
            break
    return best


def _clutter_mask(rng, h, w):
    """An unlabelled blob or stroke (clutter / occluder)."""
    mask = np.zeros((h, w), np.uint8)
    side = min(h, w)
    if rng.random() < 0.5:  # irregular blob
        n = int(rng.integers(5, 9))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        a = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.04, 0.16, n) * side
        pts = np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:  # a thick stroke (branch, cable)
        p0 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        p1 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        cv2.line(mask, p0, p1, 1, int(rng.integers(2, 7)))
    return mask.astype(bool)


def make_hard_image(rng, h, w, max_objects=6, min_area=60):
    """One ``hard``-preset image (h x w) with its visible instance masks and
    labels (indices into :data:`HARD_CLASSES`)."""
    bg_base = rng.uniform(50, 205, 3)
    img = texture_field(rng, h, w, bg_base)
    img += linear_shading(rng, h, w, rng.uniform(10, 50))
    # background clutter in object-like colours, textured
    for _ in range(int(rng.integers(2, 7))):
        m = _clutter_mask(rng, h, w)
        if m.any():
            col = _contrasting_colour(rng, img[m].mean(0), 40, 160)
            img[m] = texture_field(rng, h, w, col)[m]
    inst_masks, labels = [], []
    n = int(rng.integers(1, max_objects + 1))
    tries = 0
    while len(labels) < n and tries < 4 * n:
        tries += 1
        cls = int(rng.integers(0, len(HARD_CLASSES)))
        centre, scale = None, None
        if labels and rng.random() < 0.35:
            # a same-class neighbour touching/overlapping an earlier one
            j = int(rng.integers(0, len(labels)))
            ys, xs = np.nonzero(inst_masks[j])
            if len(xs) == 0:
                continue
            cls = labels[j]
            bw, bh = xs.max() - xs.min(), ys.max() - ys.min()
            d = rng.choice([-1, 1]) * rng.uniform(0.6, 0.95)
            if rng.random() < 0.5:
                centre = (xs.mean() + d * bw, ys.mean())
            else:
                centre = (xs.mean(), ys.mean() + d * bh)
            scale = max(bw, bh) / min(h, w) * rng.uniform(0.8, 1.1)
        mask = draw_hard_shape(rng, cls, h, w, centre, scale)
        if not mask.any():
            continue
        local = img[mask].mean(0)
        if rng.random() < 0.3:  # camouflaged: close to the background
            colour = _contrasting_colour(rng, local, 30, 70)
        else:
            colour = _contrasting_colour(rng, local, 70, 200)
        tex = texture_field(rng, h, w, colour, amp=rng.uniform(10, 30))
        tex += linear_shading(rng, h, w, rng.uniform(20, 70))
        img[mask] = tex[mask]
        for m in inst_masks:  # occlusion: later objects lie on top
            m &= ~mask
        inst_masks.append(mask)
        labels.append(cls)
    # unlabelled occluders lying on top of the objects
    for _ in range(int(rng.integers(0, 3))):
        m = _clutter_mask(rng, h, w)
        if m.any():
            col = _contrasting_colour(rng, img[m].mean(0), 40, 160)
            img[m] = texture_field(rng, h, w, col)[m]
            for im in inst_masks:
                im &= ~m
    keep = [i for i, m in enumerate(inst_masks) if m.sum() >= min_area]
    inst_masks = [inst_masks[i] for i in keep]
    labels = [labels[i] for i in keep]
    img = cv2.GaussianBlur(img, (3, 3), 0.6)  # camera-like softness
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img, inst_masks, labels


def boundary(mask):
    """Pixels on the 1-pixel inner/outer border of a boolean mask."""
    m = mask.astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    return (cv2.dilate(m, k) - cv2.erode(m, k)).astype(bool)


def write_xml(path, img_id, size, boxes, labels, classes=CLASSES):
    """VOC XML; ``size`` is the side of a square image or ``(w, h)``."""
    width, height = (size, size) if np.isscalar(size) else size
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'toy'
    ET.SubElement(root, 'filename').text = f'{img_id}.jpg'
    sz = ET.SubElement(root, 'size')
    for k, v in (('width', width), ('height', height), ('depth', 3)):
        ET.SubElement(sz, k).text = str(v)
    ET.SubElement(root, 'segmented').text = '1'
    for (x1, y1, x2, y2), lab in zip(boxes, labels):
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = classes[lab]
        ET.SubElement(obj, 'pose').text = 'Unspecified'
        ET.SubElement(obj, 'truncated').text = '0'
        ET.SubElement(obj, 'difficult').text = '0'
        bb = ET.SubElement(obj, 'bndbox')
        # VOC convention: 1-based inclusive pixel indices
        for k, v in (('xmin', x1 + 1), ('ymin', y1 + 1), ('xmax', x2),
                     ('ymax', y2)):
            ET.SubElement(bb, k).text = str(int(v))
    ET.ElementTree(root).write(path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', default='data/toy', help='output folder')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--preset', default='default', choices=PRESETS,
                        help='dataset preset (see the module docstring)')
    parser.add_argument('--size', type=int, default=128,
                        help='image side of the default preset')
    parser.add_argument('--min-side', type=int, default=96,
                        help='smallest image side of the hard preset')
    parser.add_argument('--max-side', type=int, default=160,
                        help='largest image side of the hard preset')
    parser.add_argument('--num-det', type=int, default=400,
                        help='images in det_train')
    parser.add_argument('--num-seg', type=int, default=400,
                        help='images in seg_train')
    parser.add_argument('--num-val', type=int, default=100,
                        help='images in val')
    args = parser.parse_args(argv)
    if min(args.num_det, args.num_seg, args.num_val) < 0:
        parser.error('split sizes must be >= 0')
    if not 32 <= args.min_side <= args.max_side:
        parser.error('need 32 <= --min-side <= --max-side')
    generate(args.out, args.seed, args.size, args.num_det, args.num_seg,
             args.num_val, preset=args.preset,
             side_range=(args.min_side, args.max_side))


def generate(out, seed=0, size=128, num_det=400, num_seg=400, num_val=100,
             preset='default', side_range=(96, 160)):
    """Write the toy dataset to ``out``; returns the split dict.

    ``preset='default'`` writes square ``size`` images of :data:`CLASSES`;
    ``preset='hard'`` writes images of :data:`HARD_CLASSES` whose height and
    width are drawn independently from ``side_range`` (inclusive)."""
    from pycocotools import mask as mask_utils
    if preset not in PRESETS:
        raise ValueError(f'unknown preset {preset!r}; choose from {PRESETS}')
    hard = preset == 'hard'
    classes = HARD_CLASSES if hard else CLASSES
    rng = np.random.default_rng(seed)
    dirs = ['JPEGImages', 'Annotations', 'SegmentationClass',
            'SegmentationObject', 'ImageSets/Main', 'annotations']
    for d in dirs:
        os.makedirs(osp.join(out, d), exist_ok=True)
    palette = voc_palette()
    splits = {'det_train': num_det, 'seg_train': num_seg, 'val': num_val}
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(classes)]
    idx = 0
    for split, num in splits.items():
        ids, images, anns = [], [], []
        for _ in range(num):
            img_id = f'{idx:06d}'
            if hard:
                h, w = (int(v) for v in rng.integers(
                    side_range[0], side_range[1] + 1, size=2))
                labels = []
                while not labels:  # every hard image holds an object
                    img, inst_masks, labels = make_hard_image(rng, h, w)
                xml_size = (w, h)
            else:
                img, inst_masks, labels = make_image(rng, size)
                h = w = xml_size = size
            cls_map = np.zeros((h, w), np.uint8)
            obj_map = np.zeros((h, w), np.uint8)
            obj_border = np.zeros((h, w), bool)
            boxes = []
            for k, (m, lab) in enumerate(zip(inst_masks, labels)):
                cls_map[m] = lab + 1
                obj_map[m] = k + 1
                obj_border |= boundary(m)
                ys, xs = np.nonzero(m)
                boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
            # 255 around each class region, not between touching instances
            # of one class: as in SBD masks, same-class neighbours form one
            # connected component (the case Mask-for-Box must split)
            cls_border = np.zeros((h, w), bool)
            for c in np.unique(cls_map[cls_map > 0]):
                cls_border |= boundary(cls_map == c)
            cls_map[cls_border] = 255
            obj_map[obj_border] = 255
            cv2.imwrite(osp.join(out, 'JPEGImages', f'{img_id}.jpg'),
                        img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            for sub, arr in (('SegmentationClass', cls_map),
                             ('SegmentationObject', obj_map)):
                png = Image.fromarray(arr, mode='P')
                png.putpalette(palette)
                png.save(osp.join(out, sub, f'{img_id}.png'))
            write_xml(osp.join(out, 'Annotations', f'{img_id}.xml'), img_id,
                      xml_size, boxes, labels, classes)
            images.append(dict(id=idx, file_name=f'{img_id}.jpg',
                               width=w, height=h))
            for m, lab, (x1, y1, x2, y2) in zip(inst_masks, labels, boxes):
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                rle['counts'] = rle['counts'].decode('ascii')
                anns.append(dict(
                    id=len(anns) + 1, image_id=idx, category_id=lab + 1,
                    bbox=[float(x1), float(y1), float(x2 - x1),
                          float(y2 - y1)],
                    area=float(m.sum()), iscrowd=0, segmentation=rle))
            ids.append(img_id)
            idx += 1
        with open(osp.join(out, 'ImageSets/Main', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(ids) + '\n')
        with open(osp.join(out, 'annotations', f'{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=anns,
                           categories=categories), f)
    return splits


if __name__ == '__main__':
    main()
