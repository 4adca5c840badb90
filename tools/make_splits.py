#!/usr/bin/env python
"""Write the detection / segmentation halves of the multi-task partially
supervised setting (BoMBo, BMVC 2023, Sec. 4.1).

Two sub-commands, each either *drawing* a split from a seed or *reading* the
paper's public lists (``--from-lists``) and writing them under our names:

``voc``
    Pool = VOC2007 trainval ∪ VOC2012 trainval (``ImageSets/Main/trainval.txt``
    of each year) minus every photo of the VOC2012 segmentation val images
    (``VOC2012/ImageSets/Segmentation/val.txt``, the evaluation set), in
    either year. The split is leak-free: VOC2012's lists name VOC2007 photos
    ``2007_NNNNNN`` (the same picture as VOC2007's ``NNNNNN``), so a photo is
    identified by ``(year, id)`` with VOC2012 ``2007_NNNNNN`` == VOC2007
    ``NNNNNN`` (:func:`photo_id`): the VOC2007 copy of a val image is
    excluded, and no photo enters the pool twice (the VOC2007 entry is
    kept). The segmentation half takes ``round(|pool| * seg_fraction)``
    images drawn from the pool images that have a mask (VOC2007:
    ``SegmentationClass``; VOC2012: ``SegmentationClassAug``, written by
    ``tools/convert_sbd.py``); the detection half is the rest of the pool.
    Writes per year ``VOC<year>/ImageSets/Partial/{det_train,seg_train}.txt``
    and ``VOC2012/ImageSets/Partial/val.txt``, the evaluation list the VOC
    configs read (a copy of ``Segmentation/val.txt`` minus images with
    missing files; with ``--from-lists``, the authors' val list, or that
    copy if they give none). With ``--from-lists`` the authors' training
    lists are checked the same way: entries that are val photos are dropped
    and counted, with a warning. The paper's halves hold 7,558 and 7,656
    images; its validation set 1,443 (the authors' list: 1,442; the official
    VOC2012 segmentation val: 1,449).

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
* Written files get the mode ``open()`` would give them (``0o666`` minus
  the umask), not ``mkstemp``'s 0600.

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
from typing import (Callable, Dict, Iterable, List, NamedTuple, Optional,
                    Sequence, Set, Tuple)

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

#: VOC2012's lists name VOC2007 photos ``2007_NNNNNN`` (see :func:`photo_id`)
TWIN_YEAR = '2007'
COCO_ANN_URL = ('http://images.cocodataset.org/annotations/'
                'annotations_trainval2017.zip')

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


def photo_id(item: VocItem) -> VocItem:
    """The photo an image entry shows: VOC2012 lists VOC2007 photos as
    ``2007_NNNNNN`` (same picture as VOC2007's ``NNNNNN``), so
    ``('2012', '2007_000032')`` is ``('2007', '000032')``; any other entry
    is its own photo."""
    year, img_id = item
    prefix = TWIN_YEAR + '_'
    if year != TWIN_YEAR and img_id.startswith(prefix):
        return TWIN_YEAR, img_id[len(prefix):]
    return item


def is_twin(item: VocItem) -> bool:
    """Whether ``item`` is a later year's copy of a VOC2007 photo."""
    return photo_id(item) != tuple(item)


def drop_photos(items: Iterable[VocItem], photos: Set[VocItem]
                ) -> Tuple[List[VocItem], List[VocItem]]:
    """``(kept, dropped)``: the items whose photo (:func:`photo_id`) is in
    ``photos`` are dropped; order kept."""
    kept, dropped = [], []
    for item in items:
        (dropped if photo_id(item) in photos else kept).append(item)
    return kept, dropped


def merge_twins(items: Iterable[VocItem]
                ) -> Tuple[List[VocItem], List[VocItem]]:
    """One entry per photo: ``(kept, dropped)``. Where both twins are
    listed, the VOC2007 entry is kept (the photo's own id) and the
    ``2007_`` copy dropped; otherwise the first entry of a photo is kept.
    Order kept."""
    items = list(items)
    own = {tuple(i) for i in items if not is_twin(i)}
    kept, dropped, seen = [], [], set()
    for item in items:
        photo = photo_id(item)
        if photo in seen or (is_twin(item) and photo in own):
            dropped.append(item)
        else:
            seen.add(photo)
            kept.append(item)
    return kept, dropped


class PoolReport(NamedTuple):
    """The leak-free pool and what was left out of it."""
    pool: List[VocItem]            # sorted
    val_photos: Set[VocItem]       # photos of the evaluation list
    excluded_val: List[VocItem]    # pool entries that are val photos
    merged_twins: List[VocItem]    # 2007_ copies of photos already listed


def leak_free_pool(trainval: Dict[str, Sequence[str]],
                   excluded: Dict[str, Iterable[str]]) -> PoolReport:
    """The VOC pool, leak-free: every photo at most once, none of the
    excluded (evaluation) photos in either year's copy (see
    :func:`photo_id`).

    Args:
        trainval (dict): year -> image ids of ``ImageSets/Main/trainval.txt``.
        excluded (dict): year -> image ids to leave out (the evaluation set).
    """
    items = sorted({(year, i) for year, ids in trainval.items() for i in ids})
    val_photos = {photo_id((year, i)) for year, ids in excluded.items()
                  for i in ids}
    items, excluded_val = drop_photos(items, val_photos)
    items, merged = merge_twins(items)
    return PoolReport(sorted(items), val_photos, excluded_val, merged)


def voc_pool(trainval: Dict[str, Sequence[str]],
             excluded: Dict[str, Iterable[str]]) -> List[VocItem]:
    """The sorted, de-duplicated, leak-free ``(year, id)`` pool of the VOC
    setting (:func:`leak_free_pool`).

    Args:
        trainval (dict): year -> image ids of ``ImageSets/Main/trainval.txt``.
        excluded (dict): year -> image ids to leave out (the evaluation set).

    Returns:
        list[tuple[str, str]]: sorted ``(year, id)`` pairs.
    """
    return leak_free_pool(trainval, excluded).pool


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


class ListsReport(NamedTuple):
    """The authors' halves after the leak checks of :func:`clean_halves`."""
    det: List[VocItem]
    seg: List[VocItem]
    dropped_val: List[Tuple[str, VocItem]]   # (task, item): val photos
    merged_twins: List[Tuple[str, VocItem]]  # (task, item): twin repeats
    both: List[VocItem]                      # photos in det and in seg


def clean_halves(det: Sequence[VocItem], seg: Sequence[VocItem],
                 val_photos: Set[VocItem]) -> ListsReport:
    """Make given halves leak-free: drop every entry that is a validation
    photo (by :func:`photo_id`, so VOC2007 ``NNNNNN`` is dropped when the
    val list holds VOC2012 ``2007_NNNNNN``), keep one entry per photo within
    each half (:func:`merge_twins`), and list the photos in both halves
    (kept: the caller warns)."""
    halves, dropped, merged = {}, [], []
    for task, items in (('det', det), ('seg', seg)):
        kept, out = drop_photos(items, val_photos)
        dropped += [(task, i) for i in out]
        kept, out = merge_twins(kept)
        merged += [(task, i) for i in out]
        halves[task] = kept
    seg_photos = {photo_id(i) for i in halves['seg']}
    both = sorted({photo_id(i) for i in halves['det']} & seg_photos)
    return ListsReport(halves['det'], halves['seg'], dropped, merged, both)


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


def default_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open()`` gives a new file (mkstemp
    makes 0600 files whatever the umask)."""
    umask = os.umask(0)  # reading the umask means setting it: set it back
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(path: str, text: str) -> None:
    d = osp.dirname(path) or '.'
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix='.tmp_', suffix='.part')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.chmod(tmp, default_file_mode())
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


def _examples(items: Sequence, limit: int = 3) -> str:
    """``VOC2007/000032, VOC2012/2007_000033 (det), ...``."""
    def name(x):
        if len(x) == 2 and isinstance(x[1], tuple):  # (task, item)
            return f'VOC{x[1][0]}/{x[1][1]} ({x[0]})'
        return f'VOC{x[0]}/{x[1]}'
    more = ', ...' if len(items) > limit else ''
    return ', '.join(name(x) for x in list(items)[:limit]) + more


def _val_list(root: str, lists: Dict[Tuple[str, str], str]) -> str:
    """The evaluation list: the authors' (``--from-lists``) if given, else
    VOC2012's ``ImageSets/Segmentation/val.txt``."""
    for (task, year) in list(lists):
        if task == 'val' and year != VAL_YEAR:
            raise ValueError(f'--from-lists: val{year}: only a '
                             f'VOC{VAL_YEAR} val list is used')
    path = lists.pop(('val', VAL_YEAR), None)
    if path is not None:
        return path
    path = osp.join(root, f'VOC{VAL_YEAR}', 'ImageSets', 'Segmentation',
                    'val.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'no val list: neither --from-lists val{VAL_YEAR}=PATH (the '
            f"authors' VOC{VAL_YEAR}/ImageSets/{PAPER_LISTS['val']}) nor "
            f'{path!r} (VOC{VAL_YEAR} trainval tar) exists')
    return path


def run_voc(args) -> int:
    root, years = args.voc_root, list(args.years)
    missing = Missing()
    lists = resolve_voc_lists(args.from_lists, years) if args.from_lists \
        else {}
    val_file = _val_list(root, lists)
    val_items = [(VAL_YEAR, i) for i in read_ids(val_file)]
    val_ids = [i for _, i in
               check_voc(root, val_items, 'val', val_file, missing)]
    val_photos = {photo_id(v) for v in val_items}
    val_twins = [v for v in val_items if is_twin(v)]
    if args.from_lists:
        halves = {'det': [], 'seg': []}
        for (task, year), path in sorted(lists.items()):
            items = [(year, i) for i in read_ids(path)]
            halves[task] += check_voc(root, items, task, path, missing)
        if _fail_on_missing(missing, args.allow_missing):
            return 1
        rep = clean_halves(halves['det'], halves['seg'], val_photos)
        det, seg = rep.det, rep.seg
        if rep.dropped_val:
            print(f'warning: {len(rep.dropped_val)} training image(s) of the '
                  'lists are validation photos (VOC2012 2007_NNNNNN is '
                  'VOC2007 NNNNNN): dropped, e.g. '
                  f'{_examples(rep.dropped_val)}', file=sys.stderr)
        if rep.merged_twins:
            print(f'warning: {len(rep.merged_twins)} image(s) are listed '
                  'twice in one half (both VOC2007 NNNNNN and VOC2012 '
                  '2007_NNNNNN): the VOC2007 entry kept, e.g. dropped '
                  f'{_examples(rep.merged_twins)}', file=sys.stderr)
        if rep.both:
            print(f'warning: {len(rep.both)} image(s) are in both the '
                  'detection and the segmentation list (e.g. '
                  f'{_examples(rep.both)})', file=sys.stderr)
        print(f'twins: {len(val_twins):,} val images are VOC2007 photos '
              f'(2007_NNNNNN); {len(rep.dropped_val):,} training images '
              'dropped as val photos; '
              f'{len(rep.merged_twins):,} twin repeats merged')
    else:
        trainval = {y: read_ids(osp.join(root, f'VOC{y}', 'ImageSets', 'Main',
                                         'trainval.txt')) for y in years}
        rep = leak_free_pool(trainval, {VAL_YEAR: [i for _, i in val_items]})
        pool = check_voc(root, rep.pool, 'det', 'pool (Main/trainval.txt)',
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
        literal = set(val_items)
        copies = [x for x in rep.excluded_val if x not in literal]
        print(f'pool: {len(pool):,} images, {len(has_mask):,} with a mask; '
              f'seed {args.seed}, seg fraction {args.seg_fraction}')
        print(f'twins: {len(val_twins):,} val images are VOC2007 photos '
              f'(2007_NNNNNN); {len(copies):,} VOC2007 copies of val images '
              f'excluded from the pool; {len(rep.merged_twins):,} twin '
              'repeats in Main/trainval merged')
    written = {'det': group_by_year(det, years),
               'seg': group_by_year(seg, years)}
    for task, by_year in written.items():
        for year, ids in by_year.items():
            write_ids(osp.join(root, f'VOC{year}', PARTIAL_DIR,
                               f'{task}_train.txt'), ids)
    val_out = osp.join(root, f'VOC{VAL_YEAR}', PARTIAL_DIR, 'val.txt')
    write_ids(val_out, val_ids)
    _print_voc_counts(written, len(val_ids))
    print(f'val list: {val_out} (from {val_file}; the evaluation list the VOC '
          'configs read)')
    if len(missing):
        print(f'dropped (missing files): {len(missing):,}')
    return 0


def run_coco(args) -> int:
    root = args.coco_root
    ann_file = osp.join(root, args.ann_file)
    if not osp.isfile(ann_file):
        print(f'error: annotation file {ann_file!r} not found (expected '
              f'--coco-root {root} + --ann-file {args.ann_file}). Download '
              f'the COCO 2017 annotations from {COCO_ANN_URL} and unzip them '
              f'in {root} (it holds annotations/instances_train2017.json); '
              'images: http://images.cocodataset.org/zips/train2017.zip',
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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults after every flag, descriptions as written."""


VOC_HELP = """\
Pascal VOC 07+12 with SBD masks.

Seeded draw: pool = VOC2007 + VOC2012 ImageSets/Main/trainval.txt minus every
photo of the evaluation list VOC2012/ImageSets/Segmentation/val.txt, in
either year: VOC2012 lists VOC2007 photos as 2007_NNNNNN, the same picture as
VOC2007's NNNNNN, so that VOC2007 copy is excluded too, and no photo is in
the pool twice. The segmentation half is drawn among the pool images with a
mask, the detection half is the rest.

--from-lists: the authors' lists, checked the same way (training images that
are val photos are dropped and counted, with a warning).

Writes VOC<year>/ImageSets/Partial/{det_train,seg_train}.txt and
VOC2012/ImageSets/Partial/val.txt, the evaluation list the VOC configs read
(a copy of Segmentation/val.txt minus images with missing files, or the
authors' val list with --from-lists when given).
"""

COCO_HELP = """\
COCO 2017, one eighth of train2017 per task.

Pool = the train2017 images with at least one non-crowd annotation (images
without annotations and crowd-only images are left out), seeded order;
detection = the first round(N f), segmentation = the next ones up to
round(2 N f). Writes annotations/partial/{det_train,seg_train}.json.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0] + '\n\nSee '
        'docs/data_preparation.md, and "make_splits.py voc -h" and\n'
        '"make_splits.py coco -h" for each dataset.',
        formatter_class=_HelpFormatter)
    sub = parser.add_subparsers(dest='dataset', required=True,
                                metavar='{voc,coco}')

    voc = sub.add_parser('voc', help='Pascal VOC 07+12 with SBD masks',
                         description=VOC_HELP, formatter_class=_HelpFormatter)
    voc.add_argument('--voc-root', default='data/VOCdevkit',
                     help='the VOCdevkit folder (holds VOC2007/, VOC2012/)')
    voc.add_argument('--years', nargs='+', default=list(VOC_YEARS),
                     help='years whose trainval images enter the pool')
    voc.add_argument('--seed', type=int, default=0,
                     help='seed of the draw (ignored with --from-lists)')
    voc.add_argument('--seg-fraction', type=float, default=0.5,
                     help='fraction of the pool in the segmentation half')
    voc.add_argument('--from-lists', nargs='+', metavar='DIR_OR_KEY=PATH',
                     help='the authors\' lists: a VOCdevkit-like directory '
                     'holding VOC<year>/ImageSets/MXE{det,seg}/train.txt (and '
                     'VOC2012/ImageSets/MXEseg/val.txt), or KEY=PATH pairs '
                     '(det2007, seg2007, det2012, seg2012, val2012). None: '
                     'draw from --seed')
    voc.add_argument('--allow-missing', action='store_true',
                     help='drop (and count) listed images whose files are '
                     'missing instead of stopping with exit code 1')
    voc.set_defaults(func=run_voc)

    coco = sub.add_parser('coco', help='COCO 2017, one eighth per task',
                          description=COCO_HELP,
                          formatter_class=_HelpFormatter)
    coco.add_argument('--coco-root', default='data/coco',
                      help='the COCO folder (holds train2017/, '
                      'annotations/)')
    coco.add_argument('--ann-file',
                      default='annotations/instances_train2017.json',
                      help='training annotations, relative to --coco-root')
    coco.add_argument('--img-dir', default='train2017',
                      help='training images, relative to --coco-root')
    coco.add_argument('--out-dir', default='annotations/partial',
                      help='output folder of {det,seg}_train.json, relative '
                      'to --coco-root')
    coco.add_argument('--seed', type=int, default=0,
                      help='seed of the draw (ignored with --from-lists)')
    coco.add_argument('--fraction', type=float, default=0.125,
                      help='fraction of the pool in each subset')
    coco.add_argument('--from-lists', nargs='+', metavar='KEY=PATH',
                      help='det=PATH seg=PATH: text files of image ids or '
                      'file names, one per line. None: draw from --seed')
    coco.add_argument('--no-check-images', dest='check_images',
                      action='store_false',
                      help='do not check that the image files exist '
                      '(check_images: %(default)s without this flag)')
    coco.add_argument('--allow-missing', action='store_true',
                      help='drop (and count) listed images that are missing '
                      'instead of stopping with exit code 1')
    coco.set_defaults(func=run_coco)
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
