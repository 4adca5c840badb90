"""tools/analysis_tools/ablation.py: statistics and aggregation on fabricated
run outputs (values computed by hand), the CLI, and one tiny end-to-end run
(2 configs x 2 seeds x 2 iterations on a generated 16-image dataset)."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'analysis_tools' / 'ablation.py'


def _load():
    sys.path.insert(0, str(TOOL.parent))
    spec = importlib.util.spec_from_file_location('ablation', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ab = _load()


def _summary(d: Path, mAP, mAP50, mIoU, miss=None):
    d.mkdir(parents=True)
    s = dict(bbox_mAP=mAP, bbox_mAP_50=mAP50, bbox_mAP_75=mAP / 2, mIoU=mIoU,
             train_seconds=1.0, iterations=2, config='x.py')
    if miss is not None:
        s['tide'] = dict(AP50=mAP50 * 100, Cls=1.0, Loc=2.0, Both=0.0,
                         Dupe=0.0, Bkg=0.5, Miss=miss, FP=3.0, FN=4.0)
    (d / 'summary.json').write_text(json.dumps(s))


def test_mean_std_sample_std():
    assert ab.mean_std([10.0, 20.0, 30.0]) == (20.0, 10.0)
    m, s = ab.mean_std([5.0])
    assert m == 5.0 and math.isnan(s)
    assert all(math.isnan(v) for v in ab.mean_std([]))


def test_permutation_test_exact():
    # all three differences positive: only the all-+ and all-- sign vectors
    # reach |sum| >= 6 -> 2 / 8
    assert ab.permutation_test([2.0, 3.0, 1.0]) == pytest.approx(0.25)
    # diffs 1, -1, 2: |sum|=2; sign vectors with |sum| >= 2: (+-+) 2,
    # (-+-) -2, (+++) 2, (---) -2, (-++) 2? -1-1+2=0 no; (+--) 1+1-2=0 no;
    # (++-) 1-1-2=-2 yes; (--+) -1+1+2=2 yes -> 6/8
    assert ab.permutation_test([1.0, -1.0, 2.0]) == pytest.approx(0.75)
    assert ab.permutation_test([0.0, 0.0]) == 1.0


def test_paired_ttest_hand_computed():
    pytest.importorskip('scipy')
    # diffs 2, 3, 1: mean 2, sd 1, t = 2 / (1 / sqrt 3) = sqrt 12, df = 2;
    # two-sided p for df = 2: 1 - t / sqrt(2 + t^2) = 1 - sqrt(12 / 14)
    p, name = ab.paired_test([12.0, 23.0, 31.0], [10.0, 20.0, 30.0], 'ttest')
    assert p == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-9)
    assert 't-test' in name
    p, name = ab.paired_test([12.0, 23.0, 31.0], [10.0, 20.0, 30.0],
                             'permutation')
    assert p == pytest.approx(0.25) and 'permutation' in name
    with pytest.raises(ValueError, match='different sizes'):
        ab.paired_test([1.0], [1.0, 2.0])


def test_aggregate_fabricated_runs(tmp_path):
    # baseline mAP 0.10 0.20 0.30 -> points 10 20 30; variant 0.12 0.23 0.31
    for s, (a, b) in enumerate([(0.10, 0.12), (0.20, 0.23), (0.30, 0.31)]):
        _summary(tmp_path / 'base' / f'seed{s}', a, 2 * a, 0.5, miss=10.0 + s)
        _summary(tmp_path / 'var' / f'seed{s}', b, 2 * b, 0.6, miss=8.0)
    res = ab.aggregate(str(tmp_path), ['base', 'var'], [0, 1, 2],
                       test='permutation')
    base, var = res['rows']
    assert base['n'] == var['n'] == 3
    assert base['metrics']['mAP']['mean'] == pytest.approx(20.0)
    assert base['metrics']['mAP']['std'] == pytest.approx(10.0)
    assert var['metrics']['mAP']['mean'] == pytest.approx(22.0)
    assert var['metrics']['mAP']['delta'] == pytest.approx(2.0)
    assert var['metrics']['mAP']['p'] == pytest.approx(0.25)
    assert var['metrics']['mAP75']['mean'] == pytest.approx(11.0)
    assert base['metrics']['mIoU']['mean'] == pytest.approx(50.0)
    assert base['metrics']['mIoU']['std'] == pytest.approx(0.0)
    assert base['metrics']['Miss']['mean'] == pytest.approx(11.0)
    assert base['metrics']['Miss']['std'] == pytest.approx(1.0)
    assert 'p' not in base['metrics']['mAP']
    md = ab.format_markdown(res)
    assert '| base | 3 | 20.0 ± 10.0 |' in md
    assert '| var | 3 | 22.0 ± 9.5 | 0.250 |' in md  # std of 12, 23, 31
    assert 'exact sign-flip permutation test' in md
    paths = ab.write_outputs(res, str(tmp_path / 'out' / 'abl'))
    assert all(Path(p).is_file() for p in paths)
    csv_rows = Path(paths[1]).read_text().splitlines()
    assert csv_rows[0].startswith('config,n,mAP_mean,mAP_std,mAP_p')
    assert json.loads(Path(paths[2]).read_text())['rows'][1]['name'] == 'var'


def test_holm_hand_computed():
    # sorted 0.01, 0.02, 0.04, 0.30 (m = 4): 4 x 0.01 = 0.04, 3 x 0.02 = 0.06,
    # 2 x 0.04 = 0.08, 1 x 0.30 = 0.30; monotone, back in input order
    assert ab.holm([0.04, 0.30, 0.01, 0.02]) == pytest.approx(
        [0.08, 0.30, 0.04, 0.06])
    # step-down monotonicity: 3 x 0.02 = 0.06 > 2 x 0.025 = 0.05 -> 0.06
    assert ab.holm([0.02, 0.025, 0.9]) == pytest.approx([0.06, 0.06, 0.9])
    assert ab.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped
    assert ab.holm([]) == []


def test_holm_over_the_table(tmp_path):
    """Two variants, 4 metrics each: a family of 8 tests; only a difference
    that is large against its spread survives."""
    rng = [0.00, 0.013, -0.011]
    for s in range(3):
        _summary(tmp_path / 'base' / f'seed{s}', 0.2 + 0.1 * s, 0.4, 0.5)
        # 'big': mAP +10 points with noise of 0.1-0.2: p tiny; 'small': noise
        _summary(tmp_path / 'big' / f'seed{s}', 0.3 + 0.1 * s + rng[s] / 10,
                 0.4, 0.5 + rng[s])
        _summary(tmp_path / 'small' / f'seed{s}', 0.2 + 0.1 * s + rng[s],
                 0.4, 0.5 + rng[s])
    res = ab.aggregate(str(tmp_path), ['base', 'big', 'small'], [0, 1, 2],
                       test='ttest')
    big, small = res['rows'][1]['metrics'], res['rows'][2]['metrics']
    tested = [e for m in (big, small) for e in m.values() if 'p_holm' in e]
    raw = [e['p'] for e in tested]
    assert res['family_size'] == len(tested)
    assert [e['p_holm'] for e in tested] == pytest.approx(ab.holm(raw))
    assert big['mAP']['p_holm'] < 0.05 and small['mAP']['p_holm'] > 0.05
    md = ab.format_markdown(res)
    assert f"Holm-Bonferroni over the {len(tested)} tests" in md
    assert 'big mAP (p ' in md and 'small mAP (p' not in md
    csv_head = ab.format_csv(res).splitlines()[0]
    assert 'mAP_p_holm' in csv_head


def test_aggregate_missing_seed_pairs_only_common(tmp_path):
    for s in (0, 1, 2):
        _summary(tmp_path / 'base' / f'seed{s}', 0.1 * (s + 1), 0.2, 0.5)
    for s in (0, 1):  # seed 2 failed
        _summary(tmp_path / 'var' / f'seed{s}', 0.1 * (s + 1) + 0.01, 0.2, 0.5)
    res = ab.aggregate(str(tmp_path), ['base', 'var'], [0, 1, 2],
                       test='permutation')
    var = res['rows'][1]
    assert var['n'] == 2 and var['metrics']['mAP']['paired_n'] == 2
    assert var['metrics']['mAP']['p'] == pytest.approx(0.5)  # 2 / 4
    with pytest.raises(ValueError, match='baseline'):
        ab.aggregate(str(tmp_path), ['base', 'var'], [0], baseline='nope')


def test_plan_skip_existing(tmp_path):
    _summary(tmp_path / 'a' / 'seed0', 0.1, 0.2, 0.3)
    todo = ab.plan(['x/a.py', 'x/b.py'], ['a', 'b'], [0, 1], str(tmp_path),
                   skip_existing=True)
    assert [(n, s) for _, n, s, _ in todo] == [('a', 1), ('b', 0), ('b', 1)]
    assert len(ab.plan(['x/a.py'], ['a'], [0, 1], str(tmp_path), False)) == 2


def test_cli_help_and_bad_input(tmp_path):
    out = subprocess.run([sys.executable, str(TOOL), '--help'], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert '--aggregate-only' in out and '(default: 1)' in out
    assert list(tmp_path.iterdir()) == []
    r = subprocess.run([sys.executable, str(TOOL), 'missing.py'], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 2 and 'not found' in r.stderr
    r = subprocess.run([sys.executable, str(TOOL), 'a.py', 'b.py', '--names',
                        'x', '--aggregate-only'], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 2 and '1 names for 2 configs' in r.stderr


def test_aggregate_only_cli(tmp_path):
    for s in (0, 1):
        _summary(tmp_path / 'runs' / 'base' / f'seed{s}', 0.1 + s / 10, 0.2,
                 0.5)
        _summary(tmp_path / 'runs' / 'var' / f'seed{s}', 0.2 + s / 10, 0.2,
                 0.5)
    out = subprocess.run(
        [sys.executable, str(TOOL), 'cfg/base.py', 'cfg/var.py', '--seeds',
         '0', '1', '--work-dir', str(tmp_path / 'runs'), '--aggregate-only',
         '--test', 'permutation'], cwd=tmp_path, capture_output=True,
        text=True, check=True).stdout
    assert '| var | 2 | 25.0 ± 7.1 | 0.500 |' in out
    assert (tmp_path / 'runs' / 'ablation.png').is_file()


def test_end_to_end_tiny(tmp_path):
    """2 configs x 2 seeds x 2 iterations on 16 generated images (~30 s)."""
    sys.path.insert(0, str(ROOT / 'tools'))
    import make_toy_dataset
    data = tmp_path / 'toy'
    make_toy_dataset.generate(str(data), seed=0, size=64, num_det=6,
                              num_seg=6, num_val=4)
    cfg_dir = tmp_path / 'cfg'
    cfg_dir.mkdir()
    base = ROOT / 'configs' / 'toy' / 'toy_r18_fpn_mtl.py'
    for name, extra in (('base', ''), ('lam2', 'model = dict(seg_weight=2.0)\n')):
        (cfg_dir / f'{name}.py').write_text(
            f"_base_ = '{base}'\n" + extra)
    opts = [f'data_root={data}/', 'train_cfg.max_iters=2',
            'train_dataloader.batch_size=4',
            'train_dataloader.sampler.batch_size=4',
            'default_hooks.logger.interval=1']
    work = tmp_path / 'work'
    cmd = [sys.executable, str(TOOL), str(cfg_dir / 'base.py'),
           str(cfg_dir / 'lam2.py'), '--seeds', '0', '1', '--work-dir',
           str(work), '--jobs', '2', '--cfg-options', *opts]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((work / 'ablation.json').read_text())
    assert [row['n'] for row in res['rows']] == [2, 2]
    for name in ('base', 'lam2'):
        for s in (0, 1):
            log = (work / name / f'seed{s}' / 'run.log').read_text()
            assert f'randomness.seed={s}' in log
    assert 'p(mAP)' in (work / 'ablation.md').read_text()
    # resume: nothing left to train
    r = subprocess.run(cmd + ['--skip-existing'], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '0 run(s) to train' in r.stdout
