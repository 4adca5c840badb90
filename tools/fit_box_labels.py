#!/usr/bin/env python
"""Fit MATL box labels (K-means on normalised box features) on a training set.

Reads the training boxes (COCO json, or VOC XML through an ImageSets list),
computes ``[width, height, area, symmetric squareness]``, min-max normalises
them, fits K-means (seeded) and the per-feature mutual information with the
class (for TG-MATL's relevance, Eq. (5)), and writes:

* ``--out`` (JSON): the fitted :class:`BoxLabeler`, loaded by
  ``MATLEmbeddingHead(box_labels_file=...)`` and ``tools/embedding_probe.py``.
  When the annotations give every image's size (COCO ``images[]``
  ``height``/``width``, VOC ``<size>``) it also holds the min-max range and
  MI of the authors'-code relevance features ``(xc/W, yc/H, w/W, h/H)``
  (``relevance.xcycwh``), so that ``TGMATLLoss(relevance_features='xcycwh')``
  uses training-set statistics like the paper's ``'shape'`` mode;
* ``--elbow`` (PNG, optional): the K-means elbow curve over ``--k-range``.

Usage::

    python tools/fit_box_labels.py \\
        --ann-file data/toy/annotations/det_train.json \\
        --out data/toy/box_labels.json --elbow data/toy/box_labels_elbow.png
    # the VOC detection-training split of configs/bombo (both years)
    python tools/fit_box_labels.py \\
        --voc-root data/VOCdevkit/VOC2007 data/VOCdevkit/VOC2012 \\
        --split Partial/det_train --out data/voc_box_labels.json
"""
import argparse
import json
import os.path as osp
import sys
import xml.etree.ElementTree as ET
from typing import Optional, Sequence

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from bombo.models.losses.tg_matl import TGMATLRelevance  # noqa: E402
from bombo.models.task_modules.box_labels import (  # noqa: E402
    BoxLabeler, elbow_inertias)


def load_coco_boxes(ann_file: str, with_sizes: bool = False):
    """(N, 4) xyxy boxes and (N, ) 0-based labels (sorted category ids),
    crowd boxes skipped. ``with_sizes``: also (N, 2) ``(H, W)`` of each box's
    image from ``images[].height/width``, or None when an image lacks them."""
    with open(ann_file) as f:
        coco = json.load(f)
    cat_ids = sorted(c['id'] for c in coco['categories'])
    cat2label = {c: i for i, c in enumerate(cat_ids)}
    img_hw = {img['id']: (img.get('height'), img.get('width'))
              for img in coco.get('images', [])}
    boxes, labels, sizes = [], [], []
    for ann in coco['annotations']:
        if ann.get('iscrowd', 0):
            continue
        x, y, w, h = ann['bbox']
        boxes.append([x, y, x + w, y + h])
        labels.append(cat2label[ann['category_id']])
        sizes.append(img_hw.get(ann['image_id'], (None, None)))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64)
    if not with_sizes:
        return boxes, labels
    return boxes, labels, _sizes_or_none(sizes)


def _sizes_or_none(sizes) -> Optional[np.ndarray]:
    """(N, 2) float array, or None when any size is missing or not > 0."""
    if any(h is None or w is None for h, w in sizes):
        return None
    arr = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    return arr if bool((arr > 0).all()) else None


def load_voc_boxes(voc_roots: Sequence[str], split: str,
                   classes=None, progress: bool = False,
                   with_sizes: bool = False):
    """VOC XML boxes (1-based inclusive corners -> 0-based xyxy), difficult
    boxes skipped, of the images listed in ``<root>/ImageSets/<split>.txt``
    for every root; labels index ``classes`` (default: sorted names).
    ``progress``: a progress bar over the XML files. ``with_sizes``: also
    (N, 2) ``(H, W)`` of each box's image from ``<size>``, or None when an
    XML file lacks it."""
    records = []
    for voc_root in voc_roots:
        with open(osp.join(voc_root, 'ImageSets', f'{split}.txt')) as f:
            ids = [line.split()[0] for line in f if line.strip()]
        if progress and ids:
            from mmengine.utils import track_iter_progress
            print(f'reading {len(ids)} XML files of {voc_root}')
            ids = track_iter_progress(ids)
        records += _voc_records(voc_root, ids)
    names = list(classes) if classes else sorted({r[0] for r in records})
    kept = [r for r in records if r[0] in names]
    boxes = np.asarray([r[1] for r in kept], dtype=np.float64).reshape(-1, 4)
    labels = np.asarray([names.index(r[0]) for r in kept], dtype=np.int64)
    if not with_sizes:
        return boxes, labels
    return boxes, labels, _sizes_or_none([r[2] for r in kept])


