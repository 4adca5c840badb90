#!/usr/bin/env python
"""Write the detection / segmentation halves of the multi-task partially
supervised setting (BoMBo, BMVC 2023, Sec. 4.1).

Two sub-commands, each either *drawing* a split from a seed or *reading* the
paper's public lists (``--from-lists``) and writing them under our names:

``voc``
    Pool = VOC2007 trainval ∪ VOC2012 trainval (``ImageSets/Main/trainval.txt``
    of each year) minus the VOC2012 segmentation val images
    (``VOC2012/ImageSets/Segmentation/val.txt``, the evaluation set). The
    segmentation half takes ``round(|pool| * seg_fraction)`` images drawn from
    the pool images that have a mask (VOC2007: ``SegmentationClass``; VOC2012:
    ``SegmentationClassAug``, written by ``tools/convert_sbd.py``); the
    detection half is the rest of the pool. Writes per year
    ``VOC<year>/ImageSets/Partial/{det_train,seg_train}.txt`` and
    ``VOC2012/ImageSets/Partial/val.txt`` (read by
    ``configs/_base_/datasets/voc_partial.py``). The paper's halves hold 7,558
    and 7,656 images; its validation set 1,443 (the authors' list: 1,442; the
    official VOC2012 segmentation val: 1,449).

``coco``
    Pool = the ``instances_train2017.json`` images with at least one
    non-crowd annotation, shuffled with the seed; detection subset = the first
    ``round(N * f)``, segmentation subset = the next ones up to
    ``round(2 * N * f)`` (paper: 14,655 / 14,656 with f = 1/8). Writes
    ``annotations/partial/{det_train,seg_train}.json``: COCO json subsets
    holding all categories.

Design choices (documented because the paper does not fix them):

* The draw uses only ``random.Random(seed).random()``, whose sequence Python
  guarantees across versions (``shuffle``/``sample`` are not guaranteed), so a
  seed gives the same split on every Python. Pools are sorted before the draw,
  so the order of lines in the input files does not matter.
* Counts are rounded half up (``floor(x + 0.5)``), not Python's half-to-even.
* COCO subset boundaries are ``round(N f)`` and ``round(2 N f)``: the two
  subsets differ by at most one image (as the paper's 14,655 / 14,656).
* Every listed image must exist (and its XML for detection, its mask for
  segmentation). Missing files are listed and the tool exits with code 1
  writing nothing; with ``--allow-missing`` they are dropped and counted.

Usage::

    python tools/make_splits.py voc --voc-root data/VOCdevkit --seed 0
    python tools/make_splits.py voc --voc-root data/VOCdevkit \\
        --from-lists path/to/multas/VOCdevkit      # the paper's lists
    python tools/make_splits.py coco --coco-root data/coco --seed 0
"""
import argparse
import json
import math
import os
import os.path as osp
import random
import sys
import tempfile
from collections import OrderedDict
from typing import (Callable, Dict, Iterable, List, Optional, Sequence, Set,
                    Tuple)

VOC_YEARS = ('2007', '2012')
#: where the semantic masks of each year live (VOC2012: SBD + VOC, converted)
VOC_MASK_DIRS = {'2007': 'SegmentationClass', '2012': 'SegmentationClassAug'}
VAL_YEAR = '2012'
VAL_MASK_DIR = 'SegmentationClass'  # evaluation uses the official masks
PARTIAL_DIR = 'ImageSets/Partial'
#: the authors' (multas) list names, relative to ``VOC<year>/ImageSets``
PAPER_LISTS = {'det': 'MXEdet/train.txt', 'seg': 'MXEseg/train.txt',
               'val': 'MXEseg/val.txt'}
PAPER_COUNTS = dict(det=7558, seg=7656, val=1443)
PAPER_COCO_COUNTS = dict(det=14655, seg=14656)

VocItem = Tuple[str, str]  # (year, image id)


