"""Make the Box-for-Mask pseudo-mask cache (BoMBo Sec. 3.3), offline.

For every detection-annotated training image, GrabCut (one run per box) gives
the coarse mask M^c, written as ``<out>/<image name>.png`` (8-bit grey PNG of
semantic indices, 0 = background); optionally the box-shaped mask M^b as well
(``--box-out``). The training pipeline loads M^c with ``LoadPseudoMask``.

Usage::

    # a VOC-layout split file (data root = parent of ImageSets/)
    python tools/make_pseudo_masks.py data/toy/ImageSets/Main/det_train.txt \
        --classes rectangle ellipse triangle --out data/toy/pseudo_masks --workers 2
    # an mmengine config: its detection-annotated training dataset
    python tools/make_pseudo_masks.py configs/toy/b4m.py --workers 2

Parallel (``--workers`` processes), resumable (each PNG is written to a
temporary file then renamed, so an interrupted run leaves no partial file;
images whose outputs exist are skipped), with a progress bar and a final
count of images, boxes, fallbacks and skips with reasons. Unreadable images
are counted and named; no PNG is written for them (a later run retries).
"""
import argparse
import json
import multiprocessing as mp
import os
import os.path as osp
import sys
import time
from collections import Counter
from typing import Dict, List, Optional

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from bombo.datasets.pseudo_masks import (box_shaped_mask, coarse_mask,
                                         pseudo_mask_key)

DEFAULT_GRABCUT = dict(iterations=5, margin=0.1, max_side=160, min_size=4)


# ----------------------------------------------------------------------------
# inputs
def _dataset_entries(dataset) -> List[dict]:
    """Entries ``img_path, key, boxes (N, 4), labels (N,)`` (semantic
    indices = detection label + 1) of a built dataset."""
    entries = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        inst = info.get('instances', [])
        boxes = np.array([x['bbox'] for x in inst],
                         dtype=np.float64).reshape(-1, 4)
        labels = np.array([x['bbox_label'] + 1 for x in inst], dtype=np.int64)
        entries.append(dict(img_path=info['img_path'],
                            key=pseudo_mask_key(info['img_path']),
                            boxes=boxes, labels=labels))
    return entries


def dataset_skips(dataset) -> Dict[str, int]:
    """What the dataset itself skipped (missing files, boxes outside the
    image), if it counts it (bombo's datasets do)."""
    counter = getattr(dataset, 'skipped', None)
    return dict(getattr(counter, 'counts', {}))


def entries_from_split(split: str,
                       classes: Optional[List[str]] = None,
                       img_suffix: str = '.jpg') -> List[dict]:
    """Entries of a VOC-layout split file: data root is the parent of the
    ``ImageSets`` folder; images in ``JPEGImages``, boxes from
    ``Annotations/<id>.xml`` (read by ``PartialVOCDataset``)."""
    from bombo.datasets.partial_voc import PartialVOCDataset
    split = osp.abspath(split)
    parts = split.split(os.sep)
    if 'ImageSets' not in parts:
        raise ValueError(f'{split} is not inside an ImageSets folder (VOC '
                         'layout); give a config instead')
    root = os.sep.join(parts[:len(parts) - 1 - parts[::-1].index('ImageSets')])
    metainfo = dict(classes=tuple(classes)) if classes else None
    ds = PartialVOCDataset(ann_file=split, data_root=root, ann_task='det',
                           metainfo=metainfo, img_suffix=img_suffix,
                           on_missing='skip', pipeline=[], test_mode=True,
                           serialize_data=False)
    return _dataset_entries(ds), dataset_skips(ds)


def det_dataset_cfg(cfg, index: int = 0):
    """The detection-annotated training dataset of a config:
    ``train_dataloader.dataset``, or its ``datasets[index]`` when it is a
    ``ConcatDataset``."""
    ds_cfg = cfg.train_dataloader.dataset
    while ds_cfg.get('type') in ('ConcatDataset', 'RepeatDataset',
                                 'ClassBalancedDataset'):
        ds_cfg = ds_cfg['datasets'][index] if 'datasets' in ds_cfg \
            else ds_cfg['dataset']
    return ds_cfg


