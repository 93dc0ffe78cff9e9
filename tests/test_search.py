"""Tests of the search stage: the space, the sampler, the stored study and the stop rule."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from gen_loop.config import ParamRangeConfig, RunConfig
from gen_loop.errors import ConfigError
from gen_loop.generator import ParamSpec, ProceduralGenerator
from gen_loop.search import (
    SAMPLERS,
    Convergence,
    build_space,
    make_sampler,
    open_study,
    to_objective,
)
from gen_loop.search.storage import retried_trial_numbers
from gen_loop.search.workers import WORKER_ATTR, StudyView, fail_dead_trials, worker_id

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

SPECS: Mapping[str, ParamSpec] = ProceduralGenerator(64, 64).parameters


def _space() -> dict[str, BaseDistribution]:
    return {
        "fisheye": FloatDistribution(0.0, 0.9),
        "contrast": FloatDistribution(0.6, 1.4),
    }


def _objective(params: Mapping[str, object]) -> float:
    return sum((float(v) - 0.5) ** 2 for v in params.values())  # type: ignore[arg-type]


# --- build_space ---------------------------------------------------------------------------


def test_default_space_becomes_float_distributions_with_the_yaml_bounds(
    compose_run: Callable[[list[str]], RunConfig],
) -> None:
    cfg = compose_run(["debug=smoke"])
    space = build_space(cfg.search.space, SPECS).distributions
    assert set(space) == set(cfg.search.space)
    assert len(space) == 6
    for name, dist in space.items():
        entry = cfg.search.space[name]
        assert isinstance(dist, FloatDistribution), name
        assert (dist.low, dist.high, dist.log) == (entry.low, entry.high, False), name
    assert space["color_temp_k"].low == 3500.0
    assert space["fisheye"].high == 0.9


def test_int_log_and_categorical_entries() -> None:
    specs = {
        **SPECS,
        "weather": ParamSpec("weather", "clear", choices=("clear", "rain", "snow")),
    }
    space = build_space(
        {
            "color_temp_k": ParamRangeConfig(type="int", low=3500, high=9000, step=500),
            "noise_std": ParamRangeConfig(low=0.001, high=0.1, log=True),
            "weather": ParamRangeConfig(type="categorical", choices=["clear", "rain"]),
        },
        specs,
    ).distributions
    assert space["color_temp_k"] == IntDistribution(3500, 9000, step=500)
    assert space["noise_std"] == FloatDistribution(0.001, 0.1, log=True)
    assert space["weather"] == CategoricalDistribution(["clear", "rain"])


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("nope", ParamRangeConfig(low=0.0, high=1.0)),  # unknown parameter
        ("fisheye", ParamRangeConfig(low=0.5, high=0.5)),  # low == high
        ("fisheye", ParamRangeConfig(low=0.8, high=0.2)),  # low > high
        ("fisheye", ParamRangeConfig(low=0.0, high=3.0)),  # above the generator's range
        ("exposure_ev", ParamRangeConfig(low=-5.0, high=0.0)),  # below the generator's range
        ("exposure_ev", ParamRangeConfig(low=-1.0, high=1.0, log=True)),  # log, low < 0
        ("vignetting", ParamRangeConfig(low=0.0, high=0.5, log=True)),  # log, low == 0
        ("fisheye", ParamRangeConfig(high=0.5)),  # no low
        ("fisheye", ParamRangeConfig(low=0.1)),  # no high
        ("fisheye", ParamRangeConfig(type="double", low=0.0, high=0.5)),  # bad type
        ("fisheye", ParamRangeConfig(type="categorical")),  # no choices
        ("fisheye", ParamRangeConfig(type="categorical", choices=[])),  # empty choices
        ("fisheye", ParamRangeConfig(type="categorical", choices=[0.1, 2.0])),  # out of range
    ],
)
def test_bad_space_entry_is_a_config_error_naming_its_key(
    config_error: Callable[..., ConfigError], name: str, entry: ParamRangeConfig
) -> None:
    good = {"contrast": ParamRangeConfig(low=0.6, high=1.4)}
    config_error(f"search.space.{name}", build_space, {**good, name: entry}, SPECS, prefix=True)


def test_empty_space_is_a_config_error(config_error: Callable[..., ConfigError]) -> None:
    config_error("search.space", build_space, {}, SPECS)


# --- make_sampler ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("qmc", optuna.samplers.QMCSampler),
    ],
)
def test_sampler_types(kind: str, cls: type) -> None:
    assert kind in SAMPLERS
    assert isinstance(make_sampler(kind, 0, 3, True), cls)


def test_unknown_sampler_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"search\.sampler") as info:
        make_sampler("cmaes", 0, 3, True)
    assert info.value.key == "search.sampler"


def _first_params(kind: str, seed: int, n: int = 5) -> list[dict[str, object]]:
    study = optuna.create_study(sampler=make_sampler(kind, seed, 2, True))
    asked = []
    for _ in range(n):
        trial = study.ask(_space())
        asked.append(trial.params)
        study.tell(trial, _objective(trial.params))
    return asked


@pytest.mark.parametrize("kind", SAMPLERS)
def test_same_seed_gives_the_same_first_trials(kind: str) -> None:
    first = _first_params(kind, seed=7)
    assert first == _first_params(kind, seed=7)
    assert first != _first_params(kind, seed=8)
    for params in first:
        assert 0.0 <= params["fisheye"] <= 0.9  # type: ignore[operator]
        assert 0.6 <= params["contrast"] <= 1.4  # type: ignore[operator]


# --- open_study ------------------------------------------------------------------------------


def test_new_study_starts_with_the_start_params_and_resumes(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    start = {"fisheye": 0.0, "contrast": 1.0}
    study = open_study("s", storage, make_sampler("random", 0, 2, True), start)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert len(waiting) == 1
    assert waiting[0].user_attrs == {"role": "start"}

    first = study.ask(_space())
    assert first.number == 0
    assert first.params == start
    study.tell(first, 1.0)
    second = study.ask(_space())
    assert second.params != start
    study.tell(second, 0.5)

    resumed = open_study("s", storage, make_sampler("random", 1, 2, True), start)
    assert [t.number for t in resumed.trials] == [0, 1]
    assert all(t.state == TrialState.COMPLETE for t in resumed.trials)
    assert resumed.trials[0].user_attrs["role"] == "start"
    assert resumed.best_value == 0.5

    other = open_study("other", storage, make_sampler("random", 0, 2, True), start)
    assert len(other.trials) == 1  # a new name in the same storage is a new study


def test_reopening_before_any_trial_does_not_enqueue_twice(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    start = {"fisheye": 0.3, "contrast": 1.1}
    open_study("s", storage, make_sampler("tpe", 0, 2, True), start)
    again = open_study("s", storage, make_sampler("tpe", 0, 2, True), start)
    assert len(again.trials) == 1


# --- Convergence -----------------------------------------------------------------------------


def _convergence(**kw: float | int | None) -> Convergence:
    settings: dict = dict(
        noise_floor=1.0, floor_factor=1.0, patience=100, min_rel_improvement=0.1, n_trials=100
    )
    settings.update(kw)
    return Convergence(**settings)


def test_converged_at_the_noise_floor() -> None:
    conv = _convergence(noise_floor=2.0, floor_factor=1.5)
    conv.update(0, 3.5)
    assert conv.stop_reason(0.0) is None
    conv.update(1, 3.0)  # == 1.5 x 2.0
    reason = conv.stop_reason(0.0)
    assert reason is not None
    assert reason.startswith("converged")


def test_plateau_after_patience_trials_without_enough_improvement_and_not_before() -> None:
    conv = _convergence(patience=3, min_rel_improvement=0.1)
    conv.update(0, 10.0)
    conv.update(1, 5.0)  # a real improvement resets the count
    assert conv.since_improvement == 0
    conv.update(2, 4.8)  # better, but by less than 10 %: does not count as progress
    conv.update(3, 6.0)
    assert conv.best == 4.8
    assert conv.since_improvement == 2
    assert conv.stop_reason(0.0) is None
    conv.update(4, 4.4)  # 8 % better than 4.8: still not enough
    reason = conv.stop_reason(0.0)
    assert reason is not None
    assert reason.startswith("plateau")
    assert conv.best == 4.4
    assert conv.best_trial == 4


def test_improvement_just_before_patience_runs_out_keeps_the_search_going() -> None:
    conv = _convergence(patience=2, min_rel_improvement=0.1)
    for number, value in enumerate([10.0, 10.5, 8.0, 7.5, 6.0]):
        conv.update(number, value)
        assert conv.stop_reason(0.0) is None, number


def test_budget_in_trials() -> None:
    conv = _convergence(n_trials=3)
    for number, value in enumerate([9.0, 5.0]):
        conv.update(number, value)
        assert conv.stop_reason(0.0) is None
    conv.update(2, 2.0)
    assert conv.stop_reason(0.0) == "budget: 3 trials"


def test_time_budget() -> None:
    conv = _convergence(timeout_s=30.0)
    conv.update(0, 5.0)
    assert conv.stop_reason(29.9) is None
    reason = conv.stop_reason(30.0)
    assert reason is not None
    assert reason.startswith("time budget")
    assert _convergence(timeout_s=None).stop_reason(1e9) is None


def test_failed_trials_count_toward_the_budget_and_the_plateau() -> None:
    budget = _convergence(n_trials=3)
    budget.update(0, 5.0)
    budget.update(1, None)
    assert budget.stop_reason(0.0) is None
    budget.update(2, math.nan)  # a non-finite distance is a failure too
    assert budget.stop_reason(0.0) == "budget: 3 trials"
    assert budget.history == [5.0]

    plateau = _convergence(patience=2)
    plateau.update(0, 5.0)
    plateau.update(1, None)
    assert plateau.stop_reason(0.0) is None
    plateau.update(2, None)
    reason = plateau.stop_reason(0.0)
    assert reason is not None
    assert reason.startswith("plateau")
    assert (plateau.best, plateau.best_trial) == (5.0, 0)


def test_best_tracking() -> None:
    conv = _convergence()
    assert (conv.best, conv.best_trial) == (math.inf, None)
    for number, value in [(0, 4.0), (1, None), (2, 3.0), (3, 3.5), (7, 2.5), (8, 2.6)]:
        conv.update(number, value)
    assert (conv.best, conv.best_trial) == (2.5, 7)
    assert conv.trials_seen == 6
    assert conv.history == [4.0, 3.0, 3.5, 2.5, 2.6]


# --- resume: dead workers' trials --------------------------------------------------------------


def test_resume_fails_and_requeues_a_dead_workers_trial_and_feeds_completed_ones(
    tmp_path: Path,
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    start = {"fisheye": 0.0, "contrast": 1.0}
    study = open_study("s", storage, make_sampler("random", 0, 2, True), start)
    for distance in (3.0, 1.5):
        study.tell(study.ask(_space()), to_objective(distance))
    failed = study.ask(_space())
    study.tell(failed, state=TrialState.FAIL)
    alive = study.ask(_space())  # another live worker's trial (this process)
    alive.set_user_attr(WORKER_ATTR, worker_id())
    killed = study.ask(_space())  # asked, never told: its process died mid-trial
    killed.set_user_attr(WORKER_ATTR, {**worker_id(), "pid": _dead_pid()})
    lost_params = killed.params
    assert lost_params  # the space was sampled

    resumed = open_study("s", storage, make_sampler("random", 1, 2, True), start)
    assert fail_dead_trials(resumed) == [killed.number]  # the live worker's trial is kept
    trials = resumed.trials
    assert trials[killed.number].state == TrialState.FAIL
    assert trials[alive.number].state == TrialState.RUNNING
    retry = [t for t in trials if t.state == TrialState.WAITING]
    assert len(retry) == 1
    assert retried_trial_numbers(retry[0]) == [killed.number]
    view = StudyView.of(resumed)
    assert (view.asked, view.running, view.n_failed, view.n_retried) == (4, 1, 2, 1)
    conv = view.convergence(_convergence(n_trials=10))
    assert (conv.best, conv.best_trial) == (pytest.approx(1.5), 1)
    assert conv.trials_seen == 3  # two completed, one failed; the killed one will be re-run

    rerun = resumed.ask(_space())
    assert rerun.params == lost_params
    resumed.tell(rerun, to_objective(0.25))
    resumed.tell(alive.number, to_objective(2.0))
    resumed_twice = open_study("s", storage, make_sampler("random", 2, 2, True), start)
    assert fail_dead_trials(resumed_twice) == []  # nothing running, nothing re-queued
    assert not resumed_twice.get_trials(states=(TrialState.WAITING, TrialState.RUNNING))
    again = StudyView.of(resumed_twice).convergence(_convergence(n_trials=10))
    assert (again.best, again.best_trial) == (pytest.approx(0.25), rerun.number)
    assert again.trials_seen == 5  # the superseded failure is not counted


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_objective_is_the_log_distance_and_round_trips() -> None:
    from gen_loop.search import from_objective

    for distance in (1e-6, 0.17, 1.0, 42.0):
        assert from_objective(to_objective(distance)) == pytest.approx(distance)
    assert to_objective(0.5) < to_objective(2.0)  # order kept: ranks are unchanged
    assert math.isfinite(to_objective(0.0))


# --- conditional, fixed and prior parameters ---------------------------------------------------


def _weather_space() -> dict[str, ParamRangeConfig]:
    return {
        "weather": ParamRangeConfig(type="categorical", choices=["clear", "fog"]),
        "fog": ParamRangeConfig(low=0.1, high=1.0, when={"weather": "fog"}),
        "fisheye": ParamRangeConfig(low=0.0, high=0.9),
    }


def test_conditional_parameter_is_searched_only_when_its_condition_holds() -> None:
    space = build_space(_weather_space(), ProceduralGenerator().parameters)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = space.suggest(trial)
        study.tell(trial, 0.0)
        seen.add(params["weather"])
        assert ("fog" in params) == (params["weather"] == "fog"), params
        assert "fisheye" in params
    assert seen == {"clear", "fog"}  # both branches were exercised
    assert space.restrict({"weather": "clear", "fog": 0.5, "fisheye": 0.1}) == {
        "weather": "clear",
        "fisheye": 0.1,
    }


def test_condition_errors_name_the_key() -> None:
    specs = ProceduralGenerator().parameters
    bad_value = {
        **_weather_space(),
        "fog": ParamRangeConfig(low=0.1, high=1.0, when={"weather": "snow"}),
    }
    with pytest.raises(ConfigError, match=r"search\.space\.fog\.when.*snow"):
        build_space(bad_value, specs)
    not_categorical = {
        "fisheye": ParamRangeConfig(low=0.0, high=0.9),
        "fog": ParamRangeConfig(low=0.1, high=1.0, when={"fisheye": 0.5}),
    }
    with pytest.raises(ConfigError, match=r"search\.space\.fog\.when"):
        build_space(not_categorical, specs)


def test_fixed_parameters_are_validated_and_kept_out_of_the_search() -> None:
    specs = ProceduralGenerator().parameters
    space = build_space(_weather_space(), specs, fixed={"gamma": 1.2})
    assert space.fixed == {"gamma": 1.2} and "gamma" not in space.distributions
    with pytest.raises(ConfigError, match=r"search\.fixed\.fisheye"):
        build_space(_weather_space(), specs, fixed={"fisheye": 0.2})
    with pytest.raises(ConfigError, match=r"search\.fixed\.gamma"):
        build_space(_weather_space(), specs, fixed={"gamma": 9.0})


def test_priors_are_enqueued_after_the_start_point(tmp_path: Path) -> None:
    specs = ProceduralGenerator().parameters
    space = build_space(
        _weather_space(), specs, enqueue=[{"weather": "fog", "fog": 0.6, "fisheye": 0.5}]
    )
    start = {"weather": "clear", "fisheye": 0.0}
    study = open_study(
        "p", f"sqlite:///{tmp_path / 'o.db'}", make_sampler("tpe", 0, 5, True), start, space.priors
    )
    first, second = study.ask(), study.ask()
    assert space.suggest(first) == start
    assert space.suggest(second) == {"weather": "fog", "fog": 0.6, "fisheye": 0.5}
    assert second.user_attrs["role"] == "prior"
    with pytest.raises(ConfigError, match=r"search\.enqueue\[0\]"):
        build_space(_weather_space(), specs, enqueue=[{"gamma": 1.0}])


def test_weather_search_config_builds_a_conditional_space(
    compose_run: Callable[[list[str]], RunConfig],
) -> None:
    cfg = compose_run(["search=weather"])
    space = build_space(cfg.search.space, SPECS, cfg.search.fixed, cfg.search.enqueue)
    assert space.conditions == {"fog": {"weather": "fog"}}
    assert space.fixed == {"sun_elevation": 45.0}
    assert len(space.distributions) == 8


def test_unreachable_database_storage_is_a_config_error_without_the_password(
    config_error: Callable[..., ConfigError],
) -> None:
    from gen_loop.search.storage import make_storage

    url = "postgresql://user:s3cret@127.0.0.1:1/db"
    err = config_error("search.storage", make_storage, url, None, None)
    assert "s3cret" not in str(err) and "user:***@127.0.0.1:1" in str(err)


@pytest.mark.parametrize("kind", ["vector_gp", "qmc"])
def test_worker_sessions_continue_one_sobol_design(kind: str) -> None:
    """Two sessions (own seeds, one design seed) taking turns on one study draw the points one
    session alone would: one space-filling design, not two interleaved."""

    def draws(samplers: list[optuna.samplers.BaseSampler]) -> list[dict[str, object]]:
        study = optuna.create_study(sampler=samplers[0])
        study.enqueue_trial({"fisheye": 0.0, "contrast": 1.0})
        asked = []
        for i in range(7):
            study.sampler = samplers[i % len(samplers)]
            trial = study.ask(_space())
            asked.append(trial.params)
            study.tell(trial, _objective(trial.params))
        return asked[1:]  # after the enqueued start point

    alone = draws([make_sampler(kind, 3, 10, True, design_seed=3)])
    shared = draws([make_sampler(kind, 3 + i, 10, True, design_seed=3) for i in range(2)])
    own = draws([make_sampler(kind, 3 + i, 10, True) for i in range(2)])
    assert shared == alone
    assert own != alone  # the former behaviour: a design per session, interleaved
