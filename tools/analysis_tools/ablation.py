"""Ablation over configs x seeds: train, evaluate, tabulate mean +- std with a paired test.

Every config is trained and evaluated once per seed, then one table of mean +- std over seeds
with a paired test against the baseline, and a plot, are written.

    python tools/analysis_tools/ablation.py CONFIG [CONFIG ...] --seeds 0 1 2 \\
        --work-dir work_dirs/ablation [--jobs 2] [--skip-existing] [--aggregate-only] \\
        [--names A B ...] [--baseline NAME] [--cfg-options KEY=VALUE ...]

Each run is ``tools/demo.py CONFIG --work-dir WORK_DIR/<name>/seed<S> --cfg-options
randomness.seed=S ...`` in its own process (train, then one evaluation of the final model; the
demo writes ``summary.json`` with the COCO bbox mAP / mAP@50 / mAP@75, the mIoU and the TIDE
errors). ``--jobs N`` runs N processes at once, each with ``OMP_NUM_THREADS=MKL_NUM_THREADS=
--threads`` (default 1); their logs are ``<run dir>/run.log``. ``--skip-existing`` keeps every
run whose ``summary.json`` exists (resume after an interruption). A failed run is reported and
left out of the table (the tool exits with 1 at the end).

The metrics of a run are read as ``tools/analysis_tools/compare_runs.py`` reads them
(``summary.json``, else the mmengine logs). The table (``WORK_DIR/ablation.md``, ``.csv``,
``.json``; ``--out-prefix`` to change) has one row per config: ``n`` (seeds found), and per metric
the mean and the sample standard deviation (``ddof=1``) over seeds, in points (x100 for the COCO
mAPs and the mIoU, which the summaries hold as fractions; TIDE dAPs are already points), then
``p`` of a paired test against the baseline row (default: the first config) over the seeds both
have: a two-sided paired t-test (``scipy.stats.ttest_rel``) when SciPy is installed, else the exact
two-sided sign-flip permutation test on the paired differences (``--test permutation`` forces
it). The table names the test. With 3 seeds the permutation test cannot go below p = 0.25: read
its p-values as such. Below the table, the comparisons that survive a Holm-Bonferroni correction
over all the table's tests of mAP, mAP@50, mAP@75 and mIoU (family-wise alpha 0.05; ``p_holm`` in
the json) are named: with many rows, some raw p < 0.05 are expected by chance. A plot of the means
with std error bars is ``WORK_DIR/ablation.png``.

``--aggregate-only`` trains nothing and rebuilds the table from the runs on disk.
"""
import argparse
import itertools
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

#: (column, key in compare_runs' normalized metrics, factor to points)
METRICS = [
    ('mAP', 'bbox_mAP', 100.0),
    ('mAP50', 'bbox_mAP_50', 100.0),
    ('mAP75', 'bbox_mAP_75', 100.0),
    ('mIoU', 'mIoU', 100.0),
    ('TIDE_AP50', 'tide_AP', 1.0),
    ('Cls', 'Cls', 1.0), ('Loc', 'Loc', 1.0), ('Both', 'Both', 1.0),
    ('Dupe', 'Dupe', 1.0), ('Bkg', 'Bkg', 1.0), ('Miss', 'Miss', 1.0),
    ('FP', 'FP', 1.0), ('FN', 'FN', 1.0),
]
TESTS = ('auto', 'ttest', 'permutation')


# ----------------------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for one value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = sum(values) / n
    if n == 1:
        return m, math.nan
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def permutation_test(diffs: Sequence[float]) -> float:
    """Exact two-sided sign-flip permutation test of paired differences.

    Under H0 (no difference) each difference is as likely positive as negative; p is the share of
    the 2^n sign assignments whose |mean| is at least the observed one (ties count, so p >=
    2 / 2^n when any difference is non-zero, and p = 1 when all are zero)."""
    diffs = [float(d) for d in diffs]
    n = len(diffs)
    if n == 0:
        return math.nan
    if n > 20:
        raise ValueError('the exact permutation test enumerates 2^n sign flips: n <= 20')
    obs = abs(sum(diffs))
    eps = 1e-12 * max(1.0, obs)
    hits = 0
    for signs in itertools.product((1, -1), repeat=n):
        if abs(sum(s * d for s, d in zip(signs, diffs))) >= obs - eps:
            hits += 1
    return hits / 2 ** n


