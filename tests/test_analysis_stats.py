"""Statistics of the analysis: logistic fits, AUC, MMD², permutation tests, the shift verdict."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from gen_loop.analysis._logistic import fit_logistic_batch, logistic_decision
from gen_loop.analysis.shift import two_sample_shift
from gen_loop.analysis.two_sample import (
    _auc_rows,
    _stratified_folds,
    auc_permutation_test,
    median_bandwidth,
    mmd2_unbiased,
    mmd_permutation_test,
    shared_features,
)

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), c=st.sampled_from([0.05, 1.0, 20.0]))
def test_batched_logistic_matches_sklearn(seed: int, c: float) -> None:
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(12, 60)), int(rng.integers(1, 6))
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d)
    y = (x[:, 0] + rng.normal(size=n) > 0).astype(float)
    y[:2] = [0.0, 1.0]  # both classes present
    w = (rng.random(n) > 0.25).astype(float)
    w[:2] = 1.0
    theta = fit_logistic_batch(x, y[None, :], w[None, :], c=c)[0]
    ref = LogisticRegression(C=c, tol=1e-12, max_iter=100_000).fit(x, y, sample_weight=w)
    np.testing.assert_allclose(theta[:-1], ref.coef_[0], atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(theta[-1], ref.intercept_[0], atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(
        logistic_decision(theta[None], x)[0], ref.decision_function(x), atol=1e-4
    )


def test_batched_logistic_solves_problems_independently() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    ys = (rng.random((4, 30)) > 0.5).astype(float)
    ws = (rng.random((4, 30)) > 0.3).astype(float)
    together = fit_logistic_batch(x, ys, ws)
    for b in range(4):
        alone = fit_logistic_batch(x, ys[b : b + 1], ws[b : b + 1])[0]
        np.testing.assert_allclose(together[b], alone, atol=1e-8)


def test_auc_rows_match_sklearn_with_ties() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=(5, 40)), 1)  # rounding makes ties
    labels = (rng.random((5, 40)) > 0.5).astype(float)
    labels[:, :2] = [0, 1]
    expected = [roc_auc_score(labels[i], scores[i]) for i in range(5)]
    np.testing.assert_allclose(_auc_rows(scores, labels), expected)


def test_stratified_folds_balance_each_class() -> None:
    rng = np.random.default_rng(2)
    labels = np.vstack([rng.permutation(np.r_[np.ones(13), np.zeros(22)]) for _ in range(6)])
    folds = _stratified_folds(labels, 5, rng)
    for row, fold in zip(labels, folds, strict=True):
        for cls in (0, 1):
            counts = np.bincount(fold[row == cls], minlength=5)
            assert counts.max() - counts.min() <= 1


def _mmd2_direct(a: np.ndarray, b: np.ndarray, sigma: float) -> float:
    """MMD²_u by the textbook double sums, in float64 (an independent reference)."""

    def k(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.exp(-np.sum((u - v) ** 2) / (2 * sigma**2)))

    m, n = len(a), len(b)
    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1))
def test_mmd2_matches_direct_formula_and_is_symmetric(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 5))
    a = rng.normal(size=(int(rng.integers(2, 12)), d))
    b = rng.normal(size=(int(rng.integers(2, 12)), d)) + rng.normal(size=d)
    sigma = float(rng.uniform(0.3, 3.0))
    value = mmd2_unbiased(a, b, sigma)
    assert value == pytest.approx(_mmd2_direct(a, b, sigma), abs=1e-10)
    assert value == pytest.approx(mmd2_unbiased(b, a, sigma), abs=1e-12)


def test_median_bandwidth_is_the_median_pairwise_distance() -> None:
    x = np.random.default_rng(3).normal(size=(25, 4))
    assert median_bandwidth(x) == pytest.approx(float(np.median(pdist(x))))
    assert median_bandwidth(np.ones((5, 3))) == 1.0  # all identical: a usable width


def test_permutation_p_values_use_the_plus_one_correction() -> None:
    rng = np.random.default_rng(4)
    feats = np.vstack([rng.normal(size=(10, 3)) + 5, rng.normal(size=(10, 3))])
    labels = np.r_[np.ones(10), np.zeros(10)]
    for n_perm in (1, 19, 99):
        _, p_mmd, _ = mmd_permutation_test(feats, labels, n_perm, rng)
        _, p_auc = auc_permutation_test(feats, labels, n_perm, 5, rng)
        for p in (p_mmd, p_auc):
            assert p >= 1 / (n_perm + 1)  # never 0, even for a perfect separation
            assert p * (n_perm + 1) == pytest.approx(round(p * (n_perm + 1)))
        # Separated sets: no permutation reaches the observed statistic.
        assert p_mmd == pytest.approx(1 / (n_perm + 1))


def test_test_features_are_label_free_and_bounded() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(8, 50)), rng.normal(size=(6, 50))
    feats = shared_features(a, b, max_dim=32)
    assert feats.shape == (14, 13)  # at most n - 1 components
    swapped = shared_features(b, a, max_dim=32)
    # Same pooled sample in another order: same pairwise geometry.
    np.testing.assert_allclose(pdist(np.vstack([feats[8:], feats[:8]])), pdist(swapped))


def test_no_cry_wolf_on_random_halves_of_one_distribution() -> None:
    """Two halves of one set are called shifted at 5% in at most 5% of repeats."""
    rng = np.random.default_rng(20261125)
    repeats, shifted = 200, 0
    for r in range(repeats):
        x = rng.normal(size=(40, 12)) * rng.uniform(0.2, 3.0, size=12)
        result = two_sample_shift(
            x[:20],
            x[20:],
            ("half_a", "half_b"),
            alpha=0.05,
            n_permutations=99,
            max_dim=8,
            floor_splits=3,
            seed=r,
        )
        shifted += result.shifted
    assert shifted <= 0.05 * repeats, f"{shifted} of {repeats} null repeats called a shift"


def test_a_clear_shift_is_flagged_with_numbers() -> None:
    rng = np.random.default_rng(6)
    reference = rng.normal(size=(40, 16))
    origin = rng.normal(size=(40, 16))
    origin[:, :4] += 1.5  # a colour cast moving a few feature dimensions
    result = two_sample_shift(origin, reference, ("gen", "target"), n_permutations=99, seed=1)
    assert result.shifted
    assert result.auc is not None and result.auc > 0.9
    assert result.auc_p is not None and result.auc_p <= 0.025
    assert result.mmd_p is not None and result.mmd_p <= 0.025
    assert result.floor_ratio is not None and result.floor_ratio > 1.5
    assert result.size in ("large", "separable")
    assert result.verdict.startswith("SHIFT")


def test_halves_sit_near_the_noise_floor() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(80, 10))
    result = two_sample_shift(x[:40], x[40:], ("a", "b"), n_permutations=49, seed=0)
    assert result.floor_ratio is not None and 0.3 < result.floor_ratio < 2.5
    assert result.floor_batch_size == 20  # 40 reference samples: not 40 + 2, so halves


def test_too_few_images_are_reported_not_tested() -> None:
    rng = np.random.default_rng(8)
    result = two_sample_shift(rng.normal(size=(1, 4)), rng.normal(size=(10, 4)), ("one", "ref"))
    assert not result.shifted
    assert result.auc is None and result.mmd2 is None
    assert "at least 2 images" in result.note
    assert result.verdict.startswith("not tested")


def test_a_difference_inside_the_noise_floor_is_not_called_a_shift() -> None:
    from gen_loop.analysis.shift import _verdict

    text = _verdict(False, True, "none", (0.58, 0.01, 0.004, 0.02, 0.8), 0.05)
    assert text.startswith("a detectable difference, but within the noise floor")
    assert "centroid 0.80x the noise floor" in text
