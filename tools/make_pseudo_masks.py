"""Make the Box-for-Mask pseudo-mask cache (BoMBo Sec. 3.3), offline.

For every image of every training dataset that loads pseudo-masks, GrabCut
(one run per box) gives the coarse mask M^c, written as
``<cache>/<image file name without extension>.png`` (8-bit grey PNG of
semantic indices, 0 = background, 255 = ignored); optionally the box-shaped
mask M^b as well (``--box-out``). The training pipeline loads M^c with
``LoadPseudoMask``.

Given a config, the tool walks the whole ``train_dataloader.dataset`` tree
(``ConcatDataset.datasets``, ``RepeatDataset`` / ``ClassBalancedDataset``
``.dataset``, at any depth) and takes every leaf dataset whose pipeline has a
``LoadPseudoMask`` whose ``tasks`` (default ``('det',)``) hold the dataset's
``ann_task``: e.g. both VOC2007 and VOC2012 detection halves of
``configs/_base_/datasets/voc_partial_b4m.py``. The leaves are grouped by
their ``pseudo_mask_dir``, each group cached into its own folder. Boxes with
``ignore_flag=1`` (difficult VOC objects, COCO crowd regions) get no GrabCut:
their pixels are 255 (ignored by the losses) where no regular box covers
them. After the run every image of those datasets is checked for its cache
file (exit code 1 if any lacks one).

Usage::

    # the config you train (give it the --cfg-options of the training run)
    python tools/make_pseudo_masks.py configs/toy/toy_r18_fpn_b4m.py --workers 2
    python tools/make_pseudo_masks.py configs/bombo/bombo_r50_pafpn_voc.py \\
        --workers 8 --cfg-options data_root=/datasets/VOCdevkit/
    # a VOC-layout split file (data root = parent of ImageSets/)
    python tools/make_pseudo_masks.py data/toy/ImageSets/Main/det_train.txt \\
        --classes rectangle ellipse triangle --out data/toy/pseudo_masks --workers 2

Parallel (``--workers`` processes), resumable (each PNG is written to a
temporary file then renamed, so an interrupted run leaves no partial file;
images whose outputs exist are skipped), with a progress bar and a final
count per cache of images, boxes, ignored boxes, fallbacks and skips with
reasons (also in ``<cache>/summary.json``). Unreadable images are counted
and named; no PNG is written for them (a later run retries).
"""
import argparse
import copy
import inspect
import json
import multiprocessing as mp
import os
import os.path as osp
import sys
import time
from collections import Counter, OrderedDict
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from bombo.datasets.pseudo_masks import (box_shaped_mask, coarse_mask,
                                         pseudo_mask_key)

DEFAULT_GRABCUT = dict(iterations=5, margin=0.1, max_side=160, min_size=4)


# ----------------------------------------------------------------------------
# inputs
def _dataset_entries(dataset) -> List[dict]:
    """Entries ``img_path, key, boxes (N, 4), labels (N,), ignore_boxes
    (K, 4)`` of a built dataset: labels are semantic indices (detection
    label + 1); instances with ``ignore_flag=1`` (difficult VOC, crowd
    COCO) go to ``ignore_boxes`` (255 in the cache, no GrabCut)."""
    entries = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        inst = info.get('instances', [])
        ign = np.array([bool(x.get('ignore_flag', 0)) for x in inst], bool)
        boxes = np.array([x['bbox'] for x in inst],
                         dtype=np.float64).reshape(-1, 4)
        labels = np.array([x['bbox_label'] + 1 for x in inst],
                          dtype=np.int64).reshape(-1)
        entries.append(dict(img_path=info['img_path'],
                            key=pseudo_mask_key(info['img_path']),
                            boxes=boxes[~ign], labels=labels[~ign],
                            ignore_boxes=boxes[ign]))
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


