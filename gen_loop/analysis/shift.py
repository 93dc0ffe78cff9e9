"""Is there a shift between two sets of embeddings, and how big: three measures and a verdict.

1. **Domain classifier**: an L2 logistic regression (``C = 1``) tells the sets apart; its
   stratified k-fold cross-validated ROC AUC (pooled out-of-fold scores) is 0.5 when they are
   alike and 1 when they are separable. p-value: the whole cross-validation repeated on label
   permutations, ``p = (1 + #{AUC_perm >= AUC}) / (1 + n_perm)``.
2. **MMD²**: the unbiased estimate of the squared maximum mean discrepancy with a Gaussian kernel
   ``exp(-|x - y|^2 / (2 sigma^2))``, ``sigma`` = the median pairwise distance of the pooled
   sample (the median heuristic). p-value by permutation with the same ``+1`` correction.
3. **Centroid distance vs noise floor**: the loop's own yardstick
   (:class:`gen_loop.score.CentroidScorer`): the set's centroid distance to the reference
   divided by the distance a batch of as many real reference samples has from the rest.

Both tests run on shared, label-free features: the pooled sample centred and projected on its
first ``max_dim`` principal components (whitened for the classifier).
Being label-free, this preprocessing is the same under every permutation, so the permutation
p-values are exact. The verdict calls a shift when either p-value is at most ``alpha / 2``
(Bonferroni over the two tests) **and** the centroid is farther than the noise floor (ratio > 1,
when the floor can be computed): two samples of one distribution are called shifted with
probability at most ``alpha``, and a set the loop would call converged (within the floor) is
not called shifted; a significant difference inside the floor is reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from gen_loop.analysis._features import pca_features
from gen_loop.analysis._logistic import fit_logistic_batch, logistic_decision
from gen_loop.score import CentroidScorer, Metric

__all__ = [
    "ShiftResult",
    "auc_permutation_test",
    "median_bandwidth",
    "mmd2_unbiased",
    "mmd_permutation_test",
    "shared_features",
    "shift_size",
    "two_sample_shift",
]

_MIN_PER_SET = 2


@dataclass(frozen=True)
class ShiftResult:
    """The shift between one origin and the reference.

    Attributes:
        origin: the origin's name.
        reference: the reference origin's name.
        n_origin: images in the origin.
        n_reference: images in the reference.
        auc: cross-validated ROC AUC of the domain classifier (None if not computable).
        auc_p: its permutation p-value.
        mmd2: unbiased MMD² estimate.
        mmd_p: its permutation p-value.
        bandwidth: the Gaussian kernel's sigma (median heuristic).
        centroid_distance: the scorer's distance between the origin and the reference.
        noise_floor: the reference's own distance at the same batch size (mean over splits).
        noise_floor_std: std of the floor over the splits.
        floor_batch_size: batch size the floor was computed at.
        floor_ratio: ``centroid_distance / noise_floor``.
        shifted: the verdict: a test rejects at ``alpha / 2`` and ``floor_ratio > 1``.
        size: "none", "slight", "moderate", "large" or "separable" (from the AUC).
        verdict: one line with the numbers.
        note: why a measure is missing, if one is.
    """

    origin: str
    reference: str
    n_origin: int
    n_reference: int
    auc: float | None
    auc_p: float | None
    mmd2: float | None
    mmd_p: float | None
    bandwidth: float | None
    centroid_distance: float | None
    noise_floor: float | None
    noise_floor_std: float | None
    floor_batch_size: int | None
    floor_ratio: float | None
    shifted: bool
    size: str
    verdict: str
    note: str = ""


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
    if len(a) < _MIN_PER_SET or len(b) < _MIN_PER_SET:
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


def shift_size(auc: float | None, shifted: bool) -> str:
    """A word for the size of a shift, from the classifier's AUC."""
    if not shifted or auc is None:
        return "none"
    if auc < 0.6:
        return "slight"
    if auc < 0.8:
        return "moderate"
    return "large" if auc < 0.95 else "separable"