def paired_test(a: Sequence[float], b: Sequence[float], test: str = 'auto'
                ) -> Tuple[float, str]:
    """p-value of a two-sided paired test of ``a`` vs ``b`` and the test's name.

    ``'ttest'``: ``scipy.stats.ttest_rel`` (NaN when n < 2; when every difference is equal the
    t statistic is undefined and p is 1 for all-zero differences, 0 otherwise);
    ``'permutation'``: :func:`permutation_test`; ``'auto'``: the t-test if SciPy imports."""
    if len(a) != len(b):
        raise ValueError(f'paired samples of different sizes: {len(a)} and {len(b)}')
    if test not in TESTS:
        raise ValueError(f'test must be one of {TESTS}')
    if test == 'auto':
        try:
            import scipy.stats  # noqa: F401
            test = 'ttest'
        except ImportError:
            test = 'permutation'
    diffs = [x - y for x, y in zip(a, b)]
    if test == 'permutation':
        return permutation_test(diffs), 'exact sign-flip permutation test'
    from scipy import stats
    name = 'paired t-test (scipy.stats.ttest_rel)'
    if len(diffs) < 2:
        return math.nan, name
    m, s = mean_std(diffs)
    if s == 0 or math.isnan(s):
        return (1.0 if m == 0 else 0.0), name  # no spread: decided by the sign of the mean
    return float(stats.ttest_rel(a, b).pvalue), name


# ----------------------------------------------------------------------------- runs
def run_name(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def run_dir(work_dir: str, name: str, seed: int) -> str:
    return osp.join(work_dir, name, f'seed{seed}')


def read_metrics(path: str) -> Dict[str, float]:
    """Metrics of one run dir in points, keyed by the columns of :data:`METRICS`."""
    if not osp.isdir(path):
        return {}
    from compare_runs import read_run  # imports bombo (torch): only when needed
    metrics, _ = read_run(path)
    out = {}
    for col, key, factor in METRICS:
        v = metrics.get(key)
        if isinstance(v, (int, float)) and v == v:
            out[col] = float(v) * factor
    return out


def train_one(config: str, out_dir: str, seed: int, cfg_options: Sequence[str] = (),
              threads: int = 1, python: str = sys.executable) -> Tuple[int, float, str]:
    """One ``tools/demo.py`` run (train + evaluate) in a subprocess; (exit code, seconds, log)."""
    os.makedirs(out_dir, exist_ok=True)
    cmd = [python, osp.join(ROOT, 'tools', 'demo.py'), config, '--work-dir', out_dir,
           '--cfg-options', f'randomness.seed={seed}', *cfg_options]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log = osp.join(out_dir, 'run.log')
    start = time.perf_counter()
    with open(log, 'w') as f:
        f.write(' '.join(cmd) + '\n')
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    return rc, time.perf_counter() - start, log


def plan(configs: Sequence[str], names: Sequence[str], seeds: Sequence[int], work_dir: str,
         skip_existing: bool) -> List[Tuple[str, str, int, str]]:
    """(config, name, seed, run dir) of every run to train, in priority order: config order
    first, then seeds, so that the rows listed first are complete first."""
    todo = []
    for config, name in zip(configs, names):
        for seed in seeds:
            d = run_dir(work_dir, name, seed)
            if skip_existing and osp.isfile(osp.join(d, 'summary.json')):
                continue
            todo.append((config, name, seed, d))
    return todo


def run_all(todo, cfg_options=(), jobs: int = 1, threads: int = 1) -> List[str]:
    """Train every planned run, ``jobs`` at a time; returns the failed run dirs."""
    from mmengine.utils import ProgressBar
    failed = []
    if not todo:
        return failed
    bar = ProgressBar(len(todo))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(train_one, c, d, s, cfg_options, threads): (n, s, d)
                   for c, n, s, d in todo}
        for fut in as_completed(futures):
            n, s, d = futures[fut]
            rc, secs, log = fut.result()
            bar.update()
            status = 'ok' if rc == 0 else f'FAILED (exit {rc}, see {log})'
            print(f'\n{n} seed {s}: {status} in {secs:.0f} s', flush=True)
            if rc != 0:
                failed.append(d)
    return failed


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order.

    With ``m`` tests sorted ``p_(1) <= ... <= p_(m)``: ``q_(i) = max_{j <= i} min(1, (m - j + 1)
    p_(j))``; a test is rejected at level alpha iff its ``q <= alpha`` (Holm 1979), which holds the
    family-wise error rate at alpha.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


#: the columns whose paired tests form the family Holm-Bonferroni corrects
FAMILY = ('mAP', 'mAP50', 'mAP75', 'mIoU')


def _apply_holm(rows: List[dict], columns: Sequence[str] = FAMILY) -> int:
    """Store ``p_holm`` in every tested entry of ``columns``; returns the family size."""
    entries = [row['metrics'][c] for row in rows for c in columns
               if c in row['metrics'] and row['metrics'][c].get('p') is not None
               and row['metrics'][c]['p'] == row['metrics'][c]['p']]
    for e, q in zip(entries, holm([e['p'] for e in entries])):
        e['p_holm'] = q
    return len(entries)


