"""search.scene_seeds: common renders the same scenes in every trial, fresh new ones per trial."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution

from gen_loop.config import RunConfig
from gen_loop.config.validate import check_run_config
from gen_loop.generator import ProceduralGenerator
from gen_loop.loop.trial import trial_scene_seed
from gen_loop.score import CentroidScorer
from gen_loop.search import Convergence
from gen_loop.search.space import SearchSpace
from tests.conftest import LOOP_SIZE

SAME = {"fisheye": 0.3}  # every trial runs these parameters: only the scenes may differ
N_TRIALS = 4


@pytest.fixture(scope="module")
def parts(fit_scorer) -> tuple[ProceduralGenerator, CentroidScorer]:
    gen = ProceduralGenerator(LOOP_SIZE, LOOP_SIZE)
    return gen, fit_scorer(gen, {"fisheye": 0.5}, 16, 99)


def _search(
    parts, trial_setup, logged_search, mode: str, tmp_path: Path
) -> tuple[optuna.Study, list[dict[str, str]]]:
    """N_TRIALS trials of the same parameters; returns the study and the trials' MLflow params."""
    gen, scorer = parts
    space = SearchSpace({"fisheye": FloatDistribution(0.0, 1.0)})
    setup = trial_setup(
        gen, scorer, space, 4, scene_seed=7, max_consecutive_failures=2, scene_seeds=mode
    )
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    for _ in range(N_TRIALS):
        study.enqueue_trial(SAME)
    conv = Convergence(
        noise_floor=1e-9,
        floor_factor=1.0,
        patience=100,
        min_rel_improvement=0.01,
        n_trials=N_TRIALS,
    )
    logged = logged_search(study, setup, conv, trial_images=0)
    return study, [c.data.params for c in logged.children()]


def test_common_scene_seeds_render_the_same_scenes_every_trial(
    parts, trial_setup, logged_search, tmp_path: Path
) -> None:
    study, params = _search(parts, trial_setup, logged_search, "common", tmp_path)
    distances = {t.user_attrs["distance"] for t in study.trials}
    assert len(study.trials) == N_TRIALS and len(distances) == 1  # same params, same scenes
    assert all("scene_seed" not in t.user_attrs for t in study.trials)
    assert all("scene_seed" not in p for p in params)


def test_fresh_scene_seeds_render_new_scenes_every_trial_and_record_them(
    parts, trial_setup, logged_search, tmp_path: Path
) -> None:
    study, params = _search(parts, trial_setup, logged_search, "fresh", tmp_path)
    seeds = [t.user_attrs["scene_seed"] for t in study.trials]
    distances = {t.user_attrs["distance"] for t in study.trials}
    assert len(set(seeds)) == N_TRIALS and 7 not in seeds
    assert seeds == [trial_scene_seed("fresh", 7, t.number) for t in study.trials]
    assert len(distances) == N_TRIALS  # same params, other scenes: other distances
    assert sorted(int(p["scene_seed"]) for p in params) == sorted(seeds)


def test_trial_scene_seed() -> None:
    assert trial_scene_seed("common", 5, 0) == trial_scene_seed("common", 5, 9) == 5
    fresh = [trial_scene_seed("fresh", 5, n) for n in range(50)]
    assert len(set(fresh)) == 50
    assert fresh == [trial_scene_seed("fresh", 5, n) for n in range(50)]  # reproducible
    assert fresh != [trial_scene_seed("fresh", 6, n) for n in range(50)]
    with pytest.raises(ValueError, match=r"search\.scene_seeds"):
        trial_scene_seed("bogus", 5, 0)


def test_scene_seeds_config(compose_run: Callable[[list[str]], RunConfig]) -> None:
    assert compose_run([]).search.scene_seeds == "common"
    check_run_config(compose_run(["search.scene_seeds=fresh"]))
    # a bad value fails at composition: tests/test_config.py (the typed choices)
