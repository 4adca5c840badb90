"""One table of several runs: bbox mAP, mAP50, mIoU and the TIDE errors (markdown or CSV).

    python tools/analysis_tools/compare_runs.py WORK_DIR [WORK_DIR ...] [--names A B]
        [--format md|csv|plain] [--source auto|summary|log] [--out FILE]

For each WORK_DIR (or a json file given directly) the numbers come from, in this order
(``--source auto``):

1. ``WORK_DIR/summary.json`` (the demo's summary: keys ``bbox_mAP``, ``bbox_mAP_50``, ``mIoU`` and a
   ``tide`` dict with ``AP``/``AP50``, ``Cls`` ... ``FN``);
2. the latest timestamp folder ``WORK_DIR/<YYYYMMDD_HHMMSS>/`` holding metrics: the test json
   ``<ts>/<ts>.json`` written by ``tools/test.py``, else the last line of
   ``<ts>/vis_data/scalars.json`` (or ``<ts>/vis_data/<ts>.json``) that holds an evaluation key
   (``coco/bbox_mAP``, ``*mIoU``, ``tide/*``).

Values are printed as found (mmdet's COCO mAP in [0, 1]; mIoU and TIDE in points). A run without
a value shows an empty cell.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from bombo.evaluation.tables import format_table  # noqa: E402
from bombo.evaluation.tide import TIDE_ALL_ERRORS  # noqa: E402

COLUMNS = ['bbox_mAP', 'bbox_mAP_50', 'mIoU', 'tide_AP'] + list(TIDE_ALL_ERRORS)
_TS = re.compile(r'^\d{8}_\d{6}$')


def normalize_metrics(metrics: dict) -> dict:
    """Map metric names of mmengine logs / summary.json onto :data:`COLUMNS`."""
    out = {}
    for key, value in metrics.items():
        if key == 'tide' and isinstance(value, dict):
            for k, v in value.items():
                if k in TIDE_ALL_ERRORS:
                    out[k] = v
                elif re.fullmatch(r'AP\d*', k):
                    out['tide_AP'] = v
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        prefix, _, name = key.rpartition('/')
        if name in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75'):
            out[name] = value
        elif name.endswith('mIoU'):
            out['mIoU'] = value
        elif prefix.split('/')[-1] == 'tide' or prefix == '' and name in TIDE_ALL_ERRORS:
            if name in TIDE_ALL_ERRORS:
                out[name] = value
            elif re.fullmatch(r'AP\d*', name):
                out['tide_AP'] = value
    return out


def _has_eval_key(metrics: dict) -> bool:
    return any(c in normalize_metrics(metrics) for c in COLUMNS)


def last_eval_line(jsonl_file: str):
    """The last line of an mmengine scalars/json log holding an evaluation metric, or None."""
    found = None
    with open(jsonl_file) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and _has_eval_key(record):
                found = record
    return found


def read_json_metrics(path: str):
    """A json file holding one dict (summary.json, test json) or json lines (scalars.json)."""
    with open(path) as f:
        text = f.read()
    try:
        record = json.loads(text)
        return record if isinstance(record, dict) and _has_eval_key(record) else None
    except json.JSONDecodeError:
        return last_eval_line(path)


def read_run(path: str, source: str = 'auto'):
    """Return (metrics normalized to COLUMNS, source file) for a work dir or json file."""
    if osp.isfile(path):
        record = read_json_metrics(path)
        return (normalize_metrics(record), path) if record else ({}, None)
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path} is neither a work dir nor a json file')
    summary = osp.join(path, 'summary.json')
    if source in ('auto', 'summary') and osp.isfile(summary):
        record = read_json_metrics(summary)
        if record:
            return normalize_metrics(record), summary
    if source == 'summary':
        return {}, None
    stamps = sorted(d for d in os.listdir(path) if _TS.match(d) and osp.isdir(osp.join(path, d)))
    for ts in reversed(stamps):
        candidates = [osp.join(path, ts, f'{ts}.json'),
                      osp.join(path, ts, 'vis_data', 'scalars.json'),
                      osp.join(path, ts, 'vis_data', f'{ts}.json')]
        for cand in candidates:
            if osp.isfile(cand):
                record = read_json_metrics(cand)
                if record:
                    return normalize_metrics(record), cand
    # logs not in a timestamp folder (e.g. a copied vis_data)
    for cand in sorted(glob.glob(osp.join(path, '**', 'scalars.json'), recursive=True)):
        record = read_json_metrics(cand)
        if record:
            return normalize_metrics(record), cand
    return {}, None


def compare(paths, names=None, source='auto'):
    """Rows ``[name, *COLUMNS values, source]`` for the given runs."""
    names = names or [osp.basename(osp.normpath(p)) for p in paths]
    rows = []
    for name, path in zip(names, paths):
        metrics, src = read_run(path, source)
        rows.append([name] + [metrics.get(c) for c in COLUMNS] + [src or 'no metrics found'])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', help='work dirs (or json files)')
    parser.add_argument('--names', nargs='+', default=None, help='row names')
    parser.add_argument('--format', default='md', choices=['md', 'csv', 'plain'],
                        help='table format (default: md)')
    parser.add_argument('--source', default='auto', choices=['auto', 'summary', 'log'],
                        help='where metrics are read from: summary.json, the mmengine logs, or '
                        'summary.json then the logs (default: auto)')
    parser.add_argument('--digits', type=int, default=3,
                        help='decimals of the values (default: 3)')
    parser.add_argument('--no-source-column', action='store_true',
                        help='leave out the column naming the file each row was read from')
    parser.add_argument('--out', default=None, help='also write the table to this file')
    args = parser.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.runs):
        parser.error(f'{len(args.names)} names for {len(args.runs)} runs')
    missing = [r for r in args.runs if not osp.exists(r)]
    if missing:
        parser.error(f'not found: {missing}')
    rows = compare(args.runs, args.names, args.source)
    headers = ['run'] + COLUMNS + ['source']
    if args.no_source_column:
        headers, rows = headers[:-1], [r[:-1] for r in rows]
    table = format_table(headers, rows, fmt=args.format, digits=args.digits)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')
    return rows


if __name__ == '__main__':
    main()