# ----------------------------------------------------------------------------- aggregation
def aggregate(work_dir: str, names: Sequence[str], seeds: Sequence[int],
              baseline: Optional[str] = None, test: str = 'auto') -> dict:
    """Per config: the per-seed metrics, mean, std, n, and p against the baseline."""
    baseline = baseline or names[0]
    if baseline not in names:
        raise ValueError(f'baseline {baseline!r} is not one of {list(names)}')
    per_run = {n: {s: read_metrics(run_dir(work_dir, n, s)) for s in seeds} for n in names}
    rows, test_name = [], None
    for name in names:
        runs = {s: m for s, m in per_run[name].items() if m}
        row = dict(name=name, n=len(runs), seeds=sorted(runs), metrics={})
        for col, _, _ in METRICS:
            vals = [runs[s][col] for s in sorted(runs) if col in runs[s]]
            m, sd = mean_std(vals)
            entry = dict(mean=m, std=sd, n=len(vals), values=vals)
            if name != baseline:
                base = per_run[baseline]
                common = [s for s in sorted(runs) if col in runs[s] and col in base.get(s, {})]
                if len(common) >= 2:
                    p, test_name = paired_test([runs[s][col] for s in common],
                                               [base[s][col] for s in common], test)
                    entry.update(p=p, delta=mean_std([runs[s][col] - base[s][col]
                                                      for s in common])[0],
                                 paired_n=len(common))
            row['metrics'][col] = entry
        rows.append(row)
    if test_name is None:
        test_name = paired_test([0.0, 1.0], [0.0, 0.0], test)[1]
    family = _apply_holm(rows)
    return dict(baseline=baseline, test=test_name, seeds=list(seeds), rows=rows,
                family_size=family,
                units='points: COCO mAPs and mIoU x100, TIDE dAP as TIDE reports them')


def _pm(entry: dict, digits: int = 1) -> str:
    m, s = entry.get('mean', math.nan), entry.get('std', math.nan)
    if m != m:
        return ''
    return f'{m:.{digits}f}' if s != s else f'{m:.{digits}f} ± {s:.{digits}f}'


def _p(entry: dict) -> str:
    p = entry.get('p')
    return '' if p is None or p != p else f'{p:.3f}'


def format_markdown(result: dict, columns: Sequence[str] = ('mAP', 'mAP50', 'mAP75', 'mIoU'),
                    tide_columns: Sequence[str] = ('Cls', 'Loc', 'Both', 'Dupe', 'Bkg', 'Miss'),
                    digits: int = 1) -> str:
    """Two markdown tables: the main metrics with p-values, then the TIDE dAPs."""
    head = ['config', 'n'] + [c for col in columns for c in (col, f'p({col})')]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in result['rows']:
        cells = [row['name'], str(row['n'])]
        for col in columns:
            e = row['metrics'].get(col, {})
            cells += [_pm(e, digits), _p(e)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    out = ['\n'.join(lines), '',
           f"mean ± std (sample std, ddof=1) over seeds {result['seeds']}; p: "
           f"{result['test']} against `{result['baseline']}` over the seeds both have "
           f"(two-sided). Units: {result['units']}."]
    family = result.get('family_size') or 0
    if family:
        kept = [f"{row['name']} {c} (p {row['metrics'][c]['p']:.3f}, adjusted "
                f"{row['metrics'][c]['p_holm']:.3f})"
                for row in result['rows'] for c in FAMILY
                if row['metrics'].get(c, {}).get('p_holm', 1.0) <= 0.05]
        out += ['', f'Holm-Bonferroni over the {family} tests of {", ".join(FAMILY)} in this '
                f'table (family-wise alpha = 0.05): '
                + ('; '.join(kept) if kept else 'no difference survives') + '.']
    if tide_columns:
        head = ['config', 'n'] + list(tide_columns)
        lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        for row in result['rows']:
            lines.append('| ' + ' | '.join(
                [row['name'], str(row['n'])]
                + [_pm(row['metrics'].get(c, {}), digits) for c in tide_columns]) + ' |')
        out += ['', 'TIDE dAP@50 per error type (mean ± std; lower is better):', '',
                '\n'.join(lines)]
    return '\n'.join(out) + '\n'


def format_csv(result: dict) -> str:
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator='\n')
    cols = [c for c, _, _ in METRICS]
    keys = ('mean', 'std', 'p', 'p_holm')
    w.writerow(['config', 'n'] + [f'{c}_{k}' for c in cols for k in keys] + ['test'])
    for row in result['rows']:
        cells = [row['name'], row['n']]
        for c in cols:
            e = row['metrics'].get(c, {})
            cells += [_num(e.get(k)) for k in keys]
        w.writerow(cells + [result['test']])
    return buf.getvalue()


