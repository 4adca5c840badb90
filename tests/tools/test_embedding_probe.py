"""tools/embedding_probe.py on a small synthetic .npz."""
import importlib.util
import os.path as osp

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
spec = importlib.util.spec_from_file_location(
    'embedding_probe', osp.join(ROOT, 'tools', 'embedding_probe.py'))
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


def synthetic(n_per_class=30, seed=0):
    """Embeddings = class mean + a linear code of the box size + noise."""
    rng = np.random.default_rng(seed)
    n = 3 * n_per_class
    cls = np.repeat([0, 1, 2], n_per_class)
    wh = rng.uniform(5, 50, (n, 2))
    boxes = np.c_[np.zeros((n, 2)), wh].astype(np.float32)
    means = rng.normal(0, 3, (3, 8))
    code = np.c_[wh / 50, wh.prod(1, keepdims=True) / 2500]
    emb = means[cls] + code @ rng.normal(0, 2, (3, 8)) + \
        rng.normal(0, 0.1, (n, 8))
    return emb.astype(np.float32), cls, boxes


def test_run_probe_scores_informative_embeddings():
    emb, cls, boxes = synthetic()
    args = probe.parse_args(['--k-folds', '3', '--epochs', '2',
                             '--batch-size', '32'])
    res = probe.run_probe(emb, cls, boxes, args, probe.SETTINGS)
    assert set(res) == set(probe.SETTINGS)
    for r in res.values():
        assert len(r['acc']) == 3 and np.isfinite(r['r2']).all()
    assert np.mean(res['none']['acc']) > 0.95   # separable classes
    assert np.mean(res['none']['r2']) > 0.5     # box size is linear in emb
    # random embeddings carry no class information
    rng = np.random.default_rng(1)
    res_rand = probe.run_probe(rng.normal(size=emb.shape).astype(np.float32),
                               cls, boxes, args, ['none'])
    assert np.mean(res_rand['none']['acc']) < 0.6


def test_main_reads_npz_and_prints_table(tmp_path, capsys):
    emb, cls, boxes = synthetic(12)
    path = tmp_path / 'e.npz'
    np.savez(path, embeddings=emb, class_labels=cls, boxes=boxes)
    probe.main(['--npz', str(path), '--k-folds', '2', '--epochs', '1',
                '--settings', 'none', 'matl', '--out',
                str(tmp_path / 'r.json')])
    out = capsys.readouterr().out
    assert '36 boxes' in out and 'matl' in out and 'none' in out
    assert 'R@8' in out and 'NMI' in out
    import json
    saved = json.loads((tmp_path / 'r.json').read_text())
    assert len(saved['results']['matl']['recall@1']) == 2
    assert saved['args']['k_folds'] == 2


def test_one_class_is_a_clear_error():
    emb, _, boxes = synthetic(10)
    args = probe.parse_args(['--k-folds', '2'])
    with pytest.raises(ValueError, match='two classes'):
        probe.run_probe(emb, np.zeros(len(emb), int), boxes, args, ['none'])


# --------------------------------------------------------------- metrics
def test_recall_and_nmi_perfectly_separated():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    y = np.repeat([0, 1, 2], 5)
    x = centres[y] + rng.uniform(-0.5, 0.5, (15, 2))
    r = probe.recall_at_k(x, y, (1, 2, 4, 8))
    assert r == {1: 1.0, 2: 1.0, 4: 1.0, 8: 1.0}
    assert probe.nmi_score(x, y, seed=0) == pytest.approx(1.0)
    # NMI ignores the cluster ids: permuted labels score the same
    assert probe.nmi_score(x, (y + 1) % 3, seed=0) == pytest.approx(1.0)


def test_recall_hand_computed_mixed_case():
    # 1-D points (no distance ties): class A at 0, 1, 5; class B at 2.2,
    # 6, 7.5. Each query's other points by distance (class of each):
    #   q0 x=0   A: 1 (A)                              -> hit at rank 1
    #   q1 x=1   A: 0 (A) 1, 2.2 (B) 1.2               -> hit at rank 1
    #   q2 x=5   A: 6 (B) 1, 7.5 (B) 2.5, 2.2 (B) 2.8, 1 (A) 4  -> rank 4
    #   q3 x=2.2 B: 1 (A) 1.2, 0 (A) 2.2, 5 (A) 2.8, 6 (B) 3.8  -> rank 4
    #   q4 x=6   B: 5 (A) 1, 7.5 (B) 1.5               -> hit at rank 2
    #   q5 x=7.5 B: 6 (B) 1.5                          -> hit at rank 1
    # R@1 = 3/6, R@2 = R@3 = 4/6, R@4 = 6/6
    x = np.array([[0.], [1.], [5.], [2.2], [6.], [7.5]])
    y = np.array([0, 0, 0, 1, 1, 1])
    r = probe.recall_at_k(x, y, (1, 2, 3, 4))
    assert r[1] == pytest.approx(3 / 6) and r[2] == pytest.approx(4 / 6)
    assert r[3] == pytest.approx(4 / 6) and r[4] == pytest.approx(1.0)


def test_nmi_hand_computed_mixed_case():
    # two well-separated groups of 4; labels split 3/1 and 1/3:
    # clusters {0..3}, {4..7}; labels 0 0 0 1 | 0 1 1 1
    x = np.r_[np.zeros((4, 1)), np.full((4, 1), 10.)] + \
        np.arange(8)[:, None] * 1e-3
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    # H(Y) = H(C) = ln 2; I = ln 2 - H(Y|C), H(Y|C) = H(3/4, 1/4)
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    expected = (np.log(2) - h) / np.log(2)   # arithmetic mean of H's
    assert probe.nmi_score(x, y, seed=0) == pytest.approx(expected)
    assert expected == pytest.approx(0.18872, abs=1e-5)