def iter_leaf_datasets(ds_cfg: dict, path: str = 'train_dataloader.dataset'
                       ) -> Iterator[Tuple[str, dict]]:
    """``(path, cfg)`` of every leaf of a dataset tree: the children of
    wrappers holding ``datasets`` (``ConcatDataset``) or ``dataset``
    (``RepeatDataset``, ``ClassBalancedDataset``, ...), at any depth."""
    if isinstance(ds_cfg.get('datasets'), (list, tuple)):
        for i, child in enumerate(ds_cfg['datasets']):
            yield from iter_leaf_datasets(child, f'{path}.datasets[{i}]')
    elif isinstance(ds_cfg.get('dataset'), dict):
        yield from iter_leaf_datasets(ds_cfg['dataset'], f'{path}.dataset')
    else:
        yield path, ds_cfg


def _type_name(t) -> str:
    t = t.get('type', '') if isinstance(t, dict) else ''
    return getattr(t, '__name__', str(t)).split('.')[-1]


def load_pseudo_mask_cfg(ds_cfg: dict) -> Optional[dict]:
    """The first ``LoadPseudoMask`` of a dataset's pipeline, or None."""
    for t in ds_cfg.get('pipeline') or []:
        if _type_name(t) == 'LoadPseudoMask':
            return t
    return None


def _ann_task(ds_cfg: dict) -> Optional[str]:
    """The dataset's ``ann_task``: its config's, else its class default."""
    if 'ann_task' in ds_cfg:
        return ds_cfg['ann_task']
    from mmdet.registry import DATASETS
    cls = ds_cfg.get('type')
    cls = DATASETS.get(cls) if isinstance(cls, str) else cls
    param = inspect.signature(cls.__init__).parameters.get('ann_task') \
        if cls is not None else None
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def cached_leaves(cfg) -> Tuple['OrderedDict[str, List[dict]]', List[str]]:
    """The training datasets whose images need a cache entry, grouped by
    cache directory.

    A leaf of ``train_dataloader.dataset`` counts if its pipeline has a
    ``LoadPseudoMask`` (not ``online``) whose ``tasks`` (default
    ``('det',)``) hold the dataset's ``ann_task``.

    Returns:
        tuple: ``({pseudo_mask_dir: [dict(path, cfg), ...]}, notes)`` with
        ``notes`` a line per leaf left out and why.
    """
    groups, notes = OrderedDict(), []
    for path, ds_cfg in iter_leaf_datasets(cfg.train_dataloader.dataset):
        t = load_pseudo_mask_cfg(ds_cfg)
        if t is None:
            continue
        task = _ann_task(ds_cfg)
        tasks = tuple(t.get('tasks', ('det', )))
        if task is not None and task not in tasks:
            notes.append(f'{path}: ann_task {task!r} not in the tasks '
                         f'{tasks} of its LoadPseudoMask')
            continue
        if t.get('online', False):
            notes.append(f'{path}: LoadPseudoMask(online=True) needs no '
                         'cache')
            continue
        if t.get('suffix', '.png') != '.png':
            raise SystemExit(f'error: {path}: LoadPseudoMask(suffix='
                             f'{t["suffix"]!r}): this tool writes .png')
        groups.setdefault(t['pseudo_mask_dir'], []).append(
            dict(path=path, cfg=ds_cfg))
    return groups, notes


def no_b4m_message(source: str) -> str:
    return (
        f'error: {source} has no Box-for-Mask pipeline: no training dataset '
        'of its train_dataloader has LoadPseudoMask in its pipeline (for its '
        'ann_task), so there is nothing to cache. Give the B4M config you '
        'train (e.g. configs/toy/toy_r18_fpn_b4m.py), or a split file and '
        'an output folder:\n'
        '  python tools/make_pseudo_masks.py '
        'data/VOCdevkit/VOC2007/ImageSets/Partial/det_train.txt '
        '--out data/VOCdevkit/pseudo_masks [--classes ...]')


def build_leaf(ds_cfg: dict):
    """Build one leaf dataset without its pipeline."""
    from mmdet.registry import DATASETS
    ds_cfg = copy.deepcopy(ds_cfg)
    ds_cfg['pipeline'] = []
    ds_cfg['serialize_data'] = False
    return DATASETS.build(ds_cfg)


