"""Resume after ``kill -9``: a real process kill mid-trial, then the same command again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from gen_loop.loop.summary import RunSummary
from gen_loop.search.storage import retried_trial_numbers
from gen_loop.tracking import TRIAL_TAG
from tests.cli import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _args(n_trials: int) -> list[str]:
    """The ``python -m gen_loop`` arguments of the run that is killed, then run again."""
    return [
        "run",
        "debug=smoke",
        # TPE proposes in milliseconds: the kill lands in a render, not in vector_gp's ~1 s
        # proposal (a RUNNING trial without parameters yet).
        "search=tpe",
        f"search.n_trials={n_trials}",
        "search.floor_factor=1e-6",  # the whole budget: no early convergence
        "finetune.enabled=false",
        "hydra.run.dir=runs/killed",
    ]


#: Trials of ~0.3 s (64 images at 128 px) rather than the smoke profile's ~25 ms, so that a
#: kill sent right after a running trial is seen lands inside that trial.
_SLOW_TRIALS = ["search.batch_size=64", "generator.width=128", "generator.height=128"]


def _running(db: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{db}")
    return study.get_trials(states=(TrialState.RUNNING,))


def test_kill_9_mid_trial_then_rerun_resumes_and_retries(
    tmp_path: Path, start_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    run_dir = tmp_path / "runs" / "killed"
    proc = start_cli(tmp_path, *_args(12), *_SLOW_TRIALS, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    lines = 0
    for line in proc.stdout:
        lines += "| floor " in line
        if lines >= 3:
            break
    assert lines >= 3, "the run ended before three trials"
    deadline = time.monotonic() + 120
    # Kill *inside* a trial, past its parameters (the stage is stored just before the render).
    while not (running := [t for t in _running(run_dir / "optuna.db") if "stage" in t.user_attrs]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # The trial the kill interrupted, read once the process is dead (the copy read before the
    # kill may hold only some of its parameters: they are stored one suggestion at a time). On
    # a loaded machine the trial seen running can finish before the signal lands: the kill then
    # interrupts the next one, which serves as well.
    dead = _running(run_dir / "optuna.db")
    assert len(dead) == 1, f"the kill left {len(dead)} trials running, not one"
    killed = dead[0]
    assert killed.number >= running[0].number
    parent_id = (run_dir / "mlflow_run_id").read_text().strip()
    assert not (run_dir / "summary.json").exists()

    again = run_cli(tmp_path, *_args(12), *_SLOW_TRIALS)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert f"trial {killed.number} was interrupted earlier" in again.stderr + again.stdout

    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    trials = study.trials
    assert len(trials) == 12 + 1  # the budget, plus the killed trial's failed copy
    assert trials[killed.number].state == TrialState.FAIL
    retries = [t for t in trials if retried_trial_numbers(t) == [killed.number]]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    # The same point, re-run (its parameters as far as the killed trial had stored them: on a
    # loaded machine the kill can still land between two suggestions).
    assert killed.params.items() <= retries[0].params.items()
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number != killed.number)
    completed_before = killed.number  # trials 0 .. killed-1 finished before the kill, kept
    assert again.stdout.count("| floor ") == 12 - completed_before

    summary = RunSummary.load(run_dir / "summary.json")
    assert summary.mlflow.run_id == parent_id  # the parent run is continued
    assert (summary.n_trials, summary.n_failed, summary.n_retried) == (13, 1, 1)
    client = MlflowClient(summary.mlflow.tracking_uri)
    assert client.get_run(parent_id).info.status == "FINISHED"
    parents = client.search_runs([client.get_run(parent_id).info.experiment_id])
    assert sum("mlflow.parentRunId" not in r.data.tags for r in parents) == 1  # no duplicate
    # The killed trial's child run (if its creation reached the store) is ended, not RUNNING.
    children = [r for r in parents if r.data.tags.get("mlflow.parentRunId") == parent_id]
    assert children and not [r for r in children if r.info.status == "RUNNING"]
    of_killed = [r for r in children if r.data.tags.get(TRIAL_TAG) == str(killed.number)]
    assert [r.info.status for r in of_killed] in ([], ["KILLED"])
