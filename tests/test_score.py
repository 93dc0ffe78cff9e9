"""Tests of the scorer stage: distance functions, CentroidScorer and the noise floor."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial import distance as sd

from gen_loop.score import (
    METRICS,
    CentroidScorer,
    Metric,
    NoiseFloor,
    centroid_cosine,
    centroid_l2,
    feature_stats,
    sample_cosine,
    sample_l2,
)

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FINITE = st.floats(
    min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False
)


@st.composite
def array_pair(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two (N, D) float64 arrays with the same D, elements drawn by hypothesis."""
    d = draw(st.integers(1, 8))
    a = draw(hnp.arrays(np.float64, (draw(st.integers(1, 12)), d), elements=FINITE))
    b = draw(hnp.arrays(np.float64, (draw(st.integers(1, 12)), d), elements=FINITE))
    return a, b


@st.composite
def gaussian_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A target (N, D) and a batch (B, D) from a random anisotropic Gaussian, seed from hypothesis.

    Non-degenerate by construction (every dimension of the target varies), which is what the
    invariance properties of the z-score need.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.integers(1, 24))
    n = draw(st.integers(8, 80))
    b = draw(st.integers(1, 40))
    loc = rng.normal(scale=10.0, size=d)
    scale = rng.uniform(0.05, 20.0, size=d)
    target = rng.normal(size=(n, d)) * scale + loc
    batch = rng.normal(size=(b, d)) * scale * rng.uniform(0.5, 2.0) + loc + rng.normal(size=d)
    return target, batch


def _zscore_reference(target: np.ndarray, batch: np.ndarray) -> tuple[float, np.ndarray]:
    """Independent float64 direct formula for zscore_l2 (batch score, per-sample distances)."""
    mean = target.mean(axis=0)
    std = target.std(axis=0)
    z = (batch - mean) / std
    d = target.shape[1]
    return float(np.sqrt(np.sum(z.mean(axis=0) ** 2) / d)), np.sqrt(np.sum(z**2, axis=1) / d)


# ---------------------------------------------------------------- pure distance functions


@PROPERTY
@given(array_pair())
def test_centroid_distances_match_scipy_and_are_symmetric(
    pair: tuple[np.ndarray, np.ndarray],
) -> None:
    a, b = pair
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    assert centroid_l2(a, b) == pytest.approx(sd.euclidean(ma, mb), rel=1e-9, abs=1e-9)
    assert centroid_l2(a, b) == pytest.approx(centroid_l2(b, a), rel=1e-12, abs=1e-12)
    assert centroid_cosine(a, b) == pytest.approx(centroid_cosine(b, a), rel=1e-12, abs=1e-12)
    assert 0.0 <= centroid_cosine(a, b) <= 2.0
    if np.linalg.norm(ma) > 1e-3 and np.linalg.norm(mb) > 1e-3:
        assert centroid_cosine(a, b) == pytest.approx(sd.cosine(ma, mb), rel=1e-6, abs=1e-9)


