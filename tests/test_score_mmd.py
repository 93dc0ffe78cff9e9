"""Unbiased MMD^2 (RBF and KID kernels): explicit float64 double loops as the reference, and
properties (sign, symmetry, unbiasedness, invariances, monotone in a shift), and the scorer."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gen_loop.score import Kernel, MMDScorer, median_bandwidth, mmd2_unbiased, sample_mmd2

PROPERTY = settings(
    max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
SEEDS = st.integers(0, 2**32 - 1)
KERNEL_NAMES = st.sampled_from(["rbf", "poly"])


def _k(name: str, sigma: float, x: np.ndarray, y: np.ndarray) -> float:
    """One kernel value, written out."""
    if name == "rbf":
        return math.exp(-sum((xi - yi) ** 2 for xi, yi in zip(x, y, strict=True)) / (2 * sigma**2))
    return (sum(xi * yi for xi, yi in zip(x, y, strict=True)) / len(x) + 1.0) ** 3


def _reference_mmd2(a: np.ndarray, b: np.ndarray, name: str, sigma: float) -> float:
    """The U-statistic with explicit double loops."""
    m, n = len(a), len(b)
    aa = sum(_k(name, sigma, a[i], a[j]) for i in range(m) for j in range(m) if i != j)
    bb = sum(_k(name, sigma, b[i], b[j]) for i in range(n) for j in range(n) if i != j)
    ab = sum(_k(name, sigma, a[i], b[j]) for i in range(m) for j in range(n))
    return aa / (m * (m - 1)) + bb / (n * (n - 1)) - 2 * ab / (m * n)


def _sets(seed: int, m: int = 9, n: int = 7, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, d)), rng.normal(size=(n, d)) * 1.5 + 0.5


@PROPERTY
@given(SEEDS, KERNEL_NAMES, st.floats(0.2, 5.0))
def test_matches_double_loop_reference(seed: int, name: str, sigma: float) -> None:
    a, b = _sets(seed)
    kernel = Kernel(name, sigma)  # type: ignore[arg-type]
    assert mmd2_unbiased(a, b, kernel) == pytest.approx(
        _reference_mmd2(a, b, name, sigma), rel=1e-9, abs=1e-12
    )
    assert mmd2_unbiased(a, b, kernel) == pytest.approx(mmd2_unbiased(b, a, kernel), rel=1e-12)
    # Per sample: ||phi(x) - mean phi(b)||^2 written out.
    x = a[0]
    want = (
        _k(name, sigma, x, x)
        - 2 * np.mean([_k(name, sigma, x, bj) for bj in b])
        + np.mean([_k(name, sigma, bi, bj) for bi in b for bj in b])
    )
    assert sample_mmd2(a[:1], b, kernel)[0] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_median_bandwidth_is_the_median_pairwise_distance() -> None:
    x = np.random.default_rng(0).normal(size=(11, 4))
    pairs = [np.linalg.norm(x[i] - x[j]) for i in range(11) for j in range(i + 1, 11)]
    assert median_bandwidth(x) == pytest.approx(float(np.median(pairs)), rel=1e-9)
    assert median_bandwidth(np.ones((5, 2))) == 1.0


@pytest.mark.parametrize("name", ["rbf", "poly"])
def test_unbiased_for_same_distribution_and_negative_half_the_time(name: str) -> None:
    rng = np.random.default_rng(1)
    kernel = Kernel(name, 2.0)  # type: ignore[arg-type]
    pairs = [(rng.normal(size=(20, 3)), rng.normal(size=(30, 3))) for _ in range(400)]
    values = np.array([mmd2_unbiased(a, b, kernel) for a, b in pairs])
    # Mean within 4 standard errors of 0, and a good share of negative estimates.
    assert abs(values.mean()) < 4 * values.std(ddof=1) / math.sqrt(len(values))
    assert 0.3 < np.mean(values < 0) < 0.75


@PROPERTY
@given(SEEDS, KERNEL_NAMES)
def test_identical_sets_and_growing_shift(seed: int, name: str) -> None:
    a, _ = _sets(seed, m=30)
    kernel = Kernel(name, median_bandwidth(a))  # type: ignore[arg-type]
    assert mmd2_unbiased(a, a, kernel) <= 1e-12  # <= 0 exactly by Cauchy-Schwarz
    v = np.random.default_rng(seed + 1).normal(size=3)
    v /= np.linalg.norm(v)
    scores = [mmd2_unbiased(a, a + t * v, kernel) for t in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(s1 < s2 for s1, s2 in itertools.pairwise(scores))


@PROPERTY
@given(SEEDS)
def test_rbf_invariant_to_rigid_maps(seed: int) -> None:
    a, b = _sets(seed)
    rng = np.random.default_rng(seed + 3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    t = rng.normal(scale=20.0, size=3)
    kernel = Kernel("rbf", 1.3)
    assert mmd2_unbiased(a @ q + t, b @ q + t, kernel) == pytest.approx(
        mmd2_unbiased(a, b, kernel), rel=1e-7, abs=1e-12
    )


def test_kernel_and_input_errors() -> None:
    with pytest.raises(ValueError, match="unknown kernel"):
        Kernel("laplace")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bandwidth"):
        Kernel("rbf", 0.0)
    with pytest.raises(ValueError, match="a needs at least 2"):
        mmd2_unbiased(np.ones((1, 2)), np.ones((3, 2)), Kernel())
    with pytest.raises(ValueError, match="bandwidth"):
        MMDScorer("rbf", -1.0)
    with pytest.raises(ValueError, match="unknown kernel"):
        MMDScorer("linear")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the scorer


@pytest.mark.parametrize("name", ["rbf", "poly"])
def test_scorer_is_the_clipped_root_of_the_estimate_on_z_scored_features(name: str) -> None:
    rng = np.random.default_rng(2)
    target = rng.normal(size=(60, 4)) * [1.0, 2.0, 5.0, 0.5] + 3.0
    batch = rng.normal(size=(16, 4)) * [1.0, 2.0, 5.0, 0.5] + 3.5
    scorer = MMDScorer(name).fit(target)  # type: ignore[arg-type]
    zt = (target - target.mean(axis=0)) / target.std(axis=0)
    zb = (batch - target.mean(axis=0)) / target.std(axis=0)
    sigma = median_bandwidth(zt)
    assert scorer.kernel == Kernel(name, sigma)  # type: ignore[arg-type]
    mmd2 = _reference_mmd2(zb, zt, name, sigma)
    assert mmd2 > 0
    assert scorer.score(batch) == pytest.approx(math.sqrt(mmd2), rel=1e-9)
    assert scorer.score(target) == 0.0  # the estimate is <= 0 there and is clipped
    np.testing.assert_allclose(
        scorer.sample_distances(batch), np.sqrt(sample_mmd2(zb, zt, scorer.kernel)), rtol=1e-9
    )


def test_scorer_bandwidth_is_fixed_at_fit() -> None:
    rng = np.random.default_rng(4)
    target = rng.normal(size=(50, 3))
    scorer = MMDScorer().fit(target)
    sigma = scorer.kernel.bandwidth if scorer.kernel else None
    scorer.score(rng.normal(size=(10, 3)) * 10.0)
    assert scorer.kernel is not None and scorer.kernel.bandwidth == sigma
    assert MMDScorer("rbf", 0.7).fit(target).kernel == Kernel("rbf", 0.7)