def groups_from_config(path: str, cfg_options: Optional[dict] = None):
    """``[dict(out, leaves=[dict(path, ann_file, type, entries, skips)])]``
    for every cache directory of the config (see :func:`cached_leaves`)."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import bombo  # noqa: F401  (registers bombo's datasets)
    from bombo.utils.config import load_config
    cfg = load_config(path, cfg_options)
    groups, notes = cached_leaves(cfg)
    if not groups:
        raise SystemExit(no_b4m_message(path))
    for note in notes:
        print(f'not cached: {note}')
    out = []
    for cache_dir, leaves in groups.items():
        built = []
        for leaf in leaves:
            ds = build_leaf(leaf['cfg'])
            built.append(dict(path=leaf['path'], type=_type_name(leaf['cfg']),
                              ann_file=getattr(ds, 'ann_file', ''),
                              entries=_dataset_entries(ds),
                              skips=dataset_skips(ds)))
        out.append(dict(out=cache_dir, leaves=built))
    return out


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
               boxes=len(entry['boxes']),
               ignored=len(entry.get('ignore_boxes', ())))
    if img is None:
        res['unreadable'] = True
        return res
    ignore_boxes = entry.get('ignore_boxes')
    box_mask = box_shaped_mask(entry['boxes'], entry['labels'],
                               img.shape[:2], ignore_boxes)
    mask, stats = coarse_mask(img, entry['boxes'], entry['labels'],
                              box_mask=box_mask, ignore_boxes=ignore_boxes,
                              **grabcut)
    if box_out:
        atomic_write_png(osp.join(box_out, entry['key'] + '.png'), box_mask)
    atomic_write_png(osp.join(out, entry['key'] + '.png'), mask)
    res.update(grabcut=stats['grabcut'], fallback=dict(stats['fallback']),
               skipped=dict(stats['skipped']))
    return res


def _worker(args):
    return process_one(*args)


def _progress(total: int):
    """mmengine's progress bar, with ``update(n)`` and ``close()``."""
    from mmengine.utils import ProgressBar

    class _Bar(ProgressBar):

        def update(self, n=1):
            for _ in range(n):
                super().update()

        def close(self):
            sys.stdout.write('\n')

    return _Bar(total)


def unique_entries(entries: List[dict]) -> List[dict]:
    """``entries`` with repeats of one image path dropped (the same image in
    two datasets of one cache: one entry). Raises ``ValueError`` if two
    different images share a cache key (file name without extension), which
    would make them overwrite each other's cache file."""
    by_key: Dict[str, dict] = {}
    unique, clashes = [], []
    for e in entries:
        first = by_key.setdefault(e['key'], e)
        if first is e:
            unique.append(e)
        elif osp.abspath(first['img_path']) != osp.abspath(e['img_path']):
            clashes.append(f"{e['key']}: {first['img_path']} and "
                           f"{e['img_path']}")
    if clashes:
        raise ValueError(
            f'{len(clashes)} cache keys (image file name without extension) '
            'are shared by different images in one cache directory, so their '
            'cache files would collide; give these datasets different '
            'pseudo_mask_dir: ' + '; '.join(clashes[:5]))
    return unique


def cache_done(entry: dict, out: str, box_out: Optional[str] = None) -> bool:
    """Whether the cache file(s) of ``entry`` exist."""
    return osp.exists(osp.join(out, entry['key'] + '.png')) and (
        not box_out or osp.exists(osp.join(box_out, entry['key'] + '.png')))


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
    entries = unique_entries(entries)
    todo = [e for e in entries if not cache_done(e, out, box_out)]
    summary = dict(images=len(entries), already_done=len(entries) - len(todo),
                   written=0, unreadable=[], boxes=0, ignored_boxes=0,
                   grabcut_boxes=0, fallback=Counter(),
                   skipped_boxes=Counter())
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
            summary['ignored_boxes'] += r['ignored']
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


