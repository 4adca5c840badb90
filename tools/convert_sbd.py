#!/usr/bin/env python
"""Convert the SBD class masks (MATLAB ``.mat``) to VOC palette PNGs.

The VOC 07+12 partially supervised setting (BoMBo, Sec. 4.1) takes its
VOC2012 semantic masks from SBD (Hariharan et al., ICCV 2011) "following the
common practice" (the ``SegmentationClassAug`` set). SBD ships
``dataset/cls/<id>.mat``, a struct ``GTcls`` whose field ``Segmentation`` is
the class map (0 background, 1..20 the VOC classes, no 255 border). This tool

1. converts every ``cls/<id>.mat`` to ``VOC2012/SegmentationClassAug/<id>.png``
   (PIL mode ``'P'`` with the VOC palette, values unchanged);
2. copies VOC2012's own ``SegmentationClass/*.png`` over them: the official
   masks (with their 255 boundary band) take precedence where both exist.

It is resumable: an existing PNG from SBD is skipped (``--overwrite`` redoes
it), an official mask is copied only if the destination differs, and every
file is written to a temporary name and renamed, so an interrupted run leaves
no half-written PNG. An unreadable ``.mat`` (or one whose class map is not
2-D with whole values in 0..20; uint8 as SBD ships it, or double, as a
re-saved file may hold it) is skipped, counted and named. Files get the mode
``open()`` would give them (``0o666`` minus the umask).

Usage::

    python tools/convert_sbd.py --sbd-root data/SBD/dataset \\
        --voc-root data/VOCdevkit --workers 2
"""
import argparse
import filecmp
import glob
import os
import os.path as osp
import shutil
import sys
import tempfile
from multiprocessing import Pool
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from bombo.datasets.partial_voc import voc_palette  # noqa: E402

NUM_VOC_CLASSES = 20
OUT_DIR = 'SegmentationClassAug'



def read_sbd_class_map(path: str) -> np.ndarray:
    """Read ``GTcls.Segmentation`` of an SBD ``cls/<id>.mat`` file.

    SBD stores it as uint8; a file re-saved by MATLAB (or by other tools)
    may hold it as double (or another integer type, or sparse): any of
    these is accepted if every value is a whole number in 0..20. Values
    that are not (NaN, 1.5, 33, -1) make the file unreadable rather than
    being cast silently.

    Returns:
        np.ndarray: (H, W) uint8 class map, values in 0..20.

    Raises:
        ValueError: the file cannot be read or holds no valid class map.
    """
    from scipy.io import loadmat
    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
        seg = mat['GTcls'].Segmentation
        if hasattr(seg, 'toarray'):  # a sparse matrix
            seg = seg.toarray()
        seg = np.asarray(seg)
    except Exception as e:  # corrupt file, wrong struct, missing field
        raise ValueError(f'cannot read GTcls.Segmentation from {path!r}: '
                         f'{type(e).__name__}: {e}') from e
    if seg.ndim != 2 or seg.size == 0:
        raise ValueError(f'{path!r}: GTcls.Segmentation has shape '
                         f'{seg.shape}, expected a 2-D class map')
    if seg.dtype.kind not in 'uif':  # bool, object, strings
        raise ValueError(f'{path!r}: GTcls.Segmentation has dtype '
                         f'{seg.dtype}, expected integer or float classes')
    if seg.dtype.kind == 'f':
        if not np.isfinite(seg).all():
            raise ValueError(f'{path!r}: GTcls.Segmentation holds NaN or '
                             'infinite values')
        if not (seg == np.round(seg)).all():
            raise ValueError(f'{path!r}: GTcls.Segmentation ({seg.dtype}) '
                             'holds non-integer class values')
    if seg.min() < 0 or seg.max() > NUM_VOC_CLASSES:
        raise ValueError(f'{path!r}: class values {seg.min()}..{seg.max()} '
                         f'outside 0..{NUM_VOC_CLASSES}')
    return seg.astype(np.uint8)


def class_map_to_png(seg: np.ndarray) -> Image.Image:
    """A VOC palette PNG image (mode ``'P'``) holding ``seg`` unchanged."""
    seg = np.ascontiguousarray(seg, dtype=np.uint8)
    img = Image.frombytes('P', (seg.shape[1], seg.shape[0]), seg.tobytes())
    img.putpalette(voc_palette())
    return img


