"""Box labels: features by hand, K-means fit, save/load, torch == numpy."""
import numpy as np
import pytest
import torch

from bombo.models.task_modules.box_labels import (BoxLabeler, box_features,
                                                  elbow_inertias)


def test_box_features_by_hand():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 25, 10], [0, 0, 4, 16]])
    f = box_features(boxes)
    np.testing.assert_allclose(f[:, 0], [10, 20, 4])
    np.testing.assert_allclose(f[:, 1], [10, 5, 16])
    np.testing.assert_allclose(f[:, 2], [100, 100, 64])
    np.testing.assert_allclose(f[:, 3], [0.0, 0.75, 0.75], atol=1e-9)
    ft = box_features(torch.tensor(boxes, dtype=torch.float32))
    np.testing.assert_allclose(ft.numpy(), f, rtol=1e-6)


def three_kinds(n=30, seed=0):
    """Small squares, large squares, thin boxes: three obvious clusters."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(8, 12, n)
    big = rng.uniform(80, 90, n)
    thin = rng.uniform(3, 4, n)
    boxes = np.concatenate([
        np.c_[np.zeros(n), np.zeros(n), s, s],
        np.c_[np.zeros(n), np.zeros(n), big, big],
        np.c_[np.zeros(n), np.zeros(n), thin, thin * 10]])
    return boxes, np.repeat([0, 1, 2], n)


def test_fit_recovers_three_kinds_and_roundtrips(tmp_path):
    boxes, kind = three_kinds()
    lab = BoxLabeler.fit(boxes, class_labels=kind, n_clusters=3, seed=0)
    pred = lab.predict(boxes)
    # a perfect clustering up to a permutation of cluster ids
    for k in range(3):
        assert len(set(pred[kind == k])) == 1
    assert len(set(pred)) == 3
    assert lab.mutual_info is not None and (lab.mutual_info > 0).all()
    path = tmp_path / 'box_labels.json'
    lab.save(str(path))
    lab2 = BoxLabeler.load(str(path))
    np.testing.assert_array_equal(lab2.predict(boxes), pred)
    # torch path (any device) agrees with numpy
    tb = torch.tensor(boxes, dtype=torch.float32)
    np.testing.assert_array_equal(lab2.predict(tb).numpy(), pred)
    np.testing.assert_allclose(lab2.relevance(tb).numpy(),
                               lab2.relevance(boxes), rtol=1e-5)


def test_normalisation_uses_training_min_max_and_clips():
    boxes, _ = three_kinds()
    lab = BoxLabeler.fit(boxes, n_clusters=3)
    f = lab.features(boxes)
    np.testing.assert_allclose(f.min(0), 0, atol=1e-12)
    np.testing.assert_allclose(f.max(0), 1, atol=1e-12)
    huge = lab.features(np.array([[0, 0, 1000, 1000]]))
    assert huge.max() == 1.0
    with pytest.raises(ValueError, match='mutual information'):
        lab.relevance(boxes)


def test_relevance_is_eq5():
    boxes, kind = three_kinds()
    lab = BoxLabeler.fit(boxes, class_labels=kind)
    f = lab.features(boxes)
    ref = [sum(f[i, j] * lab.mutual_info[j] for j in range(4))
           for i in range(len(f))]
    np.testing.assert_allclose(lab.relevance(boxes), ref)


def test_elbow_is_decreasing_with_a_knee_at_three():
    boxes, _ = three_kinds()
    inertia = elbow_inertias(boxes, k_values=[1, 2, 3, 4], n_init=3)
    assert all(a >= b for a, b in zip(inertia, inertia[1:]))
    assert inertia[2] < 0.05 * inertia[0]


def test_too_few_boxes():
    with pytest.raises(ValueError, match='clusters'):
        BoxLabeler.fit(np.array([[0, 0, 1, 1], [0, 0, 2, 2]]), n_clusters=3)
