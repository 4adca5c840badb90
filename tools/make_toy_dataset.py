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


def boundary(mask):
    """Pixels on the 1-pixel inner/outer border of a boolean mask."""
    m = mask.astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    return (cv2.dilate(m, k) - cv2.erode(m, k)).astype(bool)


def write_xml(path, img_id, size, boxes, labels):
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'toy'
    ET.SubElement(root, 'filename').text = f'{img_id}.jpg'
    sz = ET.SubElement(root, 'size')
    for k, v in (('width', size), ('height', size), ('depth', 3)):
        ET.SubElement(sz, k).text = str(v)
    ET.SubElement(root, 'segmented').text = '1'
    for (x1, y1, x2, y2), lab in zip(boxes, labels):
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = CLASSES[lab]
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
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--num-det', type=int, default=400)
    parser.add_argument('--num-seg', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    args = parser.parse_args(argv)
    generate(args.out, args.seed, args.size, args.num_det, args.num_seg,
             args.num_val)


def generate(out, seed=0, size=128, num_det=400, num_seg=400, num_val=100):
    """Write the toy dataset to ``out``; returns the split dict."""
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(seed)
    dirs = ['JPEGImages', 'Annotations', 'SegmentationClass',
            'SegmentationObject', 'ImageSets/Main', 'annotations']
    for d in dirs:
        os.makedirs(osp.join(out, d), exist_ok=True)
    palette = voc_palette()
    splits = {'det_train': num_det, 'seg_train': num_seg, 'val': num_val}
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    idx = 0
    for split, num in splits.items():
        ids, images, anns = [], [], []
        for _ in range(num):
            img_id = f'{idx:06d}'
            img, inst_masks, labels = make_image(rng, size)
            cls_map = np.zeros((size, size), np.uint8)
            obj_map = np.zeros((size, size), np.uint8)
            obj_border = np.zeros((size, size), bool)
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
            cls_border = np.zeros((size, size), bool)
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
                      size, boxes, labels)
            images.append(dict(id=idx, file_name=f'{img_id}.jpg',
                               width=size, height=size))
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