def default_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open()`` gives a new file (mkstemp
    makes 0600 files whatever the umask)."""
    umask = os.umask(0)  # reading the umask means setting it: set it back
    os.umask(umask)
    return 0o666 & ~umask


def _atomic(dst: str, write) -> None:
    """Call ``write(tmp_path)`` then rename to ``dst`` (with the mode of a
    file made by ``open()``)."""
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(dst), prefix='.tmp_',
                               suffix='.png')
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, dst)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def convert_one(task: Tuple[str, str, bool]) -> Tuple[str, Optional[str]]:
    """Convert one ``.mat``; returns ``(status, error)`` with status in
    ``'converted'``, ``'exists'``, ``'unreadable'``."""
    mat_path, png_path, overwrite = task
    if not overwrite and osp.isfile(png_path):
        return 'exists', None
    try:
        seg = read_sbd_class_map(mat_path)
    except ValueError as e:
        return 'unreadable', str(e)
    img = class_map_to_png(seg)
    _atomic(png_path, lambda tmp: img.save(tmp, format='PNG'))
    return 'converted', None


def copy_official(voc_png_dir: str, out_dir: str) -> Tuple[int, int]:
    """Copy VOC's own masks over the converted ones.

    Returns:
        tuple[int, int]: (copied, already identical).
    """
    copied = same = 0
    for src in sorted(glob.glob(osp.join(voc_png_dir, '*.png'))):
        dst = osp.join(out_dir, osp.basename(src))
        if osp.isfile(dst) and filecmp.cmp(src, dst, shallow=False):
            same += 1
            continue
        _atomic(dst, lambda tmp: shutil.copyfile(src, tmp))
        copied += 1
    return copied, same


def convert(sbd_root: str, voc_root: str, workers: int = 1,
            overwrite: bool = False, progress: bool = True) -> dict:
    """Convert all SBD masks and overlay VOC2012's official ones.

    Args:
        sbd_root (str): SBD ``dataset`` folder (holding ``cls/``).
        voc_root (str): the VOCdevkit folder (holding ``VOC2012/``).
        workers (int): worker processes for the conversion.
        overwrite (bool): re-convert PNGs that already exist.
        progress (bool): show a progress bar.

    Returns:
        dict: counts ``converted``, ``exists``, ``unreadable``,
        ``official_copied``, ``official_same`` and the list
        ``unreadable_files`` (``(path, reason)``).
    """
    cls_dir = osp.join(sbd_root, 'cls')
    mats = sorted(glob.glob(osp.join(cls_dir, '*.mat')))
    if not mats:
        raise FileNotFoundError(f'no .mat file in {cls_dir!r}: --sbd-root '
                                'must be the SBD "dataset" folder')
    voc2012 = osp.join(voc_root, 'VOC2012')
    if not osp.isdir(voc2012):
        raise FileNotFoundError(f'{voc2012!r} not found')
    out_dir = osp.join(voc2012, OUT_DIR)
    os.makedirs(out_dir, exist_ok=True)
    tasks = [(m, osp.join(out_dir, osp.splitext(osp.basename(m))[0] + '.png'),
              overwrite) for m in mats]
    counts = dict(converted=0, exists=0, unreadable=0)
    unreadable = []
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(tasks))
    if workers > 1:
        pool = Pool(workers)
        results = pool.imap(convert_one, tasks, chunksize=16)
    else:
        pool, results = None, map(convert_one, tasks)
    try:
        for (mat, _, _), (status, err) in zip(tasks, results):
            counts[status] += 1
            if err is not None:
                unreadable.append((mat, err))
            if bar is not None:
                bar.update()
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    if bar is not None:
        sys.stdout.write('\n')
    official = osp.join(voc2012, 'SegmentationClass')
    if osp.isdir(official):
        counts['official_copied'], counts['official_same'] = copy_official(
            official, out_dir)
    else:
        print(f'warning: {official!r} not found: no official VOC mask '
              'copied', file=sys.stderr)
        counts['official_copied'] = counts['official_same'] = 0
    counts['unreadable_files'] = unreadable
    return counts


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults after every flag, the description as written."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=_HelpFormatter)
    parser.add_argument('--sbd-root', default='data/SBD/dataset',
                        help='the SBD "dataset" folder (holds cls/)')
    parser.add_argument('--voc-root', default='data/VOCdevkit',
                        help='the VOCdevkit folder (holds VOC2012/)')
    parser.add_argument('--workers', type=int, default=1,
                        help='worker processes for the conversion')
    parser.add_argument('--overwrite', action='store_true',
                        help='re-convert PNGs that already exist')
    parser.add_argument('--no-progress', dest='progress',
                        action='store_false',
                        help='no progress bar (progress: %(default)s '
                        'without this flag)')
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        counts = convert(args.sbd_root, args.voc_root, args.workers,
                         args.overwrite, args.progress)
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    out = osp.join(args.voc_root, 'VOC2012', OUT_DIR)
    print(f'SBD: {counts["converted"]:,} converted, {counts["exists"]:,} '
          f'already there, {counts["unreadable"]:,} unreadable (skipped)')
    print(f'VOC2012 SegmentationClass: {counts["official_copied"]:,} copied '
          f'over, {counts["official_same"]:,} already identical')
    for path, err in counts['unreadable_files']:
        print(f'  skipped: {path}: {err}', file=sys.stderr)
    print(f'masks in {out}: '
          f'{len(glob.glob(osp.join(out, "*.png"))):,}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
