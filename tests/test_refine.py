"""``search.refine``: the residual vector, the config checks and a smoke run that refines."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from gen_loop.config.validate import check_run_config
from gen_loop.loop.summary import RunSummary
from gen_loop.score import CentroidScorer
from gen_loop.search.refine import Box
from tests.cli import run_cli


@pytest.mark.parametrize("metric", ["zscore_l2", "l2"])
def test_residual_norm_is_the_score(metric: str) -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(2.0, [1.0, 5.0, 0.1, 3.0, 1.0], size=(40, 5))
    scorer = CentroidScorer(metric).fit(target)  # type: ignore[arg-type]
    for shift in (0.0, 0.3, 4.0):
        batch = rng.normal(2.0 + shift, 1.0, size=(8, 5))
        vec = scorer.residual(batch)
        assert vec.shape == (5,)
        assert math.isclose(float(np.linalg.norm(vec)), scorer.score(batch), rel_tol=1e-12)


def test_cosine_has_no_residual() -> None:
    scorer = CentroidScorer("cosine").fit(np.eye(4) + 1.0)
    with pytest.raises(ValueError, match="no residual"):
        scorer.residual(np.ones((2, 4)))


def test_box_refines_unconditional_floats_on_the_unit_cube() -> None:
    dists = {
        "a": FloatDistribution(0.0, 2.0),
        "b": FloatDistribution(1e-3, 10.0, log=True),
        "n": IntDistribution(0, 3),
        "c": FloatDistribution(0.0, 1.0),
        "s": FloatDistribution(0.0, 1.0, step=0.1),
    }
    box = Box.of(dists, conditional={"c"})
    assert box.names == ("a", "b")
    u = box.to_unit({"a": 0.5, "b": 0.1, "n": 2})
    np.testing.assert_allclose(u, [0.25, 0.5])
    back = box.from_unit(u)
    assert back["a"] == pytest.approx(0.5) and back["b"] == pytest.approx(0.1)
    corner = box.from_unit(np.array([1.5, -1.0]))  # clipped into the bounds
    assert corner == {"a": 2.0, "b": pytest.approx(1e-3)} and corner["b"] >= 1e-3


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (
            ["search.refine.method=lsq", "search.refine.after=3", "score=mmd"],
            "search.refine.method",
        ),
        (["search.refine.method=lsq", "search.refine.after=0"], "search.refine.after"),
        (["search.refine.method=lsq", "search.refine.after=-2"], "search.refine.after"),
        (
            ["search.refine.method=lsq", "search.refine.after=3", "search.refine.diff_step=0"],
            "search.refine.diff_step",
        ),
        (
            ["search.refine.method=lsq", "search.refine.after=3", "search.refine.diff_step=0.9"],
            "search.refine.diff_step",
        ),
    ],
)
def test_bad_refine_settings_name_their_key(
    assert_config_error, overrides: list[str], key: str
) -> None:
    # An unknown method fails at composition (tests/test_config.py, the typed choices).
    assert_config_error(overrides, key)  # smoke: search.n_trials=6


@pytest.mark.parametrize(
    "overrides",
    [
        ["search.refine.method=lsq", "search.refine.after=3"],
        ["search.refine.method=lsq", "search.refine.after=50"],  # never starts in 6 trials
        ["search.refine.method=auto", "score=mmd"],  # auto: lsq only where the metric allows
    ],
)
def test_good_refine_settings_pass(compose_run, overrides: list[str]) -> None:
    check_run_config(compose_run(["debug=smoke", *overrides]))


def test_smoke_run_refines_after_the_sampler(tmp_path: Path) -> None:
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "search.refine.method=lsq",
        "search.refine.after=4",
        "search.n_trials=12",
        "search.floor_factor=1e-9",  # no convergence stop: the budget ends the run
        "finetune.enabled=false",
        "hydra.run.dir=runs/r",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "r"
    summary = RunSummary.load(run_dir / "summary.json")
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert len(trials) == 12 and all(t.state == TrialState.COMPLETE for t in trials)
    stages = [t.user_attrs["stage"] for t in trials]
    assert stages[0] == "start" and "sampler" in stages[:4]
    assert stages[4:] == ["refine"] * 8  # after 4 finished trials, every trial is refinement
    before = min(t.user_attrs["distance"] for t in trials[:4])
    assert summary.best_distance <= before
    assert summary.n_refine_trials == 8
    # the first refinement trial re-evaluates the best of the first four (common scene seed)
    best_before = min(trials[:4], key=lambda t: t.user_attrs["distance"])
    assert trials[4].params == pytest.approx(best_before.params)
    assert trials[4].user_attrs["distance"] == pytest.approx(best_before.user_attrs["distance"])
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = (run_dir / "mlflow_run_id").read_text().strip()
    children = client.search_runs(
        [client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert sorted(c.data.params["stage"] for c in children) == sorted(stages)
    assert "refining trial" in proc.stdout and "refinement ended" in proc.stdout


def test_an_interrupted_refinement_trial_is_retried_and_refinement_resumes(
    trial_setup, fit_scorer, logged_search, tmp_path: Path
) -> None:
    from gen_loop.config.schema import RefineConfig
    from gen_loop.generator import ProceduralGenerator
    from gen_loop.search import Convergence, make_sampler
    from gen_loop.search.space import SearchSpace
    from gen_loop.search.workers import WORKER_ATTR
    from tests.conftest import LOOP_SIZE, random_study

    gen = ProceduralGenerator(LOOP_SIZE, LOOP_SIZE)
    scorer = fit_scorer(gen, {"fisheye": 0.4, "color_temp_k": 4500.0}, 24, 99)
    space = SearchSpace(
        {"fisheye": FloatDistribution(0.0, 1.0), "color_temp_k": FloatDistribution(3500, 9000)}
    )
    refine = RefineConfig(method="lsq", after=3, diff_step=0.05)
    setup = trial_setup(gen, scorer, space, 6, refine=refine)
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    study = random_study(tmp_path)
    for point in (
        {"fisheye": 0.8, "color_temp_k": 8000.0},
        {"fisheye": 0.2, "color_temp_k": 5000.0},
    ):
        study.enqueue_trial(point)
    # A refinement trial whose process died mid-trial (what a kill -9 leaves behind).
    study.enqueue_trial({"fisheye": 0.3, "color_temp_k": 4800.0}, user_attrs={"stage": "refine"})
    conv = Convergence(
        noise_floor=1e-9, floor_factor=1.0, patience=100, min_rel_improvement=0.01, n_trials=3
    )
    logged_search(study, setup, conv, trial_images=0)  # trials 0-2 (the sampler's stage)
    dead = study.ask()
    space.suggest(dead)  # its parameters were set before it died
    dead.set_user_attr(
        WORKER_ATTR,
        {"host": socket.gethostname(), "pid": 2**22 + 7, "start": "0"},
    )
    resumed = optuna.load_study(
        study_name="s", storage=storage, sampler=make_sampler("random", 1, 0, False)
    )
    conv_more = Convergence(
        noise_floor=1e-9, floor_factor=1.0, patience=100, min_rel_improvement=0.01, n_trials=10
    )
    outcome = logged_search(resumed, setup, conv_more, trial_images=0).outcome
    trials = sorted(resumed.trials, key=lambda t: t.number)
    assert outcome.stop_reason.startswith("budget")
    assert trials[dead.number].state == TrialState.FAIL  # the dead one, superseded by its retry
    retry = trials[dead.number + 1]
    assert retry.state == TrialState.COMPLETE and retry.params == trials[dead.number].params
    assert retry.user_attrs["stage"] == "refine"
    refined = [t for t in trials[dead.number + 2 :] if t.user_attrs.get("stage") == "refine"]
    assert len(refined) == 10 - 4  # the rest of the budget: refinement from the study's best
    best_before = min(
        t.user_attrs["distance"] for t in trials[: dead.number + 2] if "distance" in t.user_attrs
    )
    assert min(t.user_attrs["distance"] for t in refined) <= best_before * (1 + 1e-6)