def pseudo_mask_dir_from_cfg(cfg) -> Optional[str]:
    """``pseudo_mask_dir`` of the first ``LoadPseudoMask`` in the config's
    detection training pipeline, if any."""
    for t in det_dataset_cfg(cfg).get('pipeline', []):
        if t.get('type') == 'LoadPseudoMask':
            return t.get('pseudo_mask_dir')
    return None


def entries_from_config(path: str, index: int = 0):
    from mmengine.config import Config
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    try:
        import bombo  # noqa: F401  (registers bombo's datasets)
    except ImportError:
        import bombo.datasets.partial_voc  # noqa: F401
        import bombo.datasets.partial_coco  # noqa: F401
    cfg = Config.fromfile(path)
    ds_cfg = det_dataset_cfg(cfg, index).copy()
    ds_cfg['pipeline'] = []
    ds_cfg['serialize_data'] = False
    ds = DATASETS.build(ds_cfg)
    return _dataset_entries(ds), dataset_skips(ds), cfg


# ----------------------------------------------------------------------------
# work
def atomic_write_png(path: str, mask: np.ndarray) -> None:
    ok, buf = cv2.imencode('.png', mask)
    if not ok:
        raise IOError(f'cannot encode {path}')
    tmp = f'{path}.tmp.{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(buf.tobytes())
    os.replace(tmp, path)


def process_one(entry: dict, out: str, box_out: Optional[str],
                grabcut: dict) -> dict:
    """Make and write M^c (and M^b) of one image; return its stats."""
    img = cv2.imread(entry['img_path'], cv2.IMREAD_COLOR)
    res = dict(key=entry['key'], img_path=entry['img_path'],
               boxes=len(entry['boxes']))
    if img is None:
        res['unreadable'] = True
        return res
    box_mask = box_shaped_mask(entry['boxes'], entry['labels'],
                               img.shape[:2])
    mask, stats = coarse_mask(img, entry['boxes'], entry['labels'],
                              box_mask=box_mask, **grabcut)
    if box_out:
        atomic_write_png(osp.join(box_out, entry['key'] + '.png'), box_mask)
    atomic_write_png(osp.join(out, entry['key'] + '.png'), mask)
    res.update(grabcut=stats['grabcut'], fallback=dict(stats['fallback']),
               skipped=dict(stats['skipped']))
    return res


def _worker(args):
    return process_one(*args)


def _progress(total: int):
    try:
        from tqdm import tqdm
        return tqdm(total=total, unit='img', dynamic_ncols=True)
    except ImportError:  # mmengine's bar as fallback
        from mmengine.utils import ProgressBar

        class _Bar(ProgressBar):

            def update(self, n=1):
                for _ in range(n):
                    super().update()

            def close(self):
                sys.stdout.write('\n')

        return _Bar(total)


def make_pseudo_masks(entries: List[dict],
                      out: str,
                      box_out: Optional[str] = None,
                      workers: int = 1,
                      grabcut: Optional[dict] = None,
                      progress: bool = True) -> Dict:
    """Write the cache for ``entries``; return the summary dict.

    Images whose outputs all exist are skipped (resume). ``workers <= 1``
    runs in this process.
    """
    grabcut = {**DEFAULT_GRABCUT, **(grabcut or {})}
    os.makedirs(out, exist_ok=True)
    if box_out:
        os.makedirs(box_out, exist_ok=True)
    keys = Counter(e['key'] for e in entries)
    dupes = [k for k, n in keys.items() if n > 1]
    if dupes:
        raise ValueError(f'{len(dupes)} image names are not unique, so their '
                         f'cache entries would collide: {dupes[:5]}')

    def done(e):
        return osp.exists(osp.join(out, e['key'] + '.png')) and (
            not box_out or osp.exists(osp.join(box_out, e['key'] + '.png')))

    todo = [e for e in entries if not done(e)]
    summary = dict(images=len(entries), already_done=len(entries) - len(todo),
                   written=0, unreadable=[], boxes=0, grabcut_boxes=0,
                   fallback=Counter(), skipped_boxes=Counter())
    args = [(e, out, box_out, grabcut) for e in todo]
    bar = _progress(len(todo)) if progress and todo else None
    if workers <= 1:
        results = map(_worker, args)
        pool = None
    else:
        # fork: workers start at once, without re-importing torch/mmdet.
        # Do not call cv2.setNumThreads in a forked worker: if the parent
        # has used OpenCV's thread pool, that call waits forever for the
        # parent's pool threads (measured: 3 hangs in 6 runs).
        pool = mp.get_context('spawn' if sys.platform == 'win32' else 'fork'
                              ).Pool(workers)
        results = pool.imap_unordered(_worker, args, chunksize=1)
    try:
        for r in results:
            summary['boxes'] += r['boxes']
            if r.get('unreadable'):
                summary['unreadable'].append(r['img_path'])
            else:
                summary['written'] += 1
                summary['grabcut_boxes'] += r['grabcut']
                summary['fallback'].update(r['fallback'])
                summary['skipped_boxes'].update(r['skipped'])
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    summary['fallback'] = dict(summary['fallback'])
    summary['skipped_boxes'] = dict(summary['skipped_boxes'])
    return summary