@PROPERTY
@given(array_pair())
def test_distance_of_a_set_to_itself_is_zero(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, _ = pair
    shuffled = a[::-1]
    assert centroid_l2(a, a) == 0.0
    assert centroid_l2(a, shuffled) == pytest.approx(0.0, abs=1e-9)
    mean = a.mean(axis=0)
    if np.linalg.norm(mean) > 1e-3:
        assert centroid_cosine(a, shuffled) == pytest.approx(0.0, abs=1e-9)
    elif not mean.any():
        assert centroid_cosine(a, a) == 1.0  # zero centroid: defined as 1.0


@PROPERTY
@given(array_pair())
def test_sample_distances_match_scipy_cdist(pair: tuple[np.ndarray, np.ndarray]) -> None:
    x, other = pair
    c = other.mean(axis=0)
    got_l2 = sample_l2(x, c)
    assert got_l2.shape == (x.shape[0],)
    np.testing.assert_allclose(got_l2, sd.cdist(x, c[None, :])[:, 0], rtol=1e-9, atol=1e-9)
    got_cos = sample_cosine(x, c)
    assert got_cos.shape == (x.shape[0],)
    assert np.all((got_cos >= 0.0) & (got_cos <= 2.0))
    ok = np.linalg.norm(x, axis=1) > 1e-3
    if np.linalg.norm(c) > 1e-3 and ok.any():
        want = sd.cdist(x[ok], c[None, :], metric="cosine")[:, 0]
        np.testing.assert_allclose(got_cos[ok], want, rtol=1e-6, atol=1e-9)


@PROPERTY
@given(array_pair(), st.floats(0.01, 100.0), st.floats(0.01, 100.0))
def test_cosine_invariant_to_positive_scaling(
    pair: tuple[np.ndarray, np.ndarray], ca: float, cb: float
) -> None:
    a, b = pair
    assume(np.linalg.norm(a.mean(axis=0)) > 1e-3 and np.linalg.norm(b.mean(axis=0)) > 1e-3)
    assert centroid_cosine(a * ca, b * cb) == pytest.approx(centroid_cosine(a, b), abs=1e-9)
    c = b.mean(axis=0)
    ok = np.linalg.norm(a, axis=1) > 1e-3  # rows at the zero-vector rule are defined as 1.0
    np.testing.assert_allclose(
        sample_cosine(a * ca, c * cb)[ok], sample_cosine(a, c)[ok], atol=1e-9
    )


@PROPERTY
@given(array_pair(), st.floats(-100.0, 100.0))
def test_centroid_l2_is_homogeneous(pair: tuple[np.ndarray, np.ndarray], c: float) -> None:
    a, b = pair
    assert centroid_l2(a * c, b * c) == pytest.approx(
        abs(c) * centroid_l2(a, b), rel=1e-9, abs=1e-6
    )


def test_cosine_of_a_zero_mean_is_one() -> None:
    zero_mean = np.array([[1.0, -2.0], [-1.0, 2.0]])
    other = np.array([[3.0, 4.0]])
    assert centroid_cosine(zero_mean, other) == 1.0
    assert centroid_cosine(other, zero_mean) == 1.0
    np.testing.assert_array_equal(
        sample_cosine(np.array([[0.0, 0.0], [3.0, 4.0]]), [3.0, 4.0]), [1.0, 0.0]
    )
    np.testing.assert_array_equal(sample_cosine(other, np.zeros(2)), [1.0])
    assert centroid_cosine(other, -other) == 2.0


def test_feature_stats_matches_numpy_and_floors_constant_dimensions() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)) * [1.0, 2.0, 3.0, 0.0] + [0.0, 1.0, -1.0, 7.0]
    mean, scale = feature_stats(x)
    np.testing.assert_allclose(mean, x.mean(axis=0))
    np.testing.assert_allclose(scale[:3], x.std(axis=0)[:3])
    expected_floor = 1e-6 * (x.std(axis=0).mean() + 1e-12)
    assert scale[3] == pytest.approx(expected_floor)
    _, const_scale = feature_stats(np.full((5, 3), 2.5))
    assert np.all(const_scale > 0)
    assert mean.dtype == scale.dtype == np.float64