def merge_summaries(summaries: List[Dict]) -> Dict:
    """Sum the counts of several caches' summaries (lists concatenated,
    dicts of counts added); ``caches`` holds the summaries themselves."""
    total: Dict = {}
    for s in summaries:
        for k, v in s.items():
            if isinstance(v, bool) or k in ('grabcut_options', 'out'):
                continue
            if isinstance(v, (int, float)):
                total[k] = total.get(k, 0) + v
            elif isinstance(v, list):
                total[k] = total.get(k, []) + v
            elif isinstance(v, dict):
                acc = Counter(total.get(k, {}))
                acc.update(v)
                total[k] = dict(acc)
    total['complete'] = all(s['complete'] for s in summaries)
    total['caches'] = summaries
    return total


def _counts(d: Dict) -> str:
    return ', '.join(f'{k}: {v}' for k, v in sorted(d.items())) or 'none'


def format_summary(s: Dict) -> str:
    lines = [
        f"images: {s['images']} ({s['already_done']} already done, "
        f"{s['written']} written, {len(s['unreadable'])} unreadable)",
        f"boxes (in processed images): {s['boxes']} ({s['grabcut_boxes']} "
        'by GrabCut)',
        f"ignored boxes (difficult / crowd, 255 in the cache): "
        f"{s.get('ignored_boxes', 0)}",
        'boxes filled instead of GrabCut: ' + _counts(s['fallback']),
        'boxes skipped: ' + _counts(s['skipped_boxes']),
    ]
    if s.get('dataset_skipped'):
        lines.append('skipped by the dataset (not in the entries): ' +
                     _counts(s['dataset_skipped']))
    for p in s['unreadable']:
        lines.append(f'unreadable image (skipped, no PNG written): {p}')
    return '\n'.join(lines)