def format_summary(s: Dict) -> str:
    lines = [
        f"images: {s['images']} ({s['already_done']} already done, "
        f"{s['written']} written, {len(s['unreadable'])} unreadable)",
        f"boxes (in processed images): {s['boxes']} ({s['grabcut_boxes']} "
        'by GrabCut)',
        'boxes filled instead of GrabCut: ' +
        (', '.join(f'{k}: {v}' for k, v in sorted(s['fallback'].items()))
         or 'none'),
        'boxes skipped: ' +
        (', '.join(f'{k}: {v}' for k, v in sorted(s['skipped_boxes'].items()))
         or 'none'),
    ]
    if s.get('dataset_skipped'):
        lines.append('skipped by the dataset (not in the entries): ' +
                     ', '.join(f'{k}: {v}' for k, v in sorted(
                         s['dataset_skipped'].items())))
    for p in s['unreadable']:
        lines.append(f'unreadable image (skipped, no PNG written): {p}')
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('source', help='split file (VOC layout) or config')
    p.add_argument('--out', help='output folder (default for a config: the '
                   'pseudo_mask_dir of its LoadPseudoMask)')
    p.add_argument('--box-out', help='also write M^b here')
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--iterations', type=int,
                   default=DEFAULT_GRABCUT['iterations'])
    p.add_argument('--margin', type=float, default=DEFAULT_GRABCUT['margin'],
                   help='crop margin, fraction of the box size per side; '
                   'negative: whole image')
    p.add_argument('--max-side', type=int,
                   default=DEFAULT_GRABCUT['max_side'],
                   help='downscale crops with a longer side (0: never)')
    p.add_argument('--min-size', type=int,
                   default=DEFAULT_GRABCUT['min_size'],
                   help='smaller boxes are filled, not GrabCut')
    p.add_argument('--classes', nargs='+',
                   help='class names of a split (default: VOC classes)')
    p.add_argument('--dataset-index', type=int, default=0,
                   help='which dataset of a ConcatDataset is the detection '
                   'one')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = args.out
    if args.source.endswith('.py'):
        entries, ds_skips, cfg = entries_from_config(args.source,
                                                     args.dataset_index)
        out = out or pseudo_mask_dir_from_cfg(cfg)
    else:
        entries, ds_skips = entries_from_split(args.source, args.classes)
    if not out:
        raise SystemExit('--out is required (no LoadPseudoMask in config)')
    grabcut = dict(iterations=args.iterations,
                   margin=None if args.margin < 0 else args.margin,
                   max_side=args.max_side or None, min_size=args.min_size)
    t0 = time.time()
    summary = make_pseudo_masks(entries, out, args.box_out, args.workers,
                                grabcut, progress=not args.no_progress)
    summary['dataset_skipped'] = ds_skips
    print(format_summary(summary))
    print(f'done in {time.time() - t0:.1f} s; cache: {out}')
    summary['grabcut_options'] = grabcut
    with open(osp.join(out, 'summary.json.tmp'), 'w') as f:
        json.dump(summary, f, indent=1)
    os.replace(osp.join(out, 'summary.json.tmp'), osp.join(out,
                                                           'summary.json'))
    return summary


if __name__ == '__main__':
    main()