# ---------------------------------------------------------------------------
# pure functions (no file system)
# ---------------------------------------------------------------------------
def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (``2.5 -> 3``)."""
    return int(math.floor(x + 0.5))


def seeded_order(n: int, seed: int) -> List[int]:
    """A permutation of ``range(n)`` fixed by ``seed``.

    Built from ``random.Random(seed).random()`` keys only: Python guarantees
    that sequence across versions, unlike ``shuffle`` and ``sample``.
    """
    rng = random.Random(seed)
    keys = [rng.random() for _ in range(n)]
    return sorted(range(n), key=keys.__getitem__)


def voc_pool(trainval: Dict[str, Sequence[str]],
             excluded: Dict[str, Iterable[str]]) -> List[VocItem]:
    """The sorted, de-duplicated ``(year, id)`` pool of the VOC setting.

    Args:
        trainval (dict): year -> image ids of ``ImageSets/Main/trainval.txt``.
        excluded (dict): year -> image ids to leave out (the evaluation set).

    Returns:
        list[tuple[str, str]]: sorted ``(year, id)`` pairs.
    """
    pool = set()
    for year, ids in trainval.items():
        skip = set(excluded.get(year, ()))
        pool.update((year, i) for i in ids if i not in skip)
    return sorted(pool)


def draw_voc_split(pool: Sequence[VocItem], has_mask: Set[VocItem],
                   seg_fraction: float, seed: int
                   ) -> Tuple[List[VocItem], List[VocItem]]:
    """Draw the segmentation half among the masked pool images.

    Args:
        pool (list[tuple]): the ``(year, id)`` pool (see :func:`voc_pool`).
        has_mask (set[tuple]): pool items that have a semantic mask.
        seg_fraction (float): fraction of the pool in the segmentation half.
        seed (int): random seed.

    Returns:
        tuple[list, list]: ``(det, seg)``, disjoint, covering the pool, each
        sorted. ``len(seg) == round_half_up(len(pool) * seg_fraction)``.
    """
    if not 0 <= seg_fraction <= 1:
        raise ValueError(f'seg_fraction must be in [0, 1], got {seg_fraction}')
    pool = sorted(set(pool))
    masked = [p for p in pool if p in has_mask]
    n_seg = round_half_up(len(pool) * seg_fraction)
    if n_seg > len(masked):
        raise ValueError(
            f'the segmentation half needs {n_seg} images '
            f'({seg_fraction} of {len(pool)}) but only {len(masked)} pool '
            'images have a mask: convert the SBD masks first '
            '(tools/convert_sbd.py) or lower --seg-fraction')
    order = seeded_order(len(masked), seed)
    chosen = {masked[i] for i in order[:n_seg]}
    seg = [p for p in pool if p in chosen]
    det = [p for p in pool if p not in chosen]
    return det, seg


def group_by_year(items: Iterable[VocItem],
                  years: Sequence[str] = VOC_YEARS) -> Dict[str, List[str]]:
    """``{year: [ids...]}`` keeping the order of ``items``."""
    out = OrderedDict((y, []) for y in years)
    for year, img_id in items:
        out.setdefault(year, []).append(img_id)
    return out


def coco_pool(coco: dict) -> List[int]:
    """Sorted ids of the images with at least one non-crowd annotation."""
    known = {img['id'] for img in coco.get('images', [])}
    ids = {a['image_id'] for a in coco.get('annotations', [])
           if not a.get('iscrowd', 0) and a['image_id'] in known}
    return sorted(ids)


def draw_coco_split(pool: Sequence[int], fraction: float, seed: int
                    ) -> Tuple[List[int], List[int]]:
    """Shuffle the pool with the seed; detection = first ``round(N f)``,
    segmentation = the next ones up to ``round(2 N f)``.

    Returns:
        tuple[list[int], list[int]]: ``(det, seg)`` image ids, disjoint and
        each sorted.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f'fraction must be in (0, 0.5], got {fraction}')
    pool = sorted(set(pool))
    shuffled = [pool[i] for i in seeded_order(len(pool), seed)]
    b1 = round_half_up(len(pool) * fraction)
    b2 = round_half_up(2 * len(pool) * fraction)
    return sorted(shuffled[:b1]), sorted(shuffled[b1:b2])


def coco_subset(coco: dict, img_ids: Iterable[int]) -> dict:
    """A COCO dict restricted to ``img_ids`` (images sorted by id, their
    annotations, every category; ``info``/``licenses`` kept)."""
    keep = set(img_ids)
    out = {k: v for k, v in coco.items()
           if k not in ('images', 'annotations', 'categories')}
    out['images'] = sorted((im for im in coco['images'] if im['id'] in keep),
                           key=lambda im: im['id'])
    out['annotations'] = [a for a in coco.get('annotations', [])
                          if a['image_id'] in keep]
    out['categories'] = list(coco.get('categories', []))
    return out


