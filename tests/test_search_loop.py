"""The ask/tell loop on real parts: failed trials are recorded and the loop goes on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from gen_loop.loop.trial import TrialSetup
from gen_loop.score import CentroidScorer
from gen_loop.search import Convergence
from gen_loop.search.space import SearchSpace
from tests.conftest import LOOP_SIZE, random_study
from tests.fakes import FlakyGenerator


@pytest.fixture(scope="module")
def parts(fit_scorer) -> tuple[FlakyGenerator, CentroidScorer]:
    gen = FlakyGenerator(LOOP_SIZE, LOOP_SIZE, fail_above=0.5)
    return gen, fit_scorer(gen, {"fisheye": 0.4, "color_temp_k": 4500.0}, 24, 99)


def _setup(parts, trial_setup, max_failures: int) -> TrialSetup:
    space = SearchSpace(
        {"fisheye": FloatDistribution(0.0, 1.0), "color_temp_k": FloatDistribution(3500, 9000)}
    )
    return trial_setup(*parts, space, 6, max_consecutive_failures=max_failures)


def test_failed_trials_are_recorded_and_the_loop_goes_on(
    parts, trial_setup, logged_search, tmp_path: Path
) -> None:
    setup = _setup(parts, trial_setup, max_failures=50)
    study = random_study(tmp_path)
    conv = Convergence(
        noise_floor=1e-9, floor_factor=1.0, patience=100, min_rel_improvement=0.01, n_trials=12
    )
    logged = logged_search(study, setup, conv)
    outcome, children = logged.outcome, logged.children()
    grids = _sample_grids(logged.client, children)  # logged when search returns
    states = [t.state for t in study.trials]
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(study.trials) == 12 and outcome.stop_reason.startswith("budget")
    assert failed and TrialState.COMPLETE in states  # some failed, the others still ran
    assert all(t.params["fisheye"] > 0.5 for t in failed)
    assert all("simulator crashed" in t.user_attrs["error"] for t in failed)
    assert outcome.n_failed == len(failed)
    by_status = {c.info.status for c in children}
    assert len(children) == 12 and by_status == {"FINISHED", "FAILED"}
    assert all(
        "simulator crashed" in c.data.tags["gen_loop.error"]
        for c in children
        if c.info.status == "FAILED"
    )
    finished = {c.info.run_id for c in children if c.info.status == "FINISHED"}
    assert grids == finished  # a sample grid for every finished trial, none for failed ones


def _sample_grids(client: MlflowClient, children: list[Run]) -> set[str]:
    """Ids of the child runs that hold a ``samples.png`` that decodes to an RGB image."""
    import cv2

    found = set()
    for run in children:
        if "samples.png" in {a.path for a in client.list_artifacts(run.info.run_id)}:
            local = client.download_artifacts(run.info.run_id, "samples.png")
            image = cv2.imread(local)
            assert image is not None and image.ndim == 3
            found.add(run.info.run_id)
    return found


def test_a_broken_generator_aborts_after_consecutive_failures(
    parts, trial_setup, logged_search, tmp_path: Path
) -> None:
    setup = _setup(parts, trial_setup, max_failures=3)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'o.db'}", sampler=optuna.samplers.RandomSampler(0)
    )
    for _ in range(5):  # every trial asks for a crashing fisheye
        study.enqueue_trial({"fisheye": 0.9, "color_temp_k": 5000.0})
    conv = Convergence(
        noise_floor=1e-9, floor_factor=1.0, patience=100, min_rel_improvement=0.01, n_trials=20
    )
    outcome = logged_search(study, setup, conv).outcome
    assert outcome.stop_reason.startswith("aborted: 3 consecutive failed trials")
    ran = [t for t in study.trials if t.state != TrialState.WAITING]
    assert len(ran) == 3 and not np.isfinite(conv.best)


def test_an_asked_trial_has_its_parameters_before_it_runs(tmp_path: Path) -> None:
    """Another worker asking next must see this running trial's point (the samplers' pending
    points), so ``ask`` stores the suggestion; ``run_trial`` then reads the same values."""
    from gen_loop.loop.trial import ask

    space = SearchSpace({"fisheye": FloatDistribution(0.0, 0.9)})
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    trial = ask(study, space)
    running = study.get_trials(states=(TrialState.RUNNING,))
    assert [t.params for t in running] == [trial.params] and "fisheye" in trial.params
    assert space.suggest(trial) == trial.params  # suggested again: the stored values
