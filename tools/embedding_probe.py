#!/usr/bin/env python
"""Frozen-embedding probe of MATL / TG-MATL (papers 000 and 001) and DAAL.

What it is: TG-MATL's evaluation protocol (paper 001, Sec. II-III, and the
authors' ``experiments/igarss_exp1.py`` / ``igarss_exp2.py``), in which the
encoder is *frozen*: a projection head is trained on fixed box embeddings
with one of the metric losses, then task heads are fitted on the projected
embeddings and scored. It is *not* MATL's protocol (paper 000 trains the
encoder, the triplet loss and the task heads end to end; in bombo that is
``MATLEmbeddingHead`` inside a detector) nor DAAL's (retrieval on
CUB-200 / Cars196 with a fine-tuned CNN); from DAAL it borrows the metrics
(Recall@K, NMI). For each setting

    none        no triplet loss (the frozen embeddings themselves, "WTL")
    class       class-label triplet loss, batch-all ("CLTL")
    class_hard  class-label triplet loss, batch-hard ("CLTL (Hard)")
    matl        MATL, (1 - lambda) L_class + lambda L_box
    tg_matl     TG-MATL (MI-guided selection + MATL; reference modes below)
    daal        DAAL (our formulation)

and each training fold, the tool fits the box labels (K-means + MI) on the
training part, trains the projection (MLP D -> 256 -> 128, L2-normalised,
Adam) on it, fits a classification probe (logistic regression) and a
box-feature regression probe (ridge regression of the 4 normalised box
features) on the projected training part, and scores the evaluation part:

    accuracy  of the classification probe
    R2        of the box-feature regression
    R@K       Recall@K: fraction of evaluation samples whose K nearest
              neighbours (Euclidean, among the other evaluation samples)
              contain one of the same class (DAAL's metric; K in --recall-k)
    NMI       normalised mutual information (scikit-learn) of a K-means
              clustering with as many clusters as classes vs the labels

reported as mean +- std over folds. Protocols (``--protocol``):

    kfold   stratified K-fold on the class (default, 5 folds); each fold is
            scored on its held-out part
    tgmatl  the TG-MATL reference's: a fixed test split (``--test-size``,
            0.7 as in the reference's ``train_test_split(test_size=0.7,
            stratify=class x box label)``), then stratified K-fold (8 folds,
            on the class, as ``igarss_exp1.py``) over the remaining 30 %;
            every fold trains on its training part and is scored on the
            same fixed test set. The fold's validation part is unused (the
            reference picks checkpoints on it); box labels and min-max are
            fitted on the training part (the reference fits the box labels
            on all samples before splitting).

Splits, projections, K-means and the TG-MATL draw are seeded by ``--seed``:
two runs with the same arguments and thread count print the same table.

Input: an ``.npz`` with ``embeddings`` (N, D), ``class_labels`` (N, ) and
``boxes`` (N, 4, xyxy pixels), optionally ``image_sizes`` (N, 2, H x W, for
``--tg-relevance xcycwh``). The default ``data/toy/probe_embeddings.npz``
is generated when missing: RoIAlign-pooled FPN features inside the ground-truth
boxes of the toy dataset, from a randomly initialised (seeded) ResNet-18 + FPN
or from a trained detector (``--config`` and ``--checkpoint``).

Runtime, 1,245 toy boxes, 1 torch thread on the 2-core CPU (measured): the
default (5 folds x 30 epochs x 6 settings) 238 s with a training job
alongside (344 s once on a busier machine); ``--quick`` (3 folds x 10
epochs) 6 s on a quiet machine, 19-50 s loaded; the extraction 4 s.

Usage::

    python tools/make_toy_dataset.py --out data/toy --seed 0
    python tools/embedding_probe.py --quick
    python tools/embedding_probe.py --protocol tgmatl --tg-relevance xcycwh \\
        --tg-selection next --tg-mask-negatives
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
from bombo.models.losses.tg_matl import (RELEVANCE_FEATURES,  # noqa: E402
                                         TGMATLRelevance, tg_matl_loss)
from bombo.models.losses.triplet import triplet_loss  # noqa: E402
from bombo.models.task_modules.box_labels import BoxLabeler  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

SETTINGS = ('none', 'class', 'class_hard', 'matl', 'tg_matl', 'daal')
PROTOCOLS = ('kfold', 'tgmatl')
DEFAULT_NPZ = 'data/toy/probe_embeddings.npz'
DEFAULT_FOLDS = dict(kfold=5, tgmatl=8)
QUICK = dict(k_folds=3, epochs=10)
FULL = dict(epochs=30)


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

    from mmengine.utils import ProgressBar
    feats_all, labels_all, boxes_all, ids_all = [], [], [], []
    sizes_all = []
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
        print(f'extracting {split}: {len(images)} images')
        bar = ProgressBar((len(images) + batch_size - 1) // batch_size)
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
            for im, arr in zip(chunk, imgs):
                b = np.array([a['bbox'] for a in anns[im['id']]], np.float32)
                boxes.append(np.c_[b[:, :2], b[:, :2] + b[:, 2:]])
                labels_all += [cat2label[a['category_id']]
                               for a in anns[im['id']]]
                ids_all += [str(im['id'])] * len(b)
                sizes_all += [arr.shape[:2]] * len(b)
            with torch.no_grad():
                x = body(torch.from_numpy(batch).permute(0, 3, 1, 2))
                rois = bbox2roi([torch.from_numpy(tile(b, window))
                                 for b in boxes])
                pooled = F.adaptive_avg_pool2d(
                    extractor(tuple(x[:3]), rois), grid).flatten(1)
            feats_all.append(pooled.numpy())
            boxes_all += boxes
            bar.update()
        print()
    data = dict(embeddings=np.concatenate(feats_all).astype(np.float32),
                class_labels=np.asarray(labels_all, dtype=np.int64),
                boxes=np.concatenate(boxes_all).astype(np.float32),
                image_ids=np.asarray(ids_all),
                image_sizes=np.asarray(sizes_all,
                                       dtype=np.int64).reshape(-1, 2))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    np.savez_compressed(out, **data)
    return data


def tile(boxes: np.ndarray, window: int) -> np.ndarray:
    """Square ``window``-pixel tiles centred on xyxy ``boxes`` (0: boxes)."""
    if window <= 0:
        return boxes
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    return np.c_[c - window / 2, c + window / 2].astype(np.float32)


# ------------------------------------------------------------------ metrics
def recall_at_k(embeddings: np.ndarray, labels: np.ndarray,
                ks: Sequence[int] = (1, 2, 4, 8)) -> Dict[int, float]:
    """k-NN Recall@K (the DAAL paper's retrieval metric).

    Every sample is a query; its neighbours are the *other* samples, ranked
    by Euclidean distance (ties by index). Recall@K is the fraction of
    queries with at least one same-class sample among their K nearest.

    Args:
        embeddings (ndarray): (N, D).
        labels (ndarray): (N, ).
        ks (Sequence[int]): the K values, each in [1, N - 1].

    Returns:
        dict[int, float]: K -> Recall@K.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError('embeddings must be (N, D) with N labels')
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1 or max(ks) > len(x) - 1:
        raise ValueError(f'every K must be in [1, {len(x) - 1}] for '
                         f'{len(x)} samples, got {ks}')
    if not np.isfinite(x).all():
        raise ValueError('non-finite embeddings')
    sq = (x * x).sum(1)
    d2 = sq[:, None] - 2 * x @ x.T + sq[None]
    np.fill_diagonal(d2, np.inf)   # a query is not its own neighbour
    order = np.argsort(d2, axis=1, kind='stable')[:, :max(ks)]
    hit = y[order] == y[:, None]
    return {k: float(hit[:, :k].any(1).mean()) for k in ks}


def nmi_score(embeddings: np.ndarray, labels: np.ndarray,
              seed: int = 0) -> float:
    """NMI (``sklearn.metrics.normalized_mutual_info_score``) of K-means
    clusters (as many as classes, ``n_init=10``, seeded) vs the labels."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score
    n_classes = len(np.unique(labels))
    if n_classes < 2 or len(embeddings) < n_classes:
        raise ValueError('NMI needs at least two classes and as many '
                         'samples as classes')
    clusters = KMeans(n_clusters=n_classes, n_init=10,
                      random_state=seed).fit_predict(
                          np.asarray(embeddings, dtype=np.float64))
    return float(normalized_mutual_info_score(labels, clusters))


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
                            random_mode=args.tg_selection,
                            mask_negatives=args.tg_mask_negatives,
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


def resolve_args(args):
    """Fill the flags left at None: --quick or the protocol's defaults."""
    preset = QUICK if args.quick else dict(
        FULL, k_folds=DEFAULT_FOLDS[args.protocol])
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.k_folds < 2:
        raise ValueError('--k-folds must be at least 2')
    if not 0 < args.test_size < 1:
        raise ValueError('--test-size must be in (0, 1)')
    return args


def make_splits(class_labels: np.ndarray, boxes: np.ndarray, args):
    """``[(train_idx, eval_idx), ...]`` of the chosen protocol."""
    from sklearn.model_selection import StratifiedKFold, train_test_split
    skf = StratifiedKFold(n_splits=args.k_folds, shuffle=True,
                          random_state=args.seed)
    idx = np.arange(len(class_labels))
    if args.protocol == 'kfold':
        return list(skf.split(idx, class_labels))
    # TG-MATL: fixed test split stratified on class x box label
    box = BoxLabeler.fit(boxes, n_clusters=args.n_clusters,
                         seed=args.seed).predict(boxes)
    strata = class_labels.astype(np.int64) * args.n_clusters + box
    try:
        rest, test = train_test_split(idx, test_size=args.test_size,
                                      stratify=strata,
                                      random_state=args.seed)
    except ValueError:   # a stratum too small for both sides
        print('note: class x box-label strata too small: the test split is '
              'stratified on the class only')
        rest, test = train_test_split(idx, test_size=args.test_size,
                                      stratify=class_labels,
                                      random_state=args.seed)
    return [(rest[tr], test)
            for tr, _ in skf.split(rest, class_labels[rest])]


def run_probe(embeddings: np.ndarray, class_labels: np.ndarray,
              boxes: np.ndarray, args,
              settings: Sequence[str] = SETTINGS,
              image_sizes: Optional[np.ndarray] = None) -> Dict[str, Dict]:
    """Run the probe; returns per-setting per-fold metrics (lists):
    ``acc``, ``r2``, ``nmi`` and ``recall@K`` for each K."""
    if len(np.unique(class_labels)) < 2:
        raise ValueError('the probe needs at least two classes')
    if not (len(embeddings) == len(class_labels) == len(boxes)):
        raise ValueError('embeddings, class_labels and boxes must have the '
                         'same length')
    args = resolve_args(args)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # tiny MLPs: threads only contend
    try:
        return _run_probe(embeddings, class_labels, boxes, args, settings,
                          image_sizes)
    finally:
        torch.set_num_threads(threads)


def _run_probe(embeddings, class_labels, boxes, args, settings, image_sizes):
    from mmengine.utils import ProgressBar
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.preprocessing import StandardScaler
    splits = make_splits(class_labels, boxes, args)
    keys = ['acc', 'r2', 'nmi'] + [f'recall@{k}' for k in args.recall_k]
    results = {s: {k: [] for k in keys} for s in settings}
    bar = ProgressBar(len(splits) * len(settings)) if args.progress \
        else None
    for fold, (tr, te) in enumerate(splits):
        labeler = BoxLabeler.fit(boxes[tr], class_labels[tr],
                                 n_clusters=args.n_clusters, seed=args.seed)
        box_tr = labeler.predict(boxes[tr])
        if args.tg_relevance == 'shape':   # paper; the values of v0.1
            score_tr = labeler.relevance(boxes[tr])
        else:                              # public code
            sizes = None if image_sizes is None else image_sizes[tr]
            score_tr = TGMATLRelevance.fit(
                boxes[tr], class_labels[tr], 'xcycwh', sizes,
                seed=args.seed).score(boxes[tr], sizes)
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
            r = results[s]
            r['acc'].append(
                accuracy_score(class_labels[te], clf.predict(z_te)))
            r['r2'].append(r2_score(target_te, reg.predict(z_te)))
            r['nmi'].append(nmi_score(z_te, class_labels[te], args.seed))
            for k, v in recall_at_k(z_te, class_labels[te],
                                    args.recall_k).items():
                r[f'recall@{k}'].append(v)
            if bar is not None:
                bar.update()
    if bar is not None:
        print()
    return results


def format_results(results: Dict[str, Dict]) -> str:
    """A table of mean +- std over folds."""
    keys = list(next(iter(results.values())))
    names = dict(acc='accuracy', r2='box-feature R2', nmi='NMI')
    head = [names.get(k, k.replace('recall@', 'R@')) for k in keys]
    lines = [f'{"setting":<11} ' + ' '.join(f'{h:>15}' for h in head)]
    for s, r in results.items():
        cells = [f'{np.mean(r[k]):.3f} +- {np.std(r[k]):.3f}' for k in keys]
        lines.append(f'{s:<11} ' + ' '.join(f'{c:>15}' for c in cells))
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0] + ' See docs/metric_learning.md.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--npz', default=DEFAULT_NPZ,
                   help='embeddings, class_labels, boxes (and image_sizes); '
                   'extracted from --data-root when missing')
    p.add_argument('--data-root', default='data/toy',
                   help='toy dataset used to generate --npz when missing')
    p.add_argument('--splits', nargs='+', default=['det_train', 'val'],
                   help='annotation splits (annotations/<split>.json) to '
                   'extract')
    p.add_argument('--config', help='detector config for the extraction '
                   '(default: a random seeded ResNet-18 + FPN)')
    p.add_argument('--checkpoint', help='weights for --config')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of --config, key=value (data_root,'
                   ' num_classes and metainfo reach every copy)')
    p.add_argument('--regenerate', action='store_true',
                   help='extract --npz again even when it exists')
    p.add_argument('--window', type=int, default=64,
                   help='tile size around each box for the extraction '
                   '(0: the box itself)')
    p.add_argument('--grid', type=int, default=3,
                   help='spatial pooling grid of the extracted features')
    p.add_argument('--settings', nargs='+', default=list(SETTINGS),
                   choices=SETTINGS, help='losses to compare')
    p.add_argument('--protocol', default='kfold', choices=PROTOCOLS,
                   help='kfold: stratified K-fold, scored on each held-out '
                   'fold; tgmatl: the TG-MATL reference\'s fixed test split '
                   '+ K folds on the rest, scored on the test split')
    p.add_argument('--test-size', type=float, default=0.7,
                   help='fixed test fraction of --protocol tgmatl (the '
                   'reference\'s 0.7)')
    p.add_argument('--quick', action='store_true',
                   help=f'short run: {QUICK["k_folds"]} folds x '
                   f'{QUICK["epochs"]} epochs (6-50 s on 2 CPU cores for '
                   'the toy set, against 4-6 min for the default); '
                   'explicit --k-folds / --epochs win')
    p.add_argument('--k-folds', type=int, default=None,
                   help='folds (default: 5 for kfold, 8 for tgmatl as the '
                   f'reference, {QUICK["k_folds"]} with --quick)')
    p.add_argument('--epochs', type=int, default=None,
                   help=f'projection epochs (default: {FULL["epochs"]}, '
                   f'{QUICK["epochs"]} with --quick)')
    p.add_argument('--batch-size', type=int, default=64,
                   help='projection batch size')
    p.add_argument('--lr', type=float, default=1e-3,
                   help='Adam learning rate of the projection')
    p.add_argument('--margin', type=float, default=0.1,
                   help='triplet margin (class, class_hard, matl, tg_matl)')
    p.add_argument('--matl-lambda', type=float, default=0.25,
                   help='MATL box weight lambda (paper 000)')
    p.add_argument('--tg-lambda', type=float, default=0.5,
                   help='TG-MATL box weight lambda (paper 001)')
    p.add_argument('--top-percent', type=float, default=0.3,
                   help='TG-MATL rho_top (Eq. 7)')
    p.add_argument('--random-percent', type=float, default=0.1,
                   help='TG-MATL rho_rand (Eq. 10)')
    p.add_argument('--tg-relevance', default='shape',
                   choices=RELEVANCE_FEATURES,
                   help='TG-MATL Eq. 5 features: shape = [w, h, area, '
                   'squareness] (paper), xcycwh = centre and size / image '
                   'size (public code; pixels when the npz has no '
                   'image_sizes)')
    p.add_argument('--tg-selection', default='random',
                   choices=('random', 'next'),
                   help='TG-MATL Eq. 11: random draw (paper) or the next '
                   'ranked samples (public code)')
    p.add_argument('--tg-mask-negatives', action='store_true',
                   help='TG-MATL: drop unselected samples as negatives too '
                   '(public code; paper: anchors and positives only)')
    p.add_argument('--daal-margin', type=float, default=0.5,
                   help='DAAL margin')
    p.add_argument('--n-clusters', type=int, default=3,
                   help='K-means box labels (MATL K)')
    p.add_argument('--recall-k', type=int, nargs='+', default=[1, 2, 4, 8],
                   help='K values of Recall@K (DAAL\'s)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of splits, projections, K-means and draws')
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads for the projection training')
    p.add_argument('--out', help='also write the per-fold results as JSON')
    p.add_argument('--no-progress', dest='progress', action='store_false',
                   help='hide the progress bar')
    return p.parse_args(argv)


def main(argv=None):
    args = resolve_args(parse_args(argv))
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
    sizes = data['image_sizes'] if 'image_sizes' in data.files else None
    if args.tg_relevance == 'xcycwh' and sizes is None:
        print('note: no image_sizes in the npz: xcycwh in pixels')
    proto = (f'{args.k_folds}-fold stratified CV' if args.protocol == 'kfold'
             else f'TG-MATL protocol: fixed {args.test_size:.0%} test split, '
             f'{args.k_folds} folds on the rest')
    print(f'{len(emb)} boxes, {emb.shape[1]}-d embeddings, '
          f'{len(np.unique(cls))} classes; {proto}; {args.epochs} epochs')
    t0 = time.time()
    results = run_probe(emb, cls, boxes, args, args.settings, sizes)
    print(format_results(results))
    print(f'({time.time() - t0:.1f} s)')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=1)
    return results


if __name__ == '__main__':
    main()
