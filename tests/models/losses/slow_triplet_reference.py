"""Independent, slow triplet losses (explicit triple loops over every
anchor / positive / negative) shared by the loss tests."""
import math

import numpy as np


def slow_dist(x, squared):
    n = len(x)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            s = sum((x[i, k] - x[j, k]) ** 2 for k in range(x.shape[1]))
            d[i, j] = s if squared else math.sqrt(s)
    return d


def slow_batch_all(x, y, margin, squared=False, reduction='mean_positive',
                   amask=None, pmask=None, nmask=None):
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    amask = np.ones(n, bool) if amask is None else amask
    pmask = np.ones(n, bool) if pmask is None else pmask
    nmask = np.ones(n, bool) if nmask is None else nmask
    d = slow_dist(x, squared)
    total, n_valid, n_pos = 0.0, 0, 0
    for a in range(n):
        for p in range(n):
            for q in range(n):
                if not (a != p and y[a] == y[p] and y[a] != y[q]):
                    continue
                if not (amask[a] and pmask[p] and nmask[q]):
                    continue
                n_valid += 1
                l = d[a, p] - d[a, q] + margin
                if l > 0:
                    total += l
                    n_pos += 1
    if reduction == 'mean_positive':
        return (total / n_pos if n_pos else 0.0), n_valid, n_pos
    if reduction == 'mean':
        return (total / n_valid if n_valid else 0.0), n_valid, n_pos
    return total, n_valid, n_pos


def slow_batch_hard(x, y, margin, reduction='mean'):
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    d = slow_dist(x, False)
    losses = []
    for a in range(n):
        best_p, best_n = None, None
        for p in range(n):
            for q in range(n):
                if a != p and y[a] == y[p] and y[a] != y[q]:
                    dp, dn = d[a, p], d[a, q]
                    best_p = dp if best_p is None else max(best_p, dp)
                    best_n = dn if best_n is None else min(best_n, dn)
        if best_p is not None:
            losses.append(max(0.0, best_p - best_n + margin))
    if not losses:
        return 0.0
    if reduction == 'mean':
        return sum(losses) / len(losses)
    if reduction == 'mean_positive':
        pos = [v for v in losses if v > 0]
        return sum(pos) / len(pos) if pos else 0.0
    return sum(losses)