def two_sample_shift(
    origin: np.ndarray,
    reference: np.ndarray,
    names: tuple[str, str],
    alpha: float = 0.05,
    n_permutations: int = 200,
    folds: int = 5,
    max_dim: int = 32,
    metric: Metric = "zscore_l2",
    floor_splits: int = 20,
    seed: int = 0,
) -> ShiftResult:
    """All three shift measures and the verdict for one origin against the reference.

    Args:
        origin: the origin's embeddings ``(n_o, D)``.
        reference: the reference's embeddings ``(n_r, D)``.
        names: ``(origin name, reference name)``.
        alpha: family-wise level of the verdict (each test at ``alpha / 2``).
        n_permutations: permutations per test.
        folds: cross-validation folds of the classifier.
        max_dim: principal components kept for the tests.
        metric: the centroid scorer's metric.
        floor_splits: random splits for the reference's noise floor.
        seed: seed of every random choice here.

    Returns:
        The :class:`ShiftResult`; with fewer than 2 images on a side the tests are skipped and
        ``note`` says so.
    """
    rng = np.random.default_rng(seed)
    n_o, n_r = len(origin), len(reference)
    auc = auc_p = mmd2 = mmd_p = bandwidth = None
    notes = []
    if n_o >= _MIN_PER_SET and n_r >= _MIN_PER_SET:
        feats = shared_features(origin, reference, max_dim)
        labels = np.r_[np.ones(n_o), np.zeros(n_r)]
        auc, auc_p = auc_permutation_test(feats, labels, n_permutations, folds, rng)
        mmd2, mmd_p, bandwidth = mmd_permutation_test(feats, labels, n_permutations, rng)
    else:
        notes.append(f"tests need at least {_MIN_PER_SET} images per set")
    distance = floor = floor_std = ratio = None
    floor_batch: int | None = None
    if n_r >= 4:
        scorer = CentroidScorer(metric).fit(reference)
        distance = scorer.score(origin)
        nf = scorer.noise_floor(n_o, floor_splits, rng)
        floor, floor_std, floor_batch = nf.mean, nf.std, nf.batch_size
        ratio = distance / floor if floor > 0 else math.inf
    else:
        notes.append("the noise floor needs at least 4 reference images")
    p_values = [p for p in (auc_p, mmd_p) if p is not None]
    significant = bool(p_values) and min(p_values) <= alpha / 2
    beyond_floor = ratio is None or ratio > 1.0
    shifted = significant and beyond_floor
    if significant and not beyond_floor:
        notes.append("significant, but within the reference's noise floor")
    size = shift_size(auc, shifted)
    return ShiftResult(
        origin=names[0],
        reference=names[1],
        n_origin=n_o,
        n_reference=n_r,
        auc=auc,
        auc_p=auc_p,
        mmd2=mmd2,
        mmd_p=mmd_p,
        bandwidth=bandwidth,
        centroid_distance=distance,
        noise_floor=floor,
        noise_floor_std=floor_std,
        floor_batch_size=floor_batch,
        floor_ratio=ratio,
        shifted=shifted,
        size=size,
        verdict=_verdict(shifted, significant, size, (auc, auc_p, mmd2, mmd_p, ratio), alpha),
        note="; ".join(notes),
    )


def _verdict(
    shifted: bool,
    significant: bool,
    size: str,
    numbers: tuple[float | None, ...],
    alpha: float,
) -> str:
    auc, auc_p, mmd2, mmd_p, ratio = numbers
    parts = []
    if auc is not None and auc_p is not None:
        parts.append(f"classifier AUC {auc:.3f} (p={auc_p:.3g})")
    if mmd2 is not None and mmd_p is not None:
        parts.append(f"MMD² {mmd2:.4f} (p={mmd_p:.3g})")
    if ratio is not None:
        parts.append(f"centroid {ratio:.2f}x the noise floor")
    numbers_text = ", ".join(parts)
    if auc_p is None and mmd_p is None:
        return f"not tested: {numbers_text}" if numbers_text else "not tested"
    if shifted:
        head = f"SHIFT ({size})"
    elif significant:
        head = "a detectable difference, but within the noise floor"
    else:
        head = f"no shift detected at {alpha:g}"
    return f"{head}: {numbers_text}"
