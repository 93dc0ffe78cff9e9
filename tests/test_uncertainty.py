"""The best camera's parameter uncertainty: the covariance formula, the estimate, and a run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import FloatDistribution

from gen_loop.loop.summary import RunSummary
from gen_loop.search.refine import Box
from gen_loop.search.uncertainty import (
    LOOSE_SHARE,
    ParamUncertainty,
    estimate,
    parameter_covariance,
    uncertainty_line,
)
from tests.cli import run_cli

B, N, D, P = 8, 40, 12, 3  # batch, target images, residual components, parameters


def test_the_covariance_is_that_of_least_squares_under_the_targets_own_noise() -> None:
    # A linear residual r(u) = J u + e, e the mean of B batch images minus the mean of the n
    # target images, each image's contribution correlated across components. The
    # least-squares solution -pinv(J) e over many draws has the covariance the formula gives
    # from the target images' residuals alone.
    n = 400
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(D, P))
    mix = rng.normal(size=(D, D)) / math.sqrt(D)
    predicted = parameter_covariance(jac, rng.normal(size=(n, D)) @ mix.T, B)
    draws = []
    for _ in range(4000):
        batch = rng.normal(size=(B, D)) @ mix.T
        target = rng.normal(size=(n, D)) @ mix.T
        draws.append(-np.linalg.pinv(jac) @ (batch.mean(0) - target.mean(0)))
    measured = np.cov(np.array(draws), rowvar=False)
    assert np.allclose(np.diag(predicted), np.diag(measured), rtol=0.15)
    assert np.allclose(predicted, measured, atol=0.15 * np.max(np.diag(measured)))


def test_a_direction_the_residual_cannot_see_leaves_only_its_parameters_free() -> None:
    rng = np.random.default_rng(1)
    jac = rng.normal(size=(D, P))
    jac[:, 2] = 0.0  # the third parameter moves nothing
    cov = parameter_covariance(jac, rng.normal(size=(N, D)), B)
    assert math.isinf(cov[2, 2])
    assert np.all(np.isfinite(cov[:2, :2])) and cov[0, 0] > 0 and cov[1, 1] > 0


def test_the_estimate_is_in_the_parameters_units_and_points_to_the_optimum() -> None:
    box = Box.of(
        {
            "color_temp_k": FloatDistribution(3500, 10000),
            "exposure_ev": FloatDistribution(-1.5, 1.5),
            "noise_std": FloatDistribution(0.001, 0.1, log=True),
        },
        set(),
    )
    rng = np.random.default_rng(2)
    jac = rng.normal(size=(D, P))
    best = {"color_temp_k": 5000.0, "exposure_ev": 0.0, "noise_std": 0.01}
    towards = np.array([0.02, -0.01, 0.03])  # where the minimum lies, in the unit cube
    per_image = rng.normal(size=(N, D))
    found = estimate(box, best, jac, -jac @ towards, per_image, B, 0.2, 0.2)
    shares = np.sqrt(np.diag(parameter_covariance(jac, per_image, B)))
    by_name = {u.name: u for u in found}
    assert [u.offset for u in found] == pytest.approx(list(towards))
    assert by_name["color_temp_k"].std == pytest.approx(shares[0] * 6500)
    assert by_name["exposure_ev"].std == pytest.approx(shares[1] * 3.0)
    # a log-scale parameter: std = value * share * log(high / low) (the delta method)
    assert by_name["noise_std"].std == pytest.approx(0.01 * shares[2] * math.log(100))
    # above the floor the covariance grows with (best / floor)^2: the std with best / floor
    above = estimate(box, best, jac, -jac @ towards, per_image, B, 0.6, 0.2)
    assert [u.share for u in above] == pytest.approx([3 * s for s in shares])


def test_the_console_names_the_loose_parameters_apart() -> None:
    tight = ParamUncertainty("color_temp_k", 4359.1, 23.4, 0.0036, 0.001)
    loose = ParamUncertainty("vignetting", 0.3335, 0.124, 0.155, -0.02)
    blind = ParamUncertainty("fisheye", 0.5, None, None)
    assert ParamUncertainty(**tight.to_dict()) == tight
    assert not tight.loose and loose.loose and blind.loose
    line = uncertainty_line([u.to_dict() for u in (tight, loose, blind)])
    assert line == (
        "best camera, one std (share of the range): color_temp_k 4359 ± 23 (0.4%); "
        f"not pinned down by the distance (std > {100 * LOOSE_SHARE:.0f}% of the range): "
        "vignetting 0.3335 ± 0.12 (15.5%), fisheye 0.5 (not determined by the trials)"
    )


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_reports_each_parameters_uncertainty_everywhere(tmp_path: Path) -> None:
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "finetune.enabled=false",
        "analysis.enabled=false",
        "hydra.run.dir=runs/x",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = RunSummary.load(tmp_path / "runs" / "x" / "summary.json")
    found = [ParamUncertainty(**u) for u in summary.parameter_uncertainty or []]
    assert [u.name for u in found] == list(summary.best_params)  # every searched parameter
    for u in found:
        assert u.value == pytest.approx(summary.best_params[u.name])
        assert u.share is None or (u.share > 0 and u.std is not None and u.std > 0)
    assert "best camera, one std (share of the range): " in proc.stdout
    assert summary.timings_s["uncertainty_s"] > 0
    run = MlflowClient(summary.mlflow.tracking_uri).get_run(summary.mlflow.run_id)
    logged = {k.removeprefix("uncertainty_share.") for k in run.data.metrics}
    assert {u.name for u in found if u.share is not None} <= logged
    loose = ", ".join(u.name for u in found if u.loose) or "none"
    assert run.data.tags["gen_loop.loose_params"] == loose

    off = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "search.uncertainty=false",
        "finetune.enabled=false",
        "analysis.enabled=false",
        "hydra.run.dir=runs/off",
    )
    assert off.returncode == 0, off.stdout[-2000:] + off.stderr[-3000:]
    assert (
        RunSummary.load(tmp_path / "runs" / "off" / "summary.json").parameter_uncertainty is None
    )
    assert "best camera, one std" not in off.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_a_plateau_stop_is_polished_by_one_more_trial_within_the_budget(tmp_path: Path) -> None:
    import optuna

    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "search.patience=2",
        "search.min_rel_improvement=0.5",  # a plateau on any trajectory: only a halving counts
        "search.n_trials=12",
        "finetune.enabled=false",
        "analysis.enabled=false",
        "hydra.run.dir=runs/p",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = RunSummary.load(tmp_path / "runs" / "p" / "summary.json")
    assert summary.stop_reason.startswith("plateau"), summary.stop_reason
    study = optuna.load_study(
        study_name=summary.study.name, storage=f"sqlite:///{tmp_path / 'runs' / 'p' / 'optuna.db'}"
    )
    polished = [t for t in study.trials if t.user_attrs.get("stage") == "polish"]
    assert len(polished) == 1 and polished[0].number == len(study.trials) - 1  # the last one
    assert len(study.trials) <= 12  # within the budget
    done = [t for t in study.trials if t.value is not None]
    assert summary.best_trial == min(done, key=lambda t: t.value).number  # it can be the best
    assert "polish: Gauss-Newton step on the Jacobian measured at trial" in proc.stdout
    assert summary.parameter_uncertainty  # on the Jacobian the polish measured

    again = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "search.patience=2",
        "search.min_rel_improvement=0.5",  # a plateau on any trajectory: only a halving counts
        "search.n_trials=12",
        "search.polish=false",
        "finetune.enabled=false",
        "analysis.enabled=false",
        "hydra.run.dir=runs/off",
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    off = RunSummary.load(tmp_path / "runs" / "off" / "summary.json")
    assert off.n_trials == summary.n_trials - 1  # the same search, without the polish trial
    assert "polish:" not in again.stdout


@pytest.fixture(scope="module")
def polish_parts(fit_scorer, trial_setup):
    from gen_loop.generator.procedural import ProceduralGenerator
    from gen_loop.search.space import SearchSpace
    from tests.conftest import LOOP_SIZE

    gen = ProceduralGenerator(LOOP_SIZE, LOOP_SIZE)
    scorer = fit_scorer(gen, {"fisheye": 0.4, "color_temp_k": 4500.0}, 24, 99)
    space = SearchSpace(
        {"fisheye": FloatDistribution(0.0, 1.0), "color_temp_k": FloatDistribution(3500, 9000)}
    )
    return trial_setup(gen, scorer, space, 6)


def _searched_study(setup, tmp_path: Path, n_trials: int):
    from gen_loop.loop.observer import LoopObserver
    from gen_loop.loop.search_loop import search
    from gen_loop.search import Convergence
    from gen_loop.search.storage import StudyMutex
    from tests.conftest import random_study

    study = random_study(tmp_path)
    conv = Convergence(
        noise_floor=1e-9, floor_factor=1.0, patience=2, min_rel_improvement=0.5, n_trials=n_trials
    )
    outcome = search(study, setup, conv, LoopObserver())
    return study, conv, StudyMutex("", "s"), outcome


def test_the_polish_runs_once_a_study_and_resumes_a_requeued_trial(
    polish_parts, tmp_path: Path
) -> None:
    from gen_loop.loop.observer import LoopObserver
    from gen_loop.loop.polish_stage import POLISH_ATTR, POLISH_STAGE, polish

    setup = polish_parts
    study, conv, mutex, outcome = _searched_study(setup, tmp_path, n_trials=20)
    assert outcome.stop_reason.startswith("plateau"), outcome.stop_reason
    n = len(study.trials)
    measured = polish(study, setup, conv, LoopObserver(), mutex, outcome.stop_reason)
    assert measured is not None and measured.matrix.shape[1] == 2  # two parameters
    last = study.trials[-1]
    assert len(study.trials) == n + 1 and last.user_attrs["stage"] == POLISH_STAGE
    assert study.user_attrs[POLISH_ATTR]  # claimed: a second worker does not polish again
    assert polish(study, setup, conv, LoopObserver(), mutex, outcome.stop_reason) is None
    assert len(study.trials) == n + 1
    # Ctrl-C during the polish trial leaves a WAITING copy with its stage (workers.requeue);
    # the next run's polish runs it, whoever claimed the polish
    study.enqueue_trial(last.params, user_attrs={"stage": POLISH_STAGE})
    assert polish(study, setup, conv, LoopObserver(), mutex, outcome.stop_reason) is None
    assert study.trials[-1].user_attrs["stage"] == POLISH_STAGE
    assert study.trials[-1].value is not None  # it ran


def test_no_polish_after_a_budget_stop_or_with_the_budget_spent(
    polish_parts, tmp_path: Path
) -> None:
    from gen_loop.loop.observer import LoopObserver
    from gen_loop.loop.polish_stage import polish

    setup = polish_parts
    study, conv, mutex, _ = _searched_study(setup, tmp_path, n_trials=3)
    n = len(study.trials)
    assert polish(study, setup, conv, LoopObserver(), mutex, "budget: 3 trials") is None
    assert polish(study, setup, conv, LoopObserver(), mutex, "plateau: no gain") is None
    assert len(study.trials) == n  # the budget was spent: nothing added