def _num(v):
    return '' if v is None or (isinstance(v, float) and v != v) else f'{v:.6g}'


def plot(result: dict, path: str, columns: Sequence[str] = ('mAP', 'mAP50', 'mAP75', 'mIoU')
         ) -> str:
    """Grouped bars of the means with std error bars, one group per metric."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    rows = result['rows']
    x = np.arange(len(columns))
    width = 0.8 / max(1, len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(columns) * max(1, len(rows)) / 3), 4))
    for i, row in enumerate(rows):
        means = [row['metrics'].get(c, {}).get('mean', np.nan) for c in columns]
        stds = [row['metrics'].get(c, {}).get('std', np.nan) for c in columns]
        stds = [0 if s != s else s for s in stds]
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
               label=f"{row['name']} (n={row['n']})")
    ax.set_xticks(x)
    ax.set_xticklabels(columns)
    ax.set_ylabel('points (mean ± std over seeds)')
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(result: dict, prefix: str) -> List[str]:
    os.makedirs(osp.dirname(osp.abspath(prefix)), exist_ok=True)
    paths = []
    for ext, text in (('md', format_markdown(result)), ('csv', format_csv(result)),
                      ('json', json.dumps(result, indent=2, default=_json_default))):
        with open(f'{prefix}.{ext}', 'w') as f:
            f.write(text)
        paths.append(f'{prefix}.{ext}')
    paths.append(plot(result, f'{prefix}.png'))
    return paths


def _json_default(v):
    return None if isinstance(v, float) and v != v else str(v)


# ----------------------------------------------------------------------------- CLI
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('configs', nargs='+', help='config files; the first is the baseline unless '
                   '--baseline names another')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2],
                   help='seeds (randomness.seed) of every config')
    p.add_argument('--work-dir', default='work_dirs/ablation',
                   help='runs go to WORK_DIR/<name>/seed<S>/')
    p.add_argument('--names', nargs='+', default=None,
                   help='row names (default: the config file names)')
    p.add_argument('--baseline', default=None, help='row name of the baseline (default: first)')
    p.add_argument('--jobs', type=int, default=1, help='trainings run at once')
    p.add_argument('--threads', type=int, default=1,
                   help='OMP_NUM_THREADS / MKL_NUM_THREADS of each training')
    p.add_argument('--skip-existing', action='store_true',
                   help='keep runs whose summary.json exists (resume)')
    p.add_argument('--aggregate-only', action='store_true',
                   help='train nothing; rebuild the table from the runs on disk')
    p.add_argument('--test', default='auto', choices=TESTS,
                   help='paired test: auto = t-test if SciPy is installed, else permutation')
    p.add_argument('--out-prefix', default=None,
                   help='table/plot prefix (default: WORK_DIR/ablation)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='KEY=VALUE overrides passed to every run (after randomness.seed)')
    args = p.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.configs):
        p.error(f'{len(args.names)} names for {len(args.configs)} configs')
    if args.jobs < 1 or args.threads < 1:
        p.error('--jobs and --threads must be >= 1')
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f'duplicate seeds: {args.seeds}')
    if not args.aggregate_only:
        missing = [c for c in args.configs if not osp.isfile(c)]
        if missing:
            p.error(f'config(s) not found: {missing}')
    names = args.names or [run_name(c) for c in args.configs]
    if len(set(names)) != len(names):
        p.error(f'duplicate row names {names}: give --names')
    if args.baseline is not None and args.baseline not in names:
        p.error(f'--baseline {args.baseline!r} is not one of {names}')
    args.names = names
    return args


def main(argv=None):
    args = parse_args(argv)
    failed = []
    if not args.aggregate_only:
        todo = plan(args.configs, args.names, args.seeds, args.work_dir, args.skip_existing)
        print(f'{len(todo)} run(s) to train, {args.jobs} at a time, '
              f'{args.threads} thread(s) each', flush=True)
        failed = run_all(todo, args.cfg_options, args.jobs, args.threads)
    result = aggregate(args.work_dir, args.names, args.seeds, args.baseline, args.test)
    paths = write_outputs(result, args.out_prefix or osp.join(args.work_dir, 'ablation'))
    print('\n' + format_markdown(result))
    print('written: ' + ', '.join(paths))
    if failed:
        print(f'{len(failed)} run(s) failed: {failed}', file=sys.stderr)
        sys.exit(1)
    return result


if __name__ == '__main__':
    main()