def test_float32_input_is_computed_in_float64() -> None:
    a = np.array([[1e8, 1.0]], dtype=np.float32)
    b = np.array([[1e8, 2.0]], dtype=np.float32)
    assert centroid_l2(a, b) == 1.0
    assert isinstance(centroid_l2(a, b), float)
    assert sample_l2(a, b[0]).dtype == np.float64


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: centroid_l2(np.zeros((0, 3)), np.ones((2, 3))), "a is empty"),
        (lambda: centroid_l2(np.ones((2, 3)), np.zeros((2, 0))), "b is empty"),
        (lambda: centroid_cosine(np.ones((2, 3)), np.ones((2, 4))), "dimension mismatch"),
        (lambda: centroid_l2(np.ones(3), np.ones((2, 3))), "a must be a 2-D"),
        (lambda: centroid_l2(np.ones((2, 3)), [[1.0, np.nan, 0.0]]), "b contains 1 non-finite"),
        (lambda: centroid_cosine([[np.inf, 0.0]], np.ones((2, 2))), "a contains 1 non-finite"),
        (lambda: sample_l2(np.ones((2, 3)), np.ones(4)), "dimension mismatch"),
        (lambda: sample_l2(np.ones((2, 3)), np.ones((1, 3))), "centroid must be a 1-D"),
        (lambda: sample_cosine(np.ones((2, 3)), [np.nan, 0.0, 0.0]), "centroid contains"),
        (lambda: sample_cosine(np.zeros((0, 3)), np.ones(3)), "x is empty"),
        (lambda: feature_stats(np.zeros((0, 3))), "x is empty"),
        (lambda: feature_stats([[1.0, np.nan]]), "x contains"),
        (lambda: feature_stats(np.ones((2, 3)), rel_eps=0.0), "rel_eps"),
    ],
)
def test_distance_functions_reject_bad_input(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- CentroidScorer


@PROPERTY
@given(gaussian_sets())
def test_scorer_matches_direct_formulas(sets: tuple[np.ndarray, np.ndarray]) -> None:
    target, batch = sets
    score, per_sample = _zscore_reference(target, batch)
    z = CentroidScorer("zscore_l2").fit(target)
    assert z.score(batch) == pytest.approx(score, rel=1e-9)
    np.testing.assert_allclose(z.sample_distances(batch), per_sample, rtol=1e-9)
    mt, mb = target.mean(axis=0), batch.mean(axis=0)
    assert CentroidScorer("l2").fit(target).score(batch) == pytest.approx(sd.euclidean(mb, mt))
    assert CentroidScorer("cosine").fit(target).score(batch) == pytest.approx(
        sd.cosine(mb, mt), rel=1e-6, abs=1e-12
    )
    np.testing.assert_allclose(
        CentroidScorer("cosine").fit(target).sample_distances(batch),
        sd.cdist(batch, mt[None, :], metric="cosine")[:, 0],
        rtol=1e-6,
        atol=1e-12,
    )


@PROPERTY
@given(gaussian_sets())
def test_scorer_distance_of_target_to_itself_is_zero(sets: tuple[np.ndarray, np.ndarray]) -> None:
    target, _ = sets
    for metric in METRICS:
        scorer = CentroidScorer(metric).fit(target)
        assert scorer.score(target) == pytest.approx(0.0, abs=1e-9)


@PROPERTY
@given(
    gaussian_sets(),
    st.integers(0, 2**32 - 1),
)
def test_zscore_invariant_to_per_dimension_affine_maps(
    sets: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    target, batch = sets
    rng = np.random.default_rng(seed)
    d = target.shape[1]
    a = np.exp(rng.uniform(-3.0, 3.0, size=d))  # positive, 0.05x to 20x
    b = rng.normal(scale=100.0, size=d)
    scorer = CentroidScorer("zscore_l2").fit(target)
    mapped = CentroidScorer("zscore_l2").fit(target * a + b)
    assert mapped.score(batch * a + b) == pytest.approx(scorer.score(batch), rel=1e-6)
    np.testing.assert_allclose(
        mapped.sample_distances(batch * a + b), scorer.sample_distances(batch), rtol=1e-6
    )


@PROPERTY
@given(gaussian_sets(), st.floats(0.01, 100.0))
def test_cosine_scorer_invariant_to_positive_scaling(
    sets: tuple[np.ndarray, np.ndarray], c: float
) -> None:
    target, batch = sets
    plain = CentroidScorer("cosine").fit(target)
    scaled = CentroidScorer("cosine").fit(target * c)
    assert scaled.score(batch * c) == pytest.approx(plain.score(batch), rel=1e-6, abs=1e-12)
    assert plain.score(batch * c) == pytest.approx(plain.score(batch), rel=1e-6, abs=1e-12)


@PROPERTY
@given(gaussian_sets(), st.sampled_from(["zscore_l2", "l2"]), st.integers(0, 2**32 - 1))
def test_l2_distances_increase_with_a_shift(
    sets: tuple[np.ndarray, np.ndarray], metric: Metric, seed: int
) -> None:
    target, batch = sets
    v = np.random.default_rng(seed).normal(size=target.shape[1])
    # ||d + t*v|| increases for t >= 0 when d.v >= 0 (d: centroid offset in the scorer's space).
    mean, scale = feature_stats(target)
    d = batch.mean(axis=0) - mean
    weight = 1.0 / scale**2 if metric == "zscore_l2" else np.ones_like(scale)
    if np.sum(d * v * weight) < 0:
        v = -v
    scorer = CentroidScorer(metric).fit(target)
    ts = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    scores = [scorer.score(batch + t * v) for t in ts]
    assert all(s1 < s2 for s1, s2 in itertools.pairwise(scores))
    # From the target itself the response is exactly linear in t.
    from_target = [scorer.score(target + t * v) for t in ts]
    unit = from_target[-1] / ts[-1]
    np.testing.assert_allclose(from_target, [unit * t for t in ts], rtol=1e-6, atol=1e-9)


@PROPERTY
@given(gaussian_sets(), st.integers(0, 2**32 - 1))
def test_cosine_increases_with_an_orthogonal_shift(
    sets: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    target, _ = sets
    m = target.mean(axis=0)
    assume(target.shape[1] >= 2 and np.linalg.norm(m) > 1e-3)
    v = np.random.default_rng(seed).normal(size=target.shape[1])
    v -= (v @ m) / (m @ m) * m
    assume(np.linalg.norm(v) > 1e-3)
    scorer = CentroidScorer("cosine").fit(target)
    ts = [0.25, 0.5, 1.0, 2.0, 4.0]
    scores = [scorer.score(target + t * v) for t in ts]
    want = [
        1.0 - 1.0 / math.sqrt(1.0 + (t * np.linalg.norm(v) / np.linalg.norm(m)) ** 2) for t in ts
    ]
    np.testing.assert_allclose(scores, want, rtol=1e-6, atol=1e-12)
    assert all(s1 < s2 for s1, s2 in itertools.pairwise(scores))


@PROPERTY
@given(gaussian_sets(), st.sampled_from(METRICS))
def test_per_sample_distances(sets: tuple[np.ndarray, np.ndarray], metric: Metric) -> None:
    target, batch = sets
    scorer = CentroidScorer(metric).fit(target)
    dists = scorer.sample_distances(batch)
    assert dists.shape == (batch.shape[0],)
    assert dists.dtype == np.float64
    assert np.all(dists >= 0.0)
    own = scorer.target_sample_distances
    assert own.shape == (target.shape[0],)
    assert np.all(own >= 0.0)
    np.testing.assert_allclose(own, scorer.sample_distances(target))
    with pytest.raises(ValueError, match="read-only"):
        own[0] = 1.0


def test_scorer_does_not_keep_a_reference_to_the_callers_target() -> None:
    target = np.random.default_rng(0).normal(size=(20, 3))
    scorer = CentroidScorer().fit(target)
    before = scorer.score(target[:5].copy())
    target += 100.0
    assert scorer.score(target[:5] - 100.0) == pytest.approx(before)


def test_scorer_errors() -> None:
    scorer = CentroidScorer()
    assert not scorer.fitted
    for call in (
        lambda: scorer.score(np.ones((2, 3))),
        lambda: scorer.sample_distances(np.ones((2, 3))),
        lambda: scorer.noise_floor(2, 2, np.random.default_rng(0)),
        lambda: scorer.target_sample_distances,
    ):
        with pytest.raises(RuntimeError, match="not fitted"):
            call()
    with pytest.raises(ValueError, match="unknown metric"):
        CentroidScorer("mahalanobis")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2"):
        scorer.fit(np.ones((1, 3)))
    with pytest.raises(ValueError, match="target is empty"):
        scorer.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="target contains"):
        scorer.fit([[1.0, np.nan], [0.0, 1.0]])
    scorer.fit(np.random.default_rng(0).normal(size=(10, 3)))
    assert scorer.fitted
    assert scorer.dim == 3
    with pytest.raises(ValueError, match=r"dimension mismatch.*D=4.*D=3"):
        scorer.score(np.ones((2, 4)))
    with pytest.raises(ValueError, match="dimension mismatch"):
        scorer.sample_distances(np.ones((2, 2)))
    with pytest.raises(ValueError, match="batch is empty"):
        scorer.score(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="batch contains 1 non-finite"):
        scorer.score([[0.0, np.inf, 1.0]])
    with pytest.raises(ValueError, match="batch must be a 2-D"):
        scorer.score(np.ones(3))


# ---------------------------------------------------------------- noise floor


@pytest.fixture(scope="module")
def gaussian_target() -> np.ndarray:
    rng = np.random.default_rng(1234)
    return rng.normal(size=(400, 16)) * np.linspace(0.5, 5.0, 16) + np.arange(16.0)


@pytest.mark.parametrize("metric", METRICS)
def test_noise_floor_shrinks_with_batch_size(gaussian_target: np.ndarray, metric: Metric) -> None:
    scorer = CentroidScorer(metric).fit(gaussian_target)
    f32 = scorer.noise_floor(32, 100, np.random.default_rng(0))
    f128 = scorer.noise_floor(128, 100, np.random.default_rng(0))
    assert f32.mean > f128.mean
    ratio = f32.mean / f128.mean
    if metric == "cosine":
        # Quadratic in a small angle: ~ (1/32 + 1/368) / (1/128 + 1/272) = 2.96.
        assert 2.2 < ratio < 4.0
    else:
        # ~ sqrt(4) = 2 for an infinite reference; with the finite complement (368 and 272
        # samples) the expected ratio is sqrt((1/32 + 1/368) / (1/128 + 1/272)) = 1.72.
        assert 1.45 < ratio < 2.1


def test_noise_floor_matches_the_sampling_theory(gaussian_target: np.ndarray) -> None:
    n, d = gaussian_target.shape
    floor = CentroidScorer().fit(gaussian_target).noise_floor(32, 200, np.random.default_rng(1))
    # z-scored centroid offset ~ N(0, (1/B + 1/M) I); its norm / sqrt(D) is a scaled chi.
    chi_mean = math.sqrt(2.0) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
    expected = math.sqrt(1 / 32 + 1 / (n - 32)) * chi_mean / math.sqrt(d)
    assert floor.mean == pytest.approx(expected, rel=0.1)


def test_same_distribution_within_floor_and_shift_far_above(gaussian_target: np.ndarray) -> None:
    scales = np.linspace(0.5, 5.0, 16)
    locs = np.arange(16.0)
    scorer = CentroidScorer().fit(gaussian_target)
    floor = scorer.noise_floor(32, 100, np.random.default_rng(2))
    rng = np.random.default_rng(3)
    for _ in range(10):
        batch = rng.normal(size=(32, 16)) * scales + locs
        assert scorer.score(batch) < 3.0 * floor.mean
        assert scorer.score(batch + scales) > 4.0 * floor.mean  # 1 std in every dimension


def test_noise_floor_definition_and_bookkeeping(gaussian_target: np.ndarray) -> None:
    target = gaussian_target[:50]
    scorer = CentroidScorer().fit(target)
    before = scorer.score(target[:7])
    floor = scorer.noise_floor(10, 5, np.random.default_rng(7))
    assert isinstance(floor, NoiseFloor)
    assert (floor.batch_size, floor.n_splits, len(floor.values)) == (10, 5, 5)
    assert floor.mean == pytest.approx(np.mean(floor.values))
    assert floor.std == pytest.approx(np.std(floor.values, ddof=1))
    # Each split: a batch scored against a scorer refitted on the disjoint rest of the target.
    rng = np.random.default_rng(7)
    for value in floor.values:
        order = rng.permutation(50)
        ref = CentroidScorer().fit(target[order[10:]])
        assert value == pytest.approx(ref.score(target[order[:10]]))
    assert floor == scorer.noise_floor(10, 5, np.random.default_rng(7))
    assert scorer.score(target[:7]) == before
    assert scorer.noise_floor(10, 1, np.random.default_rng(0)).std == 0.0


def test_noise_floor_small_target_falls_back_to_halves() -> None:
    target = np.random.default_rng(0).normal(size=(9, 4))
    scorer = CentroidScorer().fit(target)
    assert scorer.noise_floor(8, 3, np.random.default_rng(0)).batch_size == 4
    assert scorer.noise_floor(7, 3, np.random.default_rng(0)).batch_size == 7
    assert (
        CentroidScorer().fit(target[:4]).noise_floor(32, 2, np.random.default_rng(0)).batch_size
        == 2
    )
    with pytest.raises(ValueError, match="at least 4 target samples"):
        CentroidScorer().fit(target[:3]).noise_floor(1, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch_size"):
        scorer.noise_floor(0, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_splits"):
        scorer.noise_floor(2, 0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        scorer.noise_floor(2, 2, 0)  # type: ignore[arg-type]
