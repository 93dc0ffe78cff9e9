"""Fréchet distance with shrunk covariances: references (scipy sqrtm, sklearn Ledoit-Wolf) and
properties (zero, symmetry, invariances, monotone in a shift), and the Fréchet scorer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import linalg
from sklearn.covariance import ledoit_wolf

from gen_loop.score import (
    CentroidScorer,
    FrechetScorer,
    frechet_distance,
    frechet_gaussians,
    ledoit_wolf_shrinkage,
    mahalanobis,
    shrunk_covariance,
)

PROPERTY = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
SEEDS = st.integers(0, 2**32 - 1)


def _sets(seed: int, n_a: int = 40, n_b: int = 30, d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Two correlated Gaussian sets with different means and covariances."""
    rng = np.random.default_rng(seed)
    mix_a = rng.normal(size=(d, d))
    mix_b = mix_a + 0.5 * rng.normal(size=(d, d))
    a = rng.normal(size=(n_a, d)) @ mix_a + rng.normal(size=d)
    b = rng.normal(size=(n_b, d)) @ mix_b + rng.normal(size=d)
    return a, b


def _reference_d2(a: np.ndarray, b: np.ndarray) -> float:
    """Independent float64 formula: scipy's general matrix square root of S_a S_b."""
    ca, cb = np.cov(a.T, bias=True), np.cov(b.T, bias=True)
    covmean = linalg.sqrtm(ca @ cb)
    return float(
        np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
        + np.trace(ca)
        + np.trace(cb)
        - 2.0 * np.trace(np.real(covmean))
    )


@PROPERTY
@given(SEEDS)
def test_matches_scipy_sqrtm_on_well_conditioned_data(seed: int) -> None:
    a, b = _sets(seed, n_a=400, n_b=300, d=5)
    assert frechet_distance(a, b, shrinkage=0.0) ** 2 == pytest.approx(
        _reference_d2(a, b), rel=1e-6, abs=1e-8
    )


@PROPERTY
@given(SEEDS, st.integers(2, 60), st.integers(1, 30))
def test_ledoit_wolf_matches_sklearn(seed: int, n: int, d: int) -> None:
    x = np.random.default_rng(seed).normal(size=(n, d)) * np.linspace(0.5, 3.0, d)
    want_cov, want_s = ledoit_wolf(x)
    cov, s = shrunk_covariance(x)
    assert s == pytest.approx(want_s, abs=1e-9)
    assert ledoit_wolf_shrinkage(x) == s
    np.testing.assert_allclose(cov, want_cov, rtol=1e-8, atol=1e-10)


def test_shrinkage_makes_the_batch_covariance_full_rank() -> None:
    # The loop's case: 32 samples, 128 channels. The sample covariance has rank 31.
    x = np.random.default_rng(0).normal(size=(32, 128))
    raw, _ = shrunk_covariance(x, 0.0)
    assert np.linalg.matrix_rank(raw) == 31
    shrunk, s = shrunk_covariance(x)
    assert 0.5 < s <= 1.0
    eig = np.linalg.eigvalsh(shrunk)
    assert eig.min() > 0.1 * eig.max()  # well conditioned, not merely non-singular


@PROPERTY
@given(SEEDS, st.sampled_from([None, 0.0, 0.3, 1.0]))
def test_zero_for_identical_sets_and_symmetric(seed: int, shrinkage: float | None) -> None:
    a, b = _sets(seed)
    # d^2 is a difference of traces: zero up to rounding, which the square roots of the small
    # eigenvalues of an ill-conditioned random covariance amplify to ~1e-9 of the total variance
    # (seen: 7.5e-9 with shrinkage 0), so d <= 1e-4 * sqrt(total variance).
    scale = float(np.sqrt(np.trace(np.cov(a.T))))
    assert frechet_distance(a, a, shrinkage) <= 1e-4 * scale
    assert frechet_distance(a, b, shrinkage) == pytest.approx(
        frechet_distance(b, a, shrinkage), rel=1e-7
    )
    assert frechet_distance(a, b, shrinkage) > 0.1


