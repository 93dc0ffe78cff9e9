"""PRDC (Naeem et al. 2020) against a brute-force loop reference, its properties, and the
PRDC scorer's per-sample manifold view."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gen_loop.score import PRDCScorer, coverage, knn_radii, manifold_ratio, prdc

PROPERTY = settings(
    max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
SEEDS = st.integers(0, 2**32 - 1)


def _brute(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """Precision, recall, density, coverage with explicit loops and sorted distance lists."""

    def radius(x: np.ndarray, i: int) -> float:
        ds = sorted(float(np.linalg.norm(x[i] - x[j])) for j in range(len(x)) if j != i)
        return ds[k - 1]

    rr = [radius(real, i) for i in range(len(real))]
    fr = [radius(fake, j) for j in range(len(fake))]

    def dist(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.linalg.norm(u - v))

    precision = np.mean([any(dist(f, r) <= rr[i] for i, r in enumerate(real)) for f in fake])
    recall = np.mean([any(dist(r, f) <= fr[j] for j, f in enumerate(fake)) for r in real])
    density = sum(dist(f, r) <= rr[i] for f in fake for i, r in enumerate(real)) / (k * len(fake))
    cov = np.mean([min(dist(r, f) for f in fake) <= rr[i] for i, r in enumerate(real)])
    return float(precision), float(recall), float(density), float(cov)


@PROPERTY
@given(SEEDS, st.integers(1, 5), st.floats(0.0, 2.0))
def test_matches_brute_force(seed: int, k: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(25, 3))
    fake = rng.normal(size=(15, 3)) * 1.3 + shift
    got = prdc(real, fake, k)
    want = _brute(real, fake, k)
    assert (got.precision, got.recall, got.density, got.coverage) == pytest.approx(want)
    radii = knn_radii(real, k)
    assert coverage(real, fake, radii) == got.coverage
    # Precision is the share of fakes whose manifold ratio is at most 1.
    assert np.mean(manifold_ratio(fake, real, radii) <= 1.0) == got.precision


@PROPERTY
@given(SEEDS, st.integers(1, 5))
def test_identical_sets_are_perfect(seed: int, k: int) -> None:
    x = np.random.default_rng(seed).normal(size=(20, 4))
    m = prdc(x, x, k)
    assert (m.precision, m.recall, m.coverage) == (1.0, 1.0, 1.0)
    assert m.density >= 1.0  # each point is in its own ball plus k-or-more others'
    np.testing.assert_array_equal(manifold_ratio(x, x, knn_radii(x, k)), 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_coverage_and_precision_fall_with_a_growing_shift(seed: int) -> None:
    # Monotone in expectation (one draw can wobble at small steps): average over 8 fake sets.
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(80, 3))
    fakes = [rng.normal(size=(40, 3)) for _ in range(8)]
    v = rng.normal(size=3)
    v /= np.linalg.norm(v)
    ts = (0.0, 1.0, 2.0, 4.0, 8.0)
    cov = [np.mean([prdc(real, f + t * v, 5).coverage for f in fakes]) for t in ts]
    prec = [np.mean([prdc(real, f + t * v, 5).precision for f in fakes]) for t in ts]
    assert all(c1 > c2 for c1, c2 in itertools.pairwise(cov[:-1]))
    # Precision is flat while the shifted set is still inside the manifold: allow a tie.
    assert all(p1 >= p2 - 1e-9 for p1, p2 in itertools.pairwise(prec))
    assert prec[2] < prec[0]
    assert cov[0] > 0.7 and cov[-1] == 0.0 and prec[-1] == 0.0


def test_invariant_to_rigid_maps_and_scale() -> None:
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(30, 3)), rng.normal(size=(20, 3)) + 0.5
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert prdc(real @ q * 3.0 + 7.0, fake @ q * 3.0 + 7.0, 3) == prdc(real, fake, 3)


def test_errors() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        knn_radii(np.ones((4, 2)), 0)
    with pytest.raises(ValueError, match="fake has 3 samples"):
        prdc(np.random.default_rng(0).normal(size=(10, 2)), np.ones((3, 2)), 3)
    with pytest.raises(ValueError, match="needs more than 5"):
        PRDCScorer(5).fit(np.random.default_rng(0).normal(size=(5, 2)))
    with pytest.raises(ValueError, match="radii has 2 entries"):
        manifold_ratio(np.ones((1, 2)), np.ones((3, 2)), np.ones(2))


# ---------------------------------------------------------------- the scorer


def test_scorer_is_one_minus_coverage_on_z_scored_features() -> None:
    rng = np.random.default_rng(3)
    scales = np.array([1.0, 10.0, 0.1])
    target = rng.normal(size=(60, 3)) * scales
    batch = rng.normal(size=(32, 3)) * scales + 0.5 * scales
    scorer = PRDCScorer(5).fit(target)
    z = (target - target.mean(axis=0)) / target.std(axis=0)
    zb = (batch - target.mean(axis=0)) / target.std(axis=0)
    assert scorer.score(batch) == pytest.approx(1.0 - prdc(z, zb, 5).coverage)
    assert scorer.score(target) == 0.0
    assert scorer.metrics(batch) == prdc(z, zb, 5)
    np.testing.assert_allclose(
        scorer.sample_distances(batch), manifold_ratio(zb, z, knn_radii(z, 5))
    )


def test_scorer_own_distances_are_leave_one_out() -> None:
    rng = np.random.default_rng(4)
    target = rng.normal(size=(40, 2))
    scorer = PRDCScorer(3).fit(target)
    own = scorer.target_sample_distances
    assert np.all(own > 0.0)  # in-sample they would all be 0
    z = (target - target.mean(axis=0)) / target.std(axis=0)
    radii = knn_radii(z, 3)
    for i in (0, 17, 39):
        others = np.delete(np.arange(40), i)
        want = manifold_ratio(z[i : i + 1], z[others], radii[others])[0]
        assert own[i] == pytest.approx(want)
    # The k-th neighbour of a sample is inside its own ball's radius: most ratios are <= 1.
    assert np.mean(own <= 1.0) > 0.9