def format_check(s: Dict) -> str:
    """The after-run check of one cache: does every image have its file?"""
    n = s['images']
    where = f"{len(s.get('datasets', ()))} dataset(s)"
    if not s['missing_cache']:
        return (f"check: all {n} images of {where} have their cache file "
                f"in {s['out']}")
    lines = [f"check: {len(s['missing_cache'])} of {n} images of {where} "
             f"have NO cache file in {s['out']} (training stops on them "
             "unless LoadImageOrSkip(on_error='skip') skips the unreadable "
             'ones); fix them and run the tool again:']
    lines += [f'  {p}' for p in s['missing_cache'][:10]]
    if len(s['missing_cache']) > 10:
        lines.append(f"  ... and {len(s['missing_cache']) - 10} more")
    return '\n'.join(lines)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults after every flag, the description as written."""


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=_HelpFormatter)
    p.add_argument('source', help='the config you train (every training '
                   'dataset whose pipeline has LoadPseudoMask is cached into '
                   'its pseudo_mask_dir) or a VOC-layout split file '
                   '(ImageSets/.../<split>.txt; needs --out)')
    p.add_argument('--out', help='cache folder. With a config: replaces its '
                   'pseudo_mask_dir (only if all its cached datasets share '
                   'one); required with a split file')
    p.add_argument('--box-out', help='also write the box-shaped masks M^b '
                   'here (one cache folder only)')
    p.add_argument('--workers', type=int, default=1,
                   help='worker processes (1: in this process)')
    p.add_argument('--iterations', type=int,
                   default=DEFAULT_GRABCUT['iterations'],
                   help='GrabCut iterations per box')
    p.add_argument('--margin', type=float, default=DEFAULT_GRABCUT['margin'],
                   help='crop margin, fraction of the box size per side; '
                   'negative: whole image')
    p.add_argument('--max-side', type=int,
                   default=DEFAULT_GRABCUT['max_side'],
                   help='downscale crops with a longer side (0: never)')
    p.add_argument('--min-size', type=int,
                   default=DEFAULT_GRABCUT['min_size'],
                   help='boxes narrower or lower than this (pixels) are '
                   'filled, not GrabCut')
    p.add_argument('--classes', nargs='+',
                   help='class names of a split file (None: the VOC '
                   'classes); a config\'s datasets give their own')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value, as for '
                   'tools/train.py (give the same ones as the training run: '
                   'data_root, num_classes and metainfo reach every dataset '
                   'and pseudo_mask_dir that used the base value)')
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bar')
    return p.parse_args(argv)


def _groups(args) -> List[Dict]:
    """The caches to make: ``[dict(out, leaves)]``."""
    if args.source.endswith('.py'):
        groups = groups_from_config(args.source, args.cfg_options)
        if args.out and len(groups) > 1:
            raise SystemExit(
                f'error: --out {args.out}: {args.source} caches into '
                f'{len(groups)} folders ({", ".join(g["out"] for g in groups)}'
                '); --out can replace one only. Leave it out, or change '
                'pseudo_mask_dir with --cfg-options (and train with the '
                'same)')
        if args.out:
            groups[0]['out'] = args.out
    else:
        if not args.out:
            raise SystemExit('error: --out is required with a split file')
        if args.cfg_options:
            raise SystemExit('error: --cfg-options needs a config')
        entries, skips = entries_from_split(args.source, args.classes)
        groups = [dict(out=args.out, leaves=[dict(
            path=args.source, type='PartialVOCDataset',
            ann_file=osp.abspath(args.source), entries=entries,
            skips=skips)])]
    if args.box_out and len(groups) > 1:
        raise SystemExit('error: --box-out needs a single cache folder; '
                         f'this config has {len(groups)}')
    return groups


def run_group(group: Dict, box_out: Optional[str], workers: int,
              grabcut: dict, progress: bool) -> Dict:
    """Make one cache folder, check it, write its ``summary.json``."""
    out, leaves = group['out'], group['leaves']
    print(f'cache {out}: {len(leaves)} dataset(s)')
    for leaf in leaves:
        print(f"  {leaf['path']}: {leaf['type']} {leaf['ann_file']}: "
              f"{len(leaf['entries'])} images")
    entries = [e for leaf in leaves for e in leaf['entries']]
    s = make_pseudo_masks(entries, out, box_out, workers, grabcut,
                          progress=progress)
    skips = Counter()
    for leaf in leaves:
        skips.update(leaf['skips'])
    s.update(out=out, dataset_skipped=dict(skips), grabcut_options=grabcut,
             datasets=[dict(path=leaf['path'], type=leaf['type'],
                            ann_file=leaf['ann_file'],
                            images=len(leaf['entries'])) for leaf in leaves],
             missing_cache=[e['img_path'] for e in entries
                            if not cache_done(e, out, box_out)])
    s['complete'] = not s['missing_cache']
    print(format_summary(s))
    print(format_check(s))
    with open(osp.join(out, 'summary.json.tmp'), 'w') as f:
        json.dump(s, f, indent=1)
    os.replace(osp.join(out, 'summary.json.tmp'),
               osp.join(out, 'summary.json'))
    return s


def main(argv=None) -> Dict:
    """Run the tool; return the summary (``complete``: every image has its
    cache file)."""
    args = parse_args(argv)
    grabcut = dict(iterations=args.iterations,
                   margin=None if args.margin < 0 else args.margin,
                   max_side=args.max_side or None, min_size=args.min_size)
    groups = _groups(args)
    t0 = time.time()
    summaries = [run_group(g, args.box_out, args.workers, grabcut,
                           not args.no_progress) for g in groups]
    total = merge_summaries(summaries)
    caches = ', '.join(s['out'] for s in summaries)
    print(f"done in {time.time() - t0:.1f} s: {total['images']} images in "
          f"{len(summaries)} cache folder(s) ({caches}); "
          + ('complete' if total['complete'] else
             f"{len(total['missing_cache'])} images without a cache file"))
    return total


if __name__ == '__main__':
    try:
        sys.exit(0 if main()['complete'] else 1)
    except (FileNotFoundError, ValueError) as e:  # bad data or config
        sys.exit(f'error: {e}')