@PROPERTY
@given(SEEDS, st.floats(0.01, 100.0))
def test_invariant_to_rigid_maps_and_homogeneous_in_scale(seed: int, c: float) -> None:
    a, b = _sets(seed)
    rng = np.random.default_rng(seed + 1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    t = rng.normal(scale=50.0, size=6)
    base = frechet_distance(a, b)
    assert frechet_distance(a @ q + t, b @ q + t) == pytest.approx(base, rel=1e-6)
    assert frechet_distance(a * c, b * c) == pytest.approx(c * base, rel=1e-6)


@PROPERTY
@given(SEEDS)
def test_increases_with_a_growing_shift(seed: int) -> None:
    a, b = _sets(seed)
    v = np.random.default_rng(seed + 2).normal(size=6)
    # d^2 = ||dmu + t v||^2 + const: increasing for t >= 0 when dmu . v >= 0.
    if (b.mean(axis=0) - a.mean(axis=0)) @ v < 0:
        v = -v
    scores = [frechet_distance(a, b + t * v) for t in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(s1 < s2 for s1, s2 in itertools.pairwise(scores))


@PROPERTY
@given(SEEDS)
def test_gaussian_formula_on_known_cases(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(4, 4))
    cov = m @ m.T + 0.1 * np.eye(4)
    mu = rng.normal(size=4)
    assert frechet_gaussians(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    # Commuting (diagonal) covariances: sum of (sqrt(a_i) - sqrt(b_i))^2.
    da, db = rng.uniform(0.1, 4.0, size=4), rng.uniform(0.1, 4.0, size=4)
    want = float(np.sum((np.sqrt(da) - np.sqrt(db)) ** 2))
    assert frechet_gaussians(mu, np.diag(da), mu, np.diag(db)) == pytest.approx(want, rel=1e-9)
    # Singular covariances are fine: a point mass against N(0, I) is D.
    assert frechet_gaussians(np.zeros(4), np.zeros((4, 4)), np.zeros(4), np.eye(4)) == 4.0


def test_mahalanobis_matches_scipy() -> None:
    from scipy.spatial import distance as sd

    rng = np.random.default_rng(3)
    m = rng.normal(size=(5, 5))
    cov = m @ m.T + np.eye(5)
    x, mean = rng.normal(size=(7, 5)), rng.normal(size=5)
    want = sd.cdist(x, mean[None, :], "mahalanobis", VI=np.linalg.inv(cov))[:, 0]
    np.testing.assert_allclose(mahalanobis(x, mean, cov), want, rtol=1e-9)


def test_frechet_input_errors() -> None:
    with pytest.raises(ValueError, match="shrinkage"):
        shrunk_covariance(np.ones((3, 2)), 1.5)
    with pytest.raises(ValueError, match="dimension mismatch"):
        frechet_distance(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"cov_b must have shape \(2, 2\)"):
        frechet_gaussians(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="shrinkage"):
        FrechetScorer(-0.1)


# ---------------------------------------------------------------- the scorer


def test_scorer_equals_zscore_l2_when_covariances_match() -> None:
    rng = np.random.default_rng(5)
    target = rng.normal(size=(300, 8)) * np.linspace(1.0, 4.0, 8)
    # Same z-scored covariance (the z-scored target), moved by a constant: only the mean differs.
    batch = target + 0.3 * np.linspace(1.0, 4.0, 8)
    for shrinkage in (None, 0.0, 0.5):
        got = FrechetScorer(shrinkage).fit(target).score(batch)
        assert got == pytest.approx(CentroidScorer().fit(target).score(batch), rel=1e-6)


def test_scorer_sees_a_change_of_spread_that_the_centroid_misses() -> None:
    rng = np.random.default_rng(6)
    target = rng.normal(size=(400, 8))
    wide = rng.normal(size=(400, 8)) * 2.0
    same = rng.normal(size=(400, 8))
    frechet = FrechetScorer().fit(target)
    centroid = CentroidScorer().fit(target)
    assert frechet.score(wide) > 5 * frechet.score(same)
    assert centroid.score(wide) < 3 * centroid.score(same) + 0.05


def test_scorer_per_sample_distance_is_scaled_mahalanobis() -> None:
    rng = np.random.default_rng(7)
    target = rng.normal(size=(200, 4)) @ rng.normal(size=(4, 4))
    scorer = FrechetScorer(0.2).fit(target)
    mean, std = target.mean(axis=0), target.std(axis=0)
    z = (target - mean) / std
    cov, _ = shrunk_covariance(z, 0.2)
    batch = rng.normal(size=(5, 4))
    want = mahalanobis((batch - mean) / std, np.zeros(4), cov) / 2.0
    np.testing.assert_allclose(scorer.sample_distances(batch), want, rtol=1e-9)
