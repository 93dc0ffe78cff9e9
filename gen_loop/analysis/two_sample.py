"""Two-sample permutation tests on embeddings: a domain classifier's AUC and MMD².

Pure functions of arrays, used by :mod:`gen_loop.analysis.shift` for the verdict. Every p-value
is a permutation p-value with the ``+1`` correction, ``(1 + #{T_perm >= T}) / (1 + n_perm)``,
which is never 0 and is exactly valid: under "same distribution" it is at most ``t`` with
probability at most ``t``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from gen_loop.analysis._features import pca_features
from gen_loop.analysis._logistic import fit_logistic_batch, logistic_decision

__all__ = [
    "MIN_PER_SET",
    "auc_permutation_test",
    "median_bandwidth",
    "mmd2_unbiased",
    "mmd_permutation_test",
    "shared_features",
]

#: Fewest images per set the tests accept.
MIN_PER_SET = 2


def shared_features(a: np.ndarray, b: np.ndarray, max_dim: int) -> np.ndarray:
    """Pool two sets and keep their first ``max_dim`` PCA scores (see :func:`pca_features`).

    Args:
        a: First set ``(n_a, D)``.
        b: Second set ``(n_b, D)``.
        max_dim: Most principal components kept (also at most ``n_a + n_b - 1`` and ``D``).

    Returns:
        ``(n_a + n_b, k)`` float64 PCA scores (not whitened), rows of ``a`` first.
    """
    return pca_features(np.vstack([np.asarray(a, np.float64), np.asarray(b, np.float64)]), max_dim)


def _stratified_folds(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold index of every sample for each row of ``labels`` ``(B, n)``: within each class the
    samples are dealt to the ``k`` folds in a random order."""
    keys = labels + rng.random(labels.shape)
    order = np.argsort(keys, axis=1)
    n_zero = (labels == 0).sum(axis=1, keepdims=True)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(labels.shape[1])[None, :], axis=1)
    rank_in_class = np.where(labels == 1, position - n_zero, position)
    return rank_in_class % k


def _auc_rows(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of each row (Mann-Whitney, ties counted half)."""
    ranks = rankdata(scores, axis=1)
    n_pos = labels.sum(axis=1)
    n_neg = labels.shape[1] - n_pos
    rank_sum = np.sum(ranks * labels, axis=1)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def auc_permutation_test(
    features: np.ndarray,
    labels: np.ndarray,
    n_permutations: int,
    folds: int,
    rng: np.random.Generator,
    c: float = 1.0,
) -> tuple[float, float]:
    """Cross-validated domain-classifier AUC and its permutation p-value.

    Args:
        features: ``(n, k)`` test features (whitened here).
        labels: ``(n,)`` 0/1 set membership.
        n_permutations: label permutations for the p-value (at least 1).
        folds: stratified folds (reduced to the smaller class size, at least 2).
        rng: randomness for folds and permutations.
        c: inverse L2 strength of the logistic regression.

    Returns:
        ``(auc, p_value)``.
    """
    x = features / np.maximum(features.std(axis=0), 1e-12)
    y = np.asarray(labels, dtype=np.float64)
    k = max(2, min(folds, int(y.sum()), int(len(y) - y.sum())))
    perms = np.vstack([y, np.array([rng.permutation(y) for _ in range(n_permutations)])])
    fold_of = _stratified_folds(perms, k, rng)  # (P, n)
    scores = np.empty_like(perms)
    for fold in range(k):
        train = (fold_of != fold).astype(np.float64)
        theta = fit_logistic_batch(x, perms, train, c=c)
        decision = logistic_decision(theta, x)
        test = fold_of == fold
        scores[test] = decision[test]
    aucs = _auc_rows(scores, perms)
    observed = float(aucs[0])
    p = (1.0 + float(np.sum(aucs[1:] >= observed - 1e-12))) / (1.0 + n_permutations)
    return observed, p


def median_bandwidth(x: np.ndarray) -> float:
    """Median heuristic: the median Euclidean distance over distinct pairs of rows of ``x``
    (1.0 if every row is the same)."""
    sq = _sq_distances(x)
    upper = sq[np.triu_indices(len(x), k=1)]
    med = float(np.sqrt(np.median(upper))) if upper.size else 0.0
    return med if med > 0 else 1.0


def _sq_distances(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.sum(x * x, axis=1)
    return np.maximum(norms[:, None] + norms[None, :] - 2.0 * x @ x.T, 0.0)


def _mmd2_from_kernel(kernel: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each 0/1 membership row of ``member`` ``(B, n)`` (1 = first set)."""
    k0 = kernel - np.diag(np.diag(kernel))
    a = member.astype(np.float64)
    b = 1.0 - a
    m = a.sum(axis=1)
    n = b.sum(axis=1)
    ka = a @ k0
    s_aa = np.sum(ka * a, axis=1)
    s_ab = np.sum(ka * b, axis=1)
    s_bb = np.sum((b @ k0) * b, axis=1)
    return s_aa / (m * (m - 1)) + s_bb / (n * (n - 1)) - 2.0 * s_ab / (m * n)


def mmd2_unbiased(a: np.ndarray, b: np.ndarray, bandwidth: float) -> float:
    """Unbiased MMD² between two samples with a Gaussian kernel of width ``bandwidth``.

    ``MMD²_u = mean_{i != j} k(a_i, a_j) + mean_{i != j} k(b_i, b_j) - 2 mean_{i, j} k(a_i, b_j)``
    (Gretton et al. 2012, eq. 3); it can be slightly negative when the sets are alike.

    Raises:
        ValueError: If either set has fewer than 2 rows.
    """
    if len(a) < MIN_PER_SET or len(b) < MIN_PER_SET:
        raise ValueError("MMD² needs at least 2 samples in each set")
    pooled = np.vstack([a, b])
    kernel = np.exp(-_sq_distances(pooled) / (2.0 * bandwidth**2))
    member = np.zeros((1, len(pooled)))
    member[0, : len(a)] = 1.0
    return float(_mmd2_from_kernel(kernel, member)[0])


def mmd_permutation_test(
    features: np.ndarray, labels: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """MMD² (median-heuristic Gaussian kernel), its permutation p-value and the bandwidth.

    Returns:
        ``(mmd2, p_value, bandwidth)``.
    """
    y = np.asarray(labels, dtype=np.float64)
    bandwidth = median_bandwidth(features)
    kernel = np.exp(-_sq_distances(features) / (2.0 * bandwidth**2))
    perms = np.vstack([y, np.array([rng.permutation(y) for _ in range(n_permutations)])])
    values = _mmd2_from_kernel(kernel, perms)
    observed = float(values[0])
    p = (1.0 + float(np.sum(values[1:] >= observed - 1e-12))) / (1.0 + n_permutations)
    return observed, p, bandwidth
