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
                '--settings', 'none', 'matl'])
    out = capsys.readouterr().out
    assert '36 boxes' in out and 'matl' in out and 'none' in out


def test_one_class_is_a_clear_error():
    emb, _, boxes = synthetic(10)
    args = probe.parse_args(['--k-folds', '2'])
    with pytest.raises(ValueError, match='two classes'):
        probe.run_probe(emb, np.zeros(len(emb), int), boxes, args, ['none'])