def match_coco_entries(coco: dict, entries: Iterable[str]
                       ) -> Tuple[List[int], List[str]]:
    """Resolve list entries (image ids or file names) to image ids.

    An entry matches an image whose id equals it (``'9'``, ``'000000000009'``)
    or whose ``file_name`` has the same base name (``'000000000009.jpg'``,
    ``'train2017/000000000009.jpg'``).

    Returns:
        tuple[list[int], list[str]]: matched ids (sorted, unique) and the
        entries that match no image.
    """
    by_id = {im['id']: im['id'] for im in coco['images']}
    by_name = {osp.basename(im['file_name']): im['id']
               for im in coco['images']}
    ids, missing = set(), []
    for entry in entries:
        base = osp.basename(entry.strip())
        if base in by_name:
            ids.add(by_name[base])
        elif base.isdigit() and int(base) in by_id:
            ids.add(int(base))
        else:
            missing.append(entry)
    return sorted(ids), missing


# ---------------------------------------------------------------------------
# IO
# ---------------------------------------------------------------------------
def read_ids(path: str) -> List[str]:
    """First token of every non-empty line."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'list file {path!r} not found')
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def _atomic_write(path: str, text: str) -> None:
    d = osp.dirname(path) or '.'
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix='.tmp_', suffix='.part')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_ids(path: str, ids: Sequence[str]) -> None:
    _atomic_write(path, ''.join(f'{i}\n' for i in ids))


def write_json(path: str, obj: dict) -> None:
    _atomic_write(path, json.dumps(obj, separators=(',', ':')))


class Missing:
    """Collects missing files: ``(what, path)`` per listed image."""

    def __init__(self):
        self.items: List[Tuple[str, str, str]] = []  # (list, kind, path)

    def add(self, where: str, kind: str, path: str) -> None:
        self.items.append((where, kind, path))

    def __len__(self):
        return len(self.items)

    def report(self, stream=None, limit: int = 20) -> None:
        stream = stream or sys.stderr
        counts = OrderedDict()
        for where, kind, _ in self.items:
            counts[(where, kind)] = counts.get((where, kind), 0) + 1
        for (where, kind), n in counts.items():
            print(f'  {where}: {n} missing {kind}', file=stream)
        for where, kind, path in self.items[:limit]:
            print(f'    {where}: missing {kind} {path}', file=stream)
        if len(self.items) > limit:
            print(f'    ... and {len(self.items) - limit} more', file=stream)


def voc_paths(voc_root: str, year: str, img_id: str, task: str
              ) -> List[Tuple[str, str]]:
    """``(kind, path)`` of every file an image of ``task`` needs."""
    base = osp.join(voc_root, f'VOC{year}')
    paths = [('image', osp.join(base, 'JPEGImages', img_id + '.jpg'))]
    if task in ('det', 'val'):
        paths.append(('annotation',
                      osp.join(base, 'Annotations', img_id + '.xml')))
    if task == 'seg':
        paths.append(('mask', osp.join(base, VOC_MASK_DIRS.get(
            year, 'SegmentationClass'), img_id + '.png')))
    if task == 'val':
        paths.append(('mask', osp.join(base, VAL_MASK_DIR, img_id + '.png')))
    return paths


def check_voc(voc_root: str, items: Sequence[VocItem], task: str,
              where: str, missing: Missing,
              exists: Callable[[str], bool] = osp.isfile) -> List[VocItem]:
    """Return the items whose files all exist; record the others."""
    ok = []
    for year, img_id in items:
        bad = [(k, p) for k, p in voc_paths(voc_root, year, img_id, task)
               if not exists(p)]
        for kind, path in bad:
            missing.add(where, kind, path)
        if not bad:
            ok.append((year, img_id))
    return ok


def _fail_on_missing(missing: Missing, allow: bool) -> bool:
    """Report; return True if the run must stop (exit code 1)."""
    if not len(missing):
        return False
    print(f'{len(missing)} listed file(s) or image(s) are missing:',
          file=sys.stderr)
    missing.report()
    if allow:
        print('--allow-missing: these images are dropped (counted above).',
              file=sys.stderr)
        return False
    print('Nothing written. Fix the data (see docs/data_preparation.md) or '
          'pass --allow-missing to drop these images.', file=sys.stderr)
    return True


def resolve_voc_lists(spec: Sequence[str], years: Sequence[str]
                      ) -> Dict[Tuple[str, str], str]:
    """Map ``(task, year) -> list file`` from ``--from-lists``.

    ``spec`` is either one directory laid out as a VOCdevkit holding the
    authors' lists (``VOC<year>/ImageSets/MXEdet/train.txt``,
    ``.../MXEseg/train.txt``, ``VOC2012/ImageSets/MXEseg/val.txt``), or
    ``KEY=PATH`` pairs with KEY in ``det2007 seg2007 det2012 seg2012
    val2012``.
    """
    lists = {}
    if len(spec) == 1 and '=' not in spec[0]:
        root = spec[0]
        if not osp.isdir(root):
            raise FileNotFoundError(f'--from-lists directory {root!r} not '
                                    'found')
        for year in years:
            for task in ('det', 'seg'):
                p = osp.join(root, f'VOC{year}', 'ImageSets',
                             PAPER_LISTS[task])
                if not osp.isfile(p):
                    raise FileNotFoundError(
                        f'expected the list {p!r} (the authors\' '
                        f'VOC{year}/ImageSets/{PAPER_LISTS[task]})')
                lists[(task, year)] = p
        p = osp.join(root, f'VOC{VAL_YEAR}', 'ImageSets', PAPER_LISTS['val'])
        if osp.isfile(p):
            lists[('val', VAL_YEAR)] = p
        return lists
    for item in spec:
        key, sep, path = item.partition('=')
        task, year = key[:3], key[3:]
        if not sep or task not in ('det', 'seg', 'val') or not year.isdigit():
            raise ValueError(
                f'--from-lists entry {item!r}: expected KEY=PATH with KEY in '
                'det2007 seg2007 det2012 seg2012 val2012, or one directory')
        lists[(task, year)] = path
    return lists


def _print_voc_counts(written: Dict[str, Dict[str, List[str]]],
                      val_n: Optional[int]) -> None:
    tot = {t: sum(len(v) for v in written[t].values()) for t in written}
    for year in sorted({y for t in written for y in written[t]}):
        print(f'VOC{year}: det {len(written["det"].get(year, [])):,}  '
              f'seg {len(written["seg"].get(year, [])):,}')
    print(f'total: det {tot["det"]:,}  seg {tot["seg"]:,}  '
          f'(paper: {PAPER_COUNTS["det"]:,} det / {PAPER_COUNTS["seg"]:,} '
          'seg)')
    if val_n is not None:
        print(f'val (VOC{VAL_YEAR}): {val_n:,}  (paper: 1,443; authors\' '
              'list 1,442; VOC2012 segmentation val 1,449)')


def run_voc(args) -> int:
    root, years = args.voc_root, list(args.years)
    missing = Missing()
    val_ids: Optional[List[str]] = None
    if args.from_lists:
        lists = resolve_voc_lists(args.from_lists, years)
        halves = {'det': [], 'seg': []}
        for (task, year), path in sorted(lists.items()):
            items = [(year, i) for i in read_ids(path)]
            kept = check_voc(root, items, task, path, missing)
            if task == 'val':
                val_ids = [i for _, i in kept]
            else:
                halves[task] += kept
        if _fail_on_missing(missing, args.allow_missing):
            return 1
        det, seg = halves['det'], halves['seg']
        both = set(det) & set(seg)
        if both:
            print(f'warning: {len(both)} image(s) are in both the detection '
                  f'and the segmentation list (e.g. {sorted(both)[:3]})',
                  file=sys.stderr)
    else:
        trainval = {y: read_ids(osp.join(root, f'VOC{y}', 'ImageSets', 'Main',
                                         'trainval.txt')) for y in years}
        val_file = osp.join(root, f'VOC{VAL_YEAR}', 'ImageSets',
                            'Segmentation', 'val.txt')
        val_items = [(VAL_YEAR, i) for i in read_ids(val_file)]
        val_ids = [i for _, i in
                   check_voc(root, val_items, 'val', val_file, missing)]
        pool = voc_pool(trainval, {VAL_YEAR: [i for _, i in val_items]})
        pool = check_voc(root, pool, 'det', 'pool (Main/trainval.txt)',
                         missing)
        if _fail_on_missing(missing, args.allow_missing):
            return 1
        has_mask = set(check_voc(root, pool, 'seg', 'mask check', Missing()))
        try:
            det, seg = draw_voc_split(pool, has_mask, args.seg_fraction,
                                      args.seed)
        except ValueError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        print(f'pool: {len(pool):,} images, {len(has_mask):,} with a mask; '
              f'seed {args.seed}, seg fraction {args.seg_fraction}')
    written = {'det': group_by_year(det, years),
               'seg': group_by_year(seg, years)}
    for task, by_year in written.items():
        for year, ids in by_year.items():
            write_ids(osp.join(root, f'VOC{year}', PARTIAL_DIR,
                               f'{task}_train.txt'), ids)
    if val_ids is not None:
        write_ids(osp.join(root, f'VOC{VAL_YEAR}', PARTIAL_DIR, 'val.txt'),
                  val_ids)
    _print_voc_counts(written, None if val_ids is None else len(val_ids))
    if len(missing):
        print(f'dropped (missing files): {len(missing):,}')
    return 0


def run_coco(args) -> int:
    root = args.coco_root
    ann_file = osp.join(root, args.ann_file)
    if not osp.isfile(ann_file):
        print(f'error: annotation file {ann_file!r} not found',
              file=sys.stderr)
        return 1
    with open(ann_file) as f:
        coco = json.load(f)
    missing = Missing()
    if args.from_lists:
        subsets = {}
        for item in args.from_lists:
            key, sep, path = item.partition('=')
            if not sep or key not in ('det', 'seg'):
                raise ValueError(f'--from-lists entry {item!r}: expected '
                                 'det=PATH and seg=PATH')
            ids, unmatched = match_coco_entries(coco, read_ids(path))
            for entry in unmatched:
                missing.add(path, f'image in {args.ann_file}', entry)
            subsets[key] = ids
        if set(subsets) != {'det', 'seg'}:
            raise ValueError('--from-lists needs both det=PATH and seg=PATH')
        det, seg = subsets['det'], subsets['seg']
        both = set(det) & set(seg)
        if both:
            print(f'warning: {len(both)} image(s) are in both lists',
                  file=sys.stderr)
    else:
        pool = coco_pool(coco)
        det, seg = draw_coco_split(pool, args.fraction, args.seed)
        print(f'pool: {len(pool):,} images with a non-crowd annotation; '
              f'seed {args.seed}, fraction {args.fraction}')
    if args.check_images:
        names = {im['id']: im['file_name'] for im in coco['images']}
        img_dir = osp.join(root, args.img_dir)
        for task in ('det', 'seg'):
            ids = det if task == 'det' else seg
            kept = []
            for i in ids:
                path = osp.join(img_dir, names[i])
                if osp.isfile(path):
                    kept.append(i)
                else:
                    missing.add(task, 'image', path)
            if task == 'det':
                det = kept
            else:
                seg = kept
    if _fail_on_missing(missing, args.allow_missing):
        return 1
    out_dir = osp.join(root, args.out_dir)
    for task, ids in (('det', det), ('seg', seg)):
        write_json(osp.join(out_dir, f'{task}_train.json'),
                   coco_subset(coco, ids))
    print(f'det {len(det):,}  seg {len(seg):,}  '
          f'(paper: {PAPER_COCO_COUNTS["det"]:,} / '
          f'{PAPER_COCO_COUNTS["seg"]:,}) -> {out_dir}')
    if len(missing):
        print(f'dropped (missing): {len(missing):,}')
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='dataset', required=True)

    voc = sub.add_parser('voc', help='Pascal VOC 07+12 with SBD masks')
    voc.add_argument('--voc-root', default='data/VOCdevkit')
    voc.add_argument('--years', nargs='+', default=list(VOC_YEARS))
    voc.add_argument('--seed', type=int, default=0)
    voc.add_argument('--seg-fraction', type=float, default=0.5)
    voc.add_argument('--from-lists', nargs='+', metavar='DIR_OR_KEY=PATH',
                     help='the authors\' lists: a VOCdevkit-like directory '
                     'holding VOC<year>/ImageSets/MXE{det,seg}/train.txt (and '
                     'VOC2012/ImageSets/MXEseg/val.txt), or KEY=PATH pairs '
                     '(det2007, seg2007, det2012, seg2012, val2012)')
    voc.add_argument('--allow-missing', action='store_true')
    voc.set_defaults(func=run_voc)

    coco = sub.add_parser('coco', help='COCO 2017, one eighth per task')
    coco.add_argument('--coco-root', default='data/coco')
    coco.add_argument('--ann-file',
                      default='annotations/instances_train2017.json')
    coco.add_argument('--img-dir', default='train2017')
    coco.add_argument('--out-dir', default='annotations/partial')
    coco.add_argument('--seed', type=int, default=0)
    coco.add_argument('--fraction', type=float, default=0.125)
    coco.add_argument('--from-lists', nargs='+', metavar='KEY=PATH',
                      help='det=PATH seg=PATH: text files of image ids or '
                      'file names, one per line')
    coco.add_argument('--no-check-images', dest='check_images',
                      action='store_false',
                      help='do not check that the image files exist')
    coco.add_argument('--allow-missing', action='store_true')
    coco.set_defaults(func=run_coco)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
