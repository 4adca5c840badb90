#!/usr/bin/env python
"""Frozen-embedding probe of MATL / TG-MATL (papers 000 and 001) and DAAL.

The papers' protocol: embeddings of box crops come from a *frozen* encoder; a
projection is trained on them with one of the metric losses; then task heads
are fitted on the projected embeddings and scored. Here, for each setting

    none        no triplet loss (the frozen embeddings themselves, "WTL")
    class       class-label triplet loss, batch-all ("CLTL")
    class_hard  class-label triplet loss, batch-hard ("CLTL (Hard)")
    matl        MATL, (1 - lambda) L_class + lambda L_box
    tg_matl     TG-MATL (MI-guided selection + MATL)
    daal        DAAL (our formulation)

and for each fold of a stratified K-fold split (on class labels), the tool
fits the box labels (K-means + MI) on the training fold, trains the projection
(MLP D -> 256 -> 128, L2-normalised, Adam) on the training fold, then fits a
classification probe (logistic regression) and a box-feature regression probe
(ridge regression of the 4 normalised box features) on the projected training
fold, and reports overall accuracy and R^2 on the held-out fold (mean +- std
over folds).

Input: an ``.npz`` with ``embeddings`` (N, D), ``class_labels`` (N, ) and
``boxes`` (N, 4, xyxy pixels). The default ``data/toy/probe_embeddings.npz``
is generated when missing: RoIAlign-pooled FPN features inside the ground-truth
boxes of the toy dataset, from a randomly initialised (seeded) ResNet-18 + FPN
or from a trained detector (``--config`` and ``--checkpoint``).

Usage::

    python tools/make_toy_dataset.py --out data/toy --seed 0
    python tools/embedding_probe.py --k-folds 5
    python tools/embedding_probe.py --npz my.npz --settings none matl
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from bombo.models.losses.daal import daal_loss  # noqa: E402
from bombo.models.losses.matl import matl_loss  # noqa: E402
from bombo.models.losses.tg_matl import tg_matl_loss  # noqa: E402
from bombo.models.losses.triplet import triplet_loss  # noqa: E402
from bombo.models.task_modules.box_labels import BoxLabeler  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

SETTINGS = ('none', 'class', 'class_hard', 'matl', 'tg_matl', 'daal')
DEFAULT_NPZ = 'data/toy/probe_embeddings.npz'


# --------------------------------------------------------------- extraction
def extract_embeddings(data_root: str, splits: Sequence[str], out: str,
                       config: Optional[str] = None,
                       checkpoint: Optional[str] = None, seed: int = 0,
                       window: int = 64, grid: int = 3,
                       batch_size: int = 16,
                       cfg_options: Optional[dict] = None
                       ) -> Dict[str, np.ndarray]:
    """Pool FPN features inside the ground-truth boxes of a COCO-json dataset
    (the toy layout: ``<root>/annotations/<split>.json``, ``JPEGImages``).

    The model is ``backbone`` + ``neck`` of ``config`` (weights from
    ``checkpoint``) or, by default, a randomly initialised ResNet-18 + FPN
    (64 channels) seeded with ``seed`` (PyTorch's default layer init).
    As in the papers, where each target is embedded from an image tile around
    it, every box is embedded from a ``window`` x ``window`` pixel tile
    centred on it (``window=0``: the box itself), so that size and shape are
    visible: RoIAlign (7x7) on the FPN level mmdet's ``SingleRoIExtractor``
    assigns, average-pooled to a ``grid`` x ``grid`` layout and flattened
    (C * grid^2 dims).
    """
    import cv2
    from mmdet.registry import MODELS
    from mmdet.structures.bbox import bbox2roi
    from mmdet.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(seed)
    mean = np.array([123.675, 116.28, 103.53], dtype=np.float32)
    std = np.array([58.395, 57.12, 57.375], dtype=np.float32)
    if config:
        from mmengine.runner import load_checkpoint

        from bombo.utils.config import load_config
        cfg = load_config(config, cfg_options)
        if cfg.get('custom_imports'):
            from mmengine.utils import import_modules_from_strings
            import_modules_from_strings(**cfg.custom_imports)
        backbone = MODELS.build(cfg.model.backbone)
        neck = MODELS.build(cfg.model.neck)
        body = nn.Sequential(backbone, neck)
        if checkpoint:
            wrapper = nn.Module()
            wrapper.backbone, wrapper.neck = backbone, neck
            load_checkpoint(wrapper, checkpoint, map_location='cpu',
                            strict=False)
        channels = cfg.model.neck.out_channels
        start = cfg.model.neck.get('start_level', 0)
        strides = [4, 8, 16, 32, 64, 128][start:]
    else:
        backbone = MODELS.build(dict(type='ResNet', depth=18, num_stages=4,
                                     out_indices=(1, 2, 3), norm_eval=False))
        neck = MODELS.build(dict(type='FPN', in_channels=[128, 256, 512],
                                 out_channels=64, num_outs=3))
        body = nn.Sequential(backbone, neck)
        channels, strides = 64, [8, 16, 32]
    body.eval()
    extractor = MODELS.build(dict(
        type='SingleRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=channels, featmap_strides=strides[:3]))

    feats_all, labels_all, boxes_all, ids_all = [], [], [], []
    for split in splits:
        with open(osp.join(data_root, 'annotations', f'{split}.json')) as f:
            coco = json.load(f)
        cat2label = {c: i for i, c in enumerate(
            sorted(c['id'] for c in coco['categories']))}
        anns: Dict[int, list] = {}
        for a in coco['annotations']:
            if not a.get('iscrowd', 0):
                anns.setdefault(a['image_id'], []).append(a)
        images = [im for im in coco['images'] if im['id'] in anns]
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            imgs = [cv2.imread(osp.join(data_root, 'JPEGImages',
                                        im['file_name']))[..., ::-1]
                    for im in chunk]
            h = max(im.shape[0] for im in imgs)
            w = max(im.shape[1] for im in imgs)
            h, w = (h + 31) // 32 * 32, (w + 31) // 32 * 32
            batch = np.zeros((len(imgs), h, w, 3), dtype=np.float32)
            for j, im in enumerate(imgs):
                batch[j, :im.shape[0], :im.shape[1]] = (im - mean) / std
            boxes = []
            for im in chunk:
                b = np.array([a['bbox'] for a in anns[im['id']]], np.float32)
                boxes.append(np.c_[b[:, :2], b[:, :2] + b[:, 2:]])
                labels_all += [cat2label[a['category_id']]
                               for a in anns[im['id']]]
                ids_all += [str(im['id'])] * len(b)
            with torch.no_grad():
                x = body(torch.from_numpy(batch).permute(0, 3, 1, 2))
                rois = bbox2roi([torch.from_numpy(tile(b, window))
                                 for b in boxes])
                pooled = F.adaptive_avg_pool2d(
                    extractor(tuple(x[:3]), rois), grid).flatten(1)
            feats_all.append(pooled.numpy())
            boxes_all += boxes
    data = dict(embeddings=np.concatenate(feats_all).astype(np.float32),
                class_labels=np.asarray(labels_all, dtype=np.int64),
                boxes=np.concatenate(boxes_all).astype(np.float32),
                image_ids=np.asarray(ids_all))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    np.savez_compressed(out, **data)
    return data


def tile(boxes: np.ndarray, window: int) -> np.ndarray:
    """Square ``window``-pixel tiles centred on xyxy ``boxes`` (0: boxes)."""
    if window <= 0:
        return boxes
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    return np.c_[c - window / 2, c + window / 2].astype(np.float32)


# -------------------------------------------------------------------- probe
def make_projection(in_dims: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(in_dims, 256), nn.ReLU(),
                         nn.Linear(256, 128))


def setting_loss(setting: str, emb, cls, box, score, args, generator):
    if setting == 'class':
        return triplet_loss(emb, cls, mining='all', margin=args.margin)
    if setting == 'class_hard':
        return triplet_loss(emb, cls, mining='hard', margin=args.margin)
    if setting == 'matl':
        return matl_loss(emb, cls, box, box_weight=args.matl_lambda,
                         margin=args.margin)
    if setting == 'tg_matl':
        return tg_matl_loss(emb, cls, box, score,
                            box_weight=args.tg_lambda, margin=args.margin,
                            top_percent=args.top_percent,
                            random_percent=args.random_percent,
                            generator=generator)
    if setting == 'daal':
        return daal_loss(emb, cls, margin=args.daal_margin)
    raise ValueError(setting)


def train_projection(setting: str, x: np.ndarray, cls: np.ndarray,
                     box: np.ndarray, score: np.ndarray, args,
                     seed: int) -> nn.Module:
    """Train the projection head on one training fold."""
    proj = make_projection(x.shape[1], seed)
    opt = torch.optim.Adam(proj.parameters(), lr=args.lr)
    xt = torch.from_numpy(x).float()
    ct, bt = torch.from_numpy(cls), torch.from_numpy(box)
    st = torch.from_numpy(score).float()
    g = torch.Generator().manual_seed(seed)
    for _ in range(args.epochs):
        order = torch.randperm(len(xt), generator=g)
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            emb = F.normalize(proj(xt[idx]), dim=1)
            loss = setting_loss(setting, emb, ct[idx], bt[idx], st[idx], args,
                                g)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return proj.eval()


def run_probe(embeddings: np.ndarray, class_labels: np.ndarray,
              boxes: np.ndarray, args,
              settings: Sequence[str] = SETTINGS) -> Dict[str, Dict]:
    """Stratified K-fold probe; returns per-setting per-fold accuracy/R^2."""
    if len(np.unique(class_labels)) < 2:
        raise ValueError('the probe needs at least two classes')
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # tiny MLPs: threads only contend
    try:
        return _run_probe(embeddings, class_labels, boxes, args, settings)
    finally:
        torch.set_num_threads(threads)


def _run_probe(embeddings, class_labels, boxes, args, settings):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    skf = StratifiedKFold(n_splits=args.k_folds, shuffle=True,
                          random_state=args.seed)
    results = {s: dict(acc=[], r2=[]) for s in settings}
    for fold, (tr, te) in enumerate(skf.split(embeddings, class_labels)):
        labeler = BoxLabeler.fit(boxes[tr], class_labels[tr],
                                 n_clusters=args.n_clusters, seed=args.seed)
        box_tr = labeler.predict(boxes[tr])
        score_tr = labeler.relevance(boxes[tr])
        target_tr, target_te = labeler.features(boxes[tr]), \
            labeler.features(boxes[te])
        scaler = StandardScaler().fit(embeddings[tr])
        x_tr, x_te = scaler.transform(embeddings[tr]), \
            scaler.transform(embeddings[te])
        for s in settings:
            if s == 'none':
                z_tr, z_te = x_tr, x_te
            else:
                proj = train_projection(s, x_tr.astype(np.float32),
                                        class_labels[tr], box_tr, score_tr,
                                        args, seed=args.seed + fold)
                with torch.no_grad():
                    z_tr = F.normalize(proj(torch.from_numpy(
                        x_tr).float()), dim=1).numpy()
                    z_te = F.normalize(proj(torch.from_numpy(
                        x_te).float()), dim=1).numpy()
            clf = LogisticRegression(max_iter=2000).fit(z_tr,
                                                        class_labels[tr])
            reg = Ridge(alpha=1.0).fit(z_tr, target_tr)
            results[s]['acc'].append(
                accuracy_score(class_labels[te], clf.predict(z_te)))
            results[s]['r2'].append(r2_score(target_te, reg.predict(z_te)))
    return results


def format_results(results: Dict[str, Dict]) -> str:
    lines = [f'{"setting":<11} {"accuracy":>17} {"box-feature R2":>17}']
    for s, r in results.items():
        lines.append(f'{s:<11} {np.mean(r["acc"]):>8.3f} +- '
                     f'{np.std(r["acc"]):.3f} {np.mean(r["r2"]):>8.3f} +- '
                     f'{np.std(r["r2"]):.3f}')
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--npz', default=DEFAULT_NPZ)
    p.add_argument('--data-root', default='data/toy',
                   help='toy dataset used to generate --npz when missing')
    p.add_argument('--splits', nargs='+', default=['det_train', 'val'])
    p.add_argument('--config', help='detector config for the extraction')
    p.add_argument('--checkpoint', help='weights for --config')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of --config, key=value (data_root,'
                   ' num_classes and metainfo reach every copy)')
    p.add_argument('--regenerate', action='store_true')
    p.add_argument('--window', type=int, default=64,
                   help='tile size around each box for the extraction '
                   '(0: the box itself)')
    p.add_argument('--grid', type=int, default=3,
                   help='spatial pooling grid of the extracted features')
    p.add_argument('--settings', nargs='+', default=list(SETTINGS),
                   choices=SETTINGS)
    p.add_argument('--k-folds', type=int, default=5)
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--margin', type=float, default=0.1)
    p.add_argument('--matl-lambda', type=float, default=0.25)
    p.add_argument('--tg-lambda', type=float, default=0.5)
    p.add_argument('--top-percent', type=float, default=0.3)
    p.add_argument('--random-percent', type=float, default=0.1)
    p.add_argument('--daal-margin', type=float, default=0.5)
    p.add_argument('--n-clusters', type=int, default=3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads for the projection training')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.regenerate or not osp.exists(args.npz):
        if not osp.isdir(args.data_root):
            raise SystemExit(f'{args.npz} not found and no dataset at '
                             f'{args.data_root}: run tools/make_toy_dataset.py'
                             ' or pass --npz')
        t0 = time.time()
        extract_embeddings(args.data_root, args.splits, args.npz,
                           args.config, args.checkpoint, args.seed,
                           args.window, args.grid,
                           cfg_options=args.cfg_options)
        print(f'wrote {args.npz} in {time.time() - t0:.1f} s')
    data = np.load(args.npz)
    emb, cls, boxes = data['embeddings'], data['class_labels'], data['boxes']
    print(f'{len(emb)} boxes, {emb.shape[1]}-d embeddings, '
          f'{len(np.unique(cls))} classes; {args.k_folds}-fold stratified CV')
    t0 = time.time()
    results = run_probe(emb, cls, boxes, args, args.settings)
    print(format_results(results))
    print(f'({time.time() - t0:.1f} s)')
    return results


if __name__ == '__main__':
    main()