def _voc_records(voc_root: str, ids: Sequence[str]) -> list:
    records = []
    for img_id in ids:
        root = ET.parse(osp.join(voc_root, 'Annotations',
                                 f'{img_id}.xml')).getroot()
        size = root.find('size')
        hw = (None, None)
        if size is not None and size.find('height') is not None and \
                size.find('width') is not None:
            hw = (float(size.find('height').text),
                  float(size.find('width').text))
        for obj in root.findall('object'):
            diff = obj.find('difficult')
            if diff is not None and int(diff.text) == 1:
                continue
            bb = obj.find('bndbox')
            x1, y1, x2, y2 = (float(bb.find(k).text)
                              for k in ('xmin', 'ymin', 'xmax', 'ymax'))
            records.append((obj.find('name').text, [x1 - 1, y1 - 1, x2, y2],
                            hw))
    return records


def plot_elbow(k_values, inertias, k_chosen: int, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(list(k_values), inertias, 'o-')
    ax.axvline(k_chosen, color='gray', ls='--', lw=1)
    ax.set_xlabel('K (clusters)')
    ax.set_ylabel('K-means inertia')
    ax.set_title('Box-label elbow curve')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults after every flag, the description as written."""


def main(argv=None) -> BoxLabeler:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=_HelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--ann-file', help='COCO json of the training split')
    src.add_argument('--voc-root', nargs='+',
                     help='VOC year folder(s) (with Annotations, ImageSets); '
                     'one of --ann-file and --voc-root is required')
    p.add_argument('--split', default='Main/trainval',
                   help='with --voc-root: the image list '
                   '<root>/ImageSets/<split>.txt of every root')
    p.add_argument('--out', required=True, default=argparse.SUPPRESS,
                   help='output JSON of the fitted box labeler (required)')
    p.add_argument('--n-clusters', type=int, default=3,
                   help='K, the number of box labels (K-means clusters)')
    p.add_argument('--seed', type=int, default=0,
                   help='K-means random seed')
    p.add_argument('--relevance-features', nargs='+',
                   choices=('shape', 'xcycwh'), default=None,
                   help="TG-MATL relevance (Eq. (5)) statistics to fit: "
                   "'shape' (the paper's, always fitted: the labeler's own "
                   "features) and 'xcycwh' (the authors' code: centre and "
                   "size over the image size; needs the image sizes). "
                   "Default: both, xcycwh skipped with a note when the "
                   "annotations lack image sizes")
    p.add_argument('--elbow', help='also write the elbow curve (K-means '
                   'inertia over --k-range) to this PNG')
    p.add_argument('--k-range', type=int, nargs=2, default=(1, 8),
                   metavar=('KMIN', 'KMAX'),
                   help='the K values of the elbow curve, both ends '
                   'included')
    args = p.parse_args(argv)

    if args.ann_file:
        boxes, labels, sizes = load_coco_boxes(args.ann_file, with_sizes=True)
        source = args.ann_file
    else:
        boxes, labels, sizes = load_voc_boxes(args.voc_root, args.split,
                                              progress=True, with_sizes=True)
        source = f'{",".join(args.voc_root)}:{args.split}'
    if len(boxes) == 0:
        p.error(f'no (non-crowd, non-difficult) boxes in {source}')
    labeler = BoxLabeler.fit(boxes, labels, n_clusters=args.n_clusters,
                             seed=args.seed)
    labeler.meta['source'] = source
    want_xcycwh = args.relevance_features is None or \
        'xcycwh' in args.relevance_features
    if want_xcycwh and sizes is None:
        if args.relevance_features is not None:
            p.error(f'--relevance-features xcycwh needs the image sizes, and '
                    f'{source} lacks them for some images (COCO images[] '
                    'height/width, VOC <size>)')
        print('note: image sizes missing in the annotations: no xcycwh '
              'relevance statistics (TG-MATL relevance_features=xcycwh will '
              'fit them per batch)')
    elif want_xcycwh:
        rel = TGMATLRelevance.fit(boxes, labels, 'xcycwh', sizes,
                                  seed=args.seed)
        labeler.relevance_fits['xcycwh'] = rel.to_dict()
        print(f'xcycwh relevance: MI per feature '
              f'{np.round(rel.mutual_info, 4).tolist()}')
    if args.elbow:
        ks = range(args.k_range[0], args.k_range[1] + 1)
        if len(ks) == 0:
            p.error(f'--k-range {args.k_range[0]} {args.k_range[1]}: KMIN '
                    'must not exceed KMAX')
        from mmengine.utils import track_iter_progress
        print(f'elbow curve: K-means for K = {ks[0]}..{ks[-1]}')
        inertias = [elbow_inertias(boxes, [k], seed=args.seed)[0]
                    for k in track_iter_progress(list(ks))]
        labeler.meta['elbow'] = dict(k=list(ks), inertia=inertias)
        plot_elbow(ks, inertias, args.n_clusters, args.elbow)
        print('K  inertia')
        for k, v in zip(ks, inertias):
            print(f'{k:<2d} {v:.3f}')
    labeler.save(args.out)
    print(f'{len(boxes)} boxes from {source}; cluster sizes '
          f'{labeler.meta["cluster_sizes"]}; MI per feature '
          f'{np.round(labeler.mutual_info, 4).tolist()} -> {args.out}')
    return labeler


if __name__ == '__main__':
    main()
