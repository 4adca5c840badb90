"""TIDE error analysis of COCO-format detection results already on disk.

    python tools/analysis_tools/tide_analysis.py GT.json RESULTS.bbox.json [MORE.bbox.json ...]
        [--out DIR] [--names A B ...] [--pos-thr 0.5] [--bg-thr 0.1] [--format plain|md|csv]

RESULTS files are what mmdet's ``CocoMetric(outfile_prefix=...)`` writes (``<prefix>.bbox.json``).
Prints the TIDE table (AP at pos-thr, dAP of Cls Loc Both Dupe Bkg Miss, FP FN; one row per
results file, as the BoMBo paper's Table 2) and, with ``--out``, writes ``<name>_tide.json`` and
``<name>_tide_summary.png`` per run (plus ``tide_comparison.png`` for several runs).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from bombo.evaluation.tide import (format_tide_table, tide_from_coco_files,  # noqa: E402
                                   write_tide_outputs)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                     argparse.RawDescriptionHelpFormatter):
    """Defaults after every flag, the description as written."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument('gt', help='COCO ground-truth json (segmentation not needed)')
    parser.add_argument('results', nargs='+', help='COCO results json(s) (*.bbox.json)')
    parser.add_argument('--out', default=None,
                        help='output folder for <name>_tide.json and the PNGs (None: print only)')
    parser.add_argument('--names', nargs='+', default=None,
                        help='run names, one per results file (None: the file names)')
    parser.add_argument('--pos-thr', type=float, default=0.5,
                        help='IoU at which a detection is a true positive (TIDE AP threshold)')
    parser.add_argument('--bg-thr', type=float, default=0.1,
                        help='IoU below which a false positive is a background error')
    parser.add_argument('--format', default='plain', choices=['plain', 'md', 'csv'],
                        help='table format: plain text, markdown or CSV')
    parser.add_argument('--no-plot', action='store_true', help='do not write PNG files')
    args = parser.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.results):
        parser.error(f'{len(args.names)} names for {len(args.results)} results files')
    return args


def main(argv=None):
    args = parse_args(argv)
    names = args.names or [osp.splitext(osp.basename(r))[0] for r in args.results]
    if len(set(names)) < len(names):  # same file name in different folders
        names = [f'{i}:{n}' for i, n in enumerate(names)]
    results = {}
    from mmengine.utils import track_iter_progress
    pairs = list(zip(names, args.results))
    for name, res_file in (track_iter_progress(pairs) if len(pairs) > 1 else pairs):
        res = tide_from_coco_files(args.gt, res_file, pos_thr=args.pos_thr, bg_thr=args.bg_thr,
                                   name=name)
        if args.out is not None:
            write_tide_outputs(res, args.out, plot=not args.no_plot, title=name,
                               stem=f'{name.replace(":", "_")}_tide')
        results[name] = res
    print(format_tide_table(results, fmt=args.format))
    if args.out is not None and len(results) > 1 and not args.no_plot:
        from bombo.evaluation.plots import plot_tide_comparison
        print('comparison plot:', plot_tide_comparison(
            results, osp.join(args.out, 'tide_comparison.png')))
    return results


if __name__ == '__main__':
    main()
