"""The scorer contract for every score.metric: zero at the target, invariances, a shift's
monotone response, the noise floor, per-sample distances, and building from the config."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gen_loop.config import (
    CentroidMetric,
    CentroidScoreConfig,
    FrechetScoreConfig,
    Kernel,
    KIDScoreConfig,
    MMDScoreConfig,
    PRDCScoreConfig,
    RunConfig,
)
from gen_loop.config.validate import _check_score as check_run_config_score
from gen_loop.config.validate import check_run_config
from gen_loop.errors import ConfigError
from gen_loop.loop.components import build_scorer
from gen_loop.score import (
    KERNELS,
    METRICS,
    SCORE_METRICS,
    CentroidScorer,
    FrechetScorer,
    MMDScorer,
    PRDCScorer,
    Scorer,
)
from gen_loop.score._standardised import _StandardisedScorer

Compose = Callable[[list[str]], RunConfig]
PROPERTY = settings(
    max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

FACTORIES: dict[str, Callable[[], Scorer]] = {
    "frechet": FrechetScorer,
    "frechet_fixed": lambda: FrechetScorer(0.3),
    "mmd_rbf": MMDScorer,
    "mmd_poly": lambda: MMDScorer("poly"),
    "prdc": PRDCScorer,
}
NAMES = sorted(FACTORIES)


def _target(seed: int, n: int = 120, d: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.1, 10.0, size=d)
    locs = rng.normal(scale=10.0, size=d)
    mix = np.eye(d) + 0.3 * rng.normal(size=(d, d))
    return (rng.normal(size=(n, d)) @ mix) * scales + locs, scales, locs


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.sampled_from(NAMES))
def test_zero_at_the_target_and_invariant_to_per_dimension_affine_maps(
    seed: int, name: str
) -> None:
    target, scales, _ = _target(seed)
    rng = np.random.default_rng(seed + 1)
    batch = target[:32] * rng.uniform(0.8, 1.2, size=12) + 0.3 * scales
    scorer = FACTORIES[name]().fit(target)
    assert scorer.score(target) == pytest.approx(0.0, abs=1e-6)
    a = np.exp(rng.uniform(-3.0, 3.0, size=12))
    b = rng.normal(scale=100.0, size=12)
    mapped = FACTORIES[name]().fit(target * a + b)
    assert mapped.score(batch * a + b) == pytest.approx(scorer.score(batch), rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(
        mapped.sample_distances(batch * a + b), scorer.sample_distances(batch), rtol=1e-6
    )


@pytest.mark.parametrize("name", NAMES)
def test_response_to_a_growing_shift_is_monotone(name: str) -> None:
    target, scales, _ = _target(0)
    rng = np.random.default_rng(1)
    fresh = target[:32]  # not in the reference the scorer is fitted on
    v = scales * rng.choice([-1.0, 1.0], size=12)  # one target std per dimension
    scorer = FACTORIES[name]().fit(target[32:])
    scores = [scorer.score(fresh + t * v) for t in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)]
    if name == "prdc":  # bounded: rises, then saturates at 1 once off the manifold
        assert all(s1 <= s2 for s1, s2 in itertools.pairwise(scores))
        assert scores[0] < 0.6 and scores[-1] == 1.0
    else:
        assert all(s1 < s2 for s1, s2 in itertools.pairwise(scores))


@pytest.mark.parametrize("name", NAMES)
def test_noise_floor_separates_same_distribution_from_a_shift(name: str) -> None:
    target, scales, _ = _target(2, n=360)
    scorer = FACTORIES[name]().fit(target[:200])
    floor = scorer.noise_floor(32, 20, np.random.default_rng(0))
    assert floor.batch_size == 32 and floor.mean > 0.0 and floor.std > 0.0
    held_out = [target[200 + 32 * i : 232 + 32 * i] for i in range(5)]
    # Held-out target batches score like the floor on average; shifted ones far above it.
    assert np.mean([scorer.score(b) for b in held_out]) < floor.mean + 3 * floor.std
    for batch in held_out:
        assert scorer.score(batch + scales) > floor.mean + 4 * floor.std  # 1 std per dim
    # Each split is scored by a fresh scorer of the same kind fitted on the complement.
    order = np.random.default_rng(0).permutation(200)
    ref = FACTORIES[name]().fit(target[:200][order[32:]])
    assert floor.values[0] == pytest.approx(ref.score(target[:200][order[:32]]))


@pytest.mark.parametrize("name", NAMES)
def test_per_sample_distances(name: str) -> None:
    target, scales, _ = _target(3)
    scorer = FACTORIES[name]().fit(target)
    near = target[:10] * 1.0
    far = target[:10] + 3 * scales
    d_near, d_far = scorer.sample_distances(near), scorer.sample_distances(far)
    assert d_near.shape == (10,) and d_near.dtype == np.float64
    assert np.all(d_near >= 0.0) and np.all(d_far > d_near)
    own = scorer.target_sample_distances
    assert own.shape == (120,) and np.all(own >= 0.0)
    with pytest.raises(ValueError, match="read-only"):
        own[0] = 1.0
    # A selection threshold from the target's own quantile keeps most near samples only.
    threshold = np.quantile(own, 0.9)
    assert np.mean(d_far <= threshold) == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_scorer_errors(name: str) -> None:
    scorer = FACTORIES[name]()
    with pytest.raises(RuntimeError, match="not fitted"):
        scorer.score(np.ones((2, 3)))
    scorer.fit(_target(4)[0])
    with pytest.raises(ValueError, match="dimension mismatch"):
        scorer.score(np.ones((4, 5)))
    assert scorer.score(_target(4)[0][:1]) >= 0.0  # a batch of one is scored too


# ---------------------------------------------------------------- from the config


@pytest.mark.parametrize(
    ("option", "kind", "settings_"),
    [
        ("centroid", CentroidScorer, {"metric": "zscore_l2"}),
        ("frechet", FrechetScorer, {"shrinkage": None}),
        ("mmd", MMDScorer, {"kernel_name": "rbf", "bandwidth": None}),
        ("kid", MMDScorer, {"kernel_name": "poly"}),
        ("prdc", PRDCScorer, {"k": 5}),
    ],
)
def test_each_score_option_builds_its_scorer(
    compose_run: Compose, option: str, kind: type, settings_: dict[str, object]
) -> None:
    cfg = compose_run(["debug=smoke", f"score={option}"])
    check_run_config(cfg)
    scorer = build_scorer(cfg.score)
    assert type(scorer) is kind
    for attr, value in settings_.items():
        assert getattr(scorer, attr) == value


def test_default_scorer_is_unchanged(compose_run: Compose) -> None:
    scorer = build_scorer(compose_run([]).score)
    assert type(scorer) is CentroidScorer and scorer.metric == "zscore_l2"


def test_settings_reach_the_scorer(compose_run: Compose) -> None:
    cfg = compose_run(["score=mmd", "score.bandwidth=2.5", "score.kernel=poly"])
    scorer = build_scorer(cfg.score)
    assert isinstance(scorer, MMDScorer)
    assert (scorer.kernel_name, scorer.bandwidth) == ("poly", 2.5)
    assert type(scorer.kernel_name) is str  # the plain value, not the config's enum member
    cfg = compose_run(["score=frechet", "score.shrinkage=0.25"])
    frechet = build_scorer(cfg.score)
    assert isinstance(frechet, FrechetScorer) and frechet.shrinkage == 0.25
    prdc = build_scorer(compose_run(["score=prdc", "score.k_neighbours=3"]).score)
    assert isinstance(prdc, PRDCScorer) and prdc.k == 3
    centroid = build_scorer(compose_run(["score.metric=cosine"]).score)
    assert isinstance(centroid, CentroidScorer) and centroid.metric == "cosine"


@pytest.mark.parametrize(
    ("option", "schema"),
    [
        ("centroid", CentroidScoreConfig),
        ("frechet", FrechetScoreConfig),
        ("mmd", MMDScoreConfig),
        ("kid", KIDScoreConfig),
        ("prdc", PRDCScoreConfig),
    ],
)
def test_each_score_option_is_its_schema(compose_run: Compose, option: str, schema: type) -> None:
    """conf/score/*.yaml hold nothing but their schema (the dataclass holds the defaults)."""
    assert compose_run([f"score={option}"]).score == schema()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["score=frechet", "score.shrinkage=1.5"], "score.shrinkage"),
        (["score=mmd", "score.bandwidth=0"], "score.bandwidth"),
        (["score=kid", "score.bandwidth=-1"], "score.bandwidth"),
        (["score=prdc", "score.k_neighbours=0"], "score.k_neighbours"),
        (["score=frechet", "score.metric=l2"], "score.metric"),  # fixed by the option
    ],
)
def test_bad_score_settings_are_config_errors(
    compose_run: Compose,
    assert_config_error: Callable[[list[str], str], ConfigError],
    config_error: Callable[..., ConfigError],
    overrides: list[str],
    key: str,
) -> None:
    assert_config_error(overrides, key)
    if key != "score.metric":  # the scorer's own check names the key as well
        config_error(key, build_scorer, compose_run(["debug=smoke", *overrides]).score)


@pytest.mark.parametrize(
    ("overrides", "key", "named"),
    [
        (["score.metric=mahalanobis"], "score.metric", ["zscore_l2", "l2", "cosine"]),
        (["score=mmd", "score.kernel=laplace"], "score.kernel", ["rbf", "poly"]),
        (["score.kernel=rbf"], "score.kernel", ["CentroidScoreConfig"]),  # not a centroid key
        (["score=mmd", "score.k_neighbours=3"], "score.k_neighbours", ["MMDScoreConfig"]),
    ],
)
def test_bad_score_keys_and_choices_fail_at_composition(
    compose_run: Compose, overrides: list[str], key: str, named: list[str]
) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_run(["debug=smoke", *overrides])
    message = str(info.value.__cause__)
    assert f"full_key: {key}" in message
    assert all(word in message for word in named), message


def test_build_scorer_names_the_key_of_a_config_built_in_python() -> None:
    bad = CentroidScoreConfig(metric="mahalanobis")  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        build_scorer(bad)
    assert info.value.key == "score.metric"
    assert all(m in str(info.value) for m in METRICS)
    with pytest.raises(ConfigError) as checked:
        check_run_config_score(bad)
    assert checked.value.key == "score.metric"


def test_schema_choices_are_the_scorers_choices() -> None:
    assert tuple(m.value for m in CentroidMetric) == METRICS
    assert tuple(m.value for m in Kernel) == KERNELS
    fixed = [s().metric for s in (FrechetScoreConfig, MMDScoreConfig, PRDCScoreConfig)]
    assert (*METRICS, *fixed) == SCORE_METRICS
    assert KIDScoreConfig().metric == "mmd"


@pytest.mark.parametrize(
    ("scorer", "has_residual"),
    [
        (CentroidScorer("zscore_l2"), True),
        (CentroidScorer("l2"), True),
        (CentroidScorer("cosine"), False),
        *((FACTORIES[name](), False) for name in NAMES),
    ],
    ids=repr,
)
def test_has_residual_is_asked_of_the_scorer(scorer: Scorer, has_residual: bool) -> None:
    target, _, _ = _target(5)
    scorer.fit(target)
    assert scorer.has_residual is has_residual
    batch = target[:8] + 0.5
    if has_residual:
        assert np.linalg.norm(scorer.residual(batch)) == pytest.approx(scorer.score(batch))
    else:
        with pytest.raises(ValueError, match="no residual"):
            scorer.residual(batch)


def test_centroid_scorer_shares_the_standardised_base() -> None:
    """zscore_l2 z-scores exactly as the distribution scorers do; l2 and cosine stay raw."""
    target = _target(6)[0]
    batch = target[:10] * 1.1 + 0.2
    z = CentroidScorer("zscore_l2").fit(target)
    f = FrechetScorer().fit(target)
    assert isinstance(z, _StandardisedScorer) and z.standardise
    np.testing.assert_array_equal(z._z(batch), f._z(batch))
    raw = CentroidScorer("l2").fit(target)
    assert not raw.standardise
    np.testing.assert_array_equal(raw._z(batch), batch)
    assert raw.score(batch) == pytest.approx(
        float(np.linalg.norm(batch.mean(0) - target.mean(0))), rel=1e-12
    )