def test_metric_errors():
    x, y = np.zeros((4, 2)), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match='K must be'):
        probe.recall_at_k(x, y, (4, ))
    with pytest.raises(ValueError, match='non-finite'):
        probe.recall_at_k(np.full((4, 2), np.nan), y, (1, ))
    with pytest.raises(ValueError, match='two classes'):
        probe.nmi_score(x, np.zeros(4), 0)


# -------------------------------------------------------------- protocol
def test_probe_reports_recall_and_nmi():
    emb, cls, boxes = synthetic()
    args = probe.parse_args(['--k-folds', '2', '--epochs', '1',
                             '--recall-k', '1', '3', '--no-progress'])
    res = probe.run_probe(emb, cls, boxes, args, ['none'])
    assert set(res['none']) == {'acc', 'r2', 'nmi', 'recall@1', 'recall@3'}
    assert np.mean(res['none']['recall@1']) > 0.95   # separable classes
    assert np.mean(res['none']['nmi']) > 0.9


def test_tgmatl_protocol_fixed_test_split_and_folds():
    emb, cls, boxes = synthetic(40)
    args = probe.resolve_args(probe.parse_args(
        ['--protocol', 'tgmatl', '--seed', '3']))
    assert args.k_folds == 8 and args.epochs == 30
    splits = probe.make_splits(cls, boxes, args)
    assert len(splits) == 8
    test = splits[0][1]
    assert len(test) == 84   # 70 % of 120
    for tr, te in splits:
        np.testing.assert_array_equal(te, test)   # the same test set
        assert not set(tr) & set(test)
    # the training parts are 7 of 8 folds of the remaining 36
    assert all(len(tr) in (31, 32) for tr, _ in splits)
    train_union = set().union(*(set(tr) for tr, _ in splits))
    assert train_union == set(range(120)) - set(test)
    # test split stratified on class x box label (the reference's)
    from bombo.models.task_modules.box_labels import BoxLabeler
    box = BoxLabeler.fit(boxes, seed=3).predict(boxes)
    strata = cls * 3 + box
    for c in np.unique(strata):
        n, n_test = (strata == c).sum(), (strata[test] == c).sum()
        assert abs(n_test - 0.7 * n) <= 1
    assert abs(np.bincount(cls[test]) - 28).max() <= 1
    # seeded: same splits again, different with another seed
    again = probe.make_splits(cls, boxes, args)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(splits, again))
    other = probe.make_splits(cls, boxes, probe.resolve_args(
        probe.parse_args(['--protocol', 'tgmatl', '--seed', '4'])))
    assert not np.array_equal(other[0][1], test)


def test_quick_and_explicit_flags():
    a = probe.resolve_args(probe.parse_args(['--quick']))
    assert (a.k_folds, a.epochs) == (3, 10)
    a = probe.resolve_args(probe.parse_args(['--quick', '--epochs', '4']))
    assert (a.k_folds, a.epochs) == (3, 4)
    a = probe.resolve_args(probe.parse_args([]))
    assert (a.k_folds, a.epochs) == (5, 30)
    with pytest.raises(ValueError, match='test-size'):
        probe.resolve_args(probe.parse_args(['--test-size', '1.5']))


def test_tg_modes_reach_the_loss(monkeypatch):
    emb, cls, boxes = synthetic(12)
    sizes = np.full((len(emb), 2), 64)
    seen = []
    real = probe.tg_matl_loss

    def spy(*a, **kw):
        seen.append((kw['random_mode'], kw['mask_negatives'],
                     a[3].detach().clone()))
        return real(*a, **kw)
    monkeypatch.setattr(probe, 'tg_matl_loss', spy)
    base = ['--k-folds', '2', '--epochs', '1', '--batch-size', '64',
            '--no-progress']
    probe.run_probe(emb, cls, boxes, probe.parse_args(base), ['tg_matl'],
                    sizes)
    default = seen[:]
    seen.clear()
    probe.run_probe(emb, cls, boxes, probe.parse_args(
        base + ['--tg-relevance', 'xcycwh', '--tg-selection', 'next',
                '--tg-mask-negatives']), ['tg_matl'], sizes)
    assert {(m, n) for m, n, _ in default} == {('random', False)}
    assert {(m, n) for m, n, _ in seen} == {('next', True)}
    # default relevance = the box labeler's (v0.1 values), xcycwh differs
    from bombo.models.losses.tg_matl import TGMATLRelevance
    from bombo.models.task_modules.box_labels import BoxLabeler
    from sklearn.model_selection import StratifiedKFold
    tr, _ = next(StratifiedKFold(2, shuffle=True, random_state=0).split(
        emb, cls))
    shape = BoxLabeler.fit(boxes[tr], cls[tr], seed=0).relevance(boxes[tr])
    xy = TGMATLRelevance.fit(boxes[tr], cls[tr], 'xcycwh', sizes[tr],
                             seed=0).score(boxes[tr], sizes[tr])
    assert sorted(default[0][2].tolist()) == pytest.approx(
        sorted(shape.tolist()), rel=1e-6)
    assert sorted(seen[0][2].tolist()) == pytest.approx(
        sorted(xy.tolist()), rel=1e-6)


def test_help_is_harmless(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        probe.parse_args(['--help'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ('--protocol', '--quick', '--recall-k', '--tg-relevance',
                 '--tg-selection', '--tg-mask-negatives', '--test-size'):
        assert flag in out
    assert '(default:' in out
