#!/usr/bin/env python
"""Fit MATL box labels (K-means on normalised box features) on a training set.

Reads the training boxes (COCO json, or VOC XML through an ImageSets list),
computes ``[width, height, area, symmetric squareness]``, min-max normalises
them, fits K-means (seeded) and the per-feature mutual information with the
class (for TG-MATL), and writes:

* ``--out`` (JSON): the fitted :class:`BoxLabeler`, loaded by
  ``MATLEmbeddingHead(box_labels_file=...)`` and ``tools/embedding_probe.py``;
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
from typing import Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from bombo.models.task_modules.box_labels import (  # noqa: E402
    BoxLabeler, elbow_inertias)


def load_coco_boxes(ann_file: str) -> Tuple[np.ndarray, np.ndarray]:
    """(N, 4) xyxy boxes and (N, ) 0-based labels (sorted category ids),
    crowd boxes skipped."""
    with open(ann_file) as f:
        coco = json.load(f)
    cat_ids = sorted(c['id'] for c in coco['categories'])
    cat2label = {c: i for i, c in enumerate(cat_ids)}
    boxes, labels = [], []
    for ann in coco['annotations']:
        if ann.get('iscrowd', 0):
            continue
        x, y, w, h = ann['bbox']
        boxes.append([x, y, x + w, y + h])
        labels.append(cat2label[ann['category_id']])
    return np.asarray(boxes, dtype=np.float64), np.asarray(labels)


def load_voc_boxes(voc_roots: Sequence[str], split: str,
                   classes=None,
                   progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """VOC XML boxes (1-based inclusive corners -> 0-based xyxy), difficult
    boxes skipped, of the images listed in ``<root>/ImageSets/<split>.txt``
    for every root; labels index ``classes`` (default: sorted names).
    ``progress``: a progress bar over the XML files."""
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
    boxes = np.asarray([r[1] for r in records if r[0] in names])
    labels = np.asarray([names.index(r[0]) for r in records if r[0] in names])
    return boxes, labels


def _voc_records(voc_root: str, ids: Sequence[str]) -> list:
    records = []
    for img_id in ids:
        root = ET.parse(osp.join(voc_root, 'Annotations',
                                 f'{img_id}.xml')).getroot()
        for obj in root.findall('object'):
            diff = obj.find('difficult')
            if diff is not None and int(diff.text) == 1:
                continue
            bb = obj.find('bndbox')
            x1, y1, x2, y2 = (float(bb.find(k).text)
                              for k in ('xmin', 'ymin', 'xmax', 'ymax'))
            records.append((obj.find('name').text, [x1 - 1, y1 - 1, x2, y2]))
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
    p.add_argument('--elbow', help='also write the elbow curve (K-means '
                   'inertia over --k-range) to this PNG')
    p.add_argument('--k-range', type=int, nargs=2, default=(1, 8),
                   metavar=('KMIN', 'KMAX'),
                   help='the K values of the elbow curve, both ends '
                   'included')
    args = p.parse_args(argv)

    if args.ann_file:
        boxes, labels = load_coco_boxes(args.ann_file)
        source = args.ann_file
    else:
        boxes, labels = load_voc_boxes(args.voc_root, args.split,
                                       progress=True)
        source = f'{",".join(args.voc_root)}:{args.split}'
    labeler = BoxLabeler.fit(boxes, labels, n_clusters=args.n_clusters,
                             seed=args.seed)
    labeler.meta['source'] = source
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
