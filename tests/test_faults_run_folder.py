"""Faults of a run folder, on the real command line: run again, resume against something else,
an unreadable summary, Ctrl-C, a target too small for its noise floor.

Each case asserts the exit code, the one line that names the file or config key (no
traceback), and that no earlier result changed: every file of the working directory (run
folder, Optuna study, MLflow store) hashes the same before and after, except Hydra's own record
of the latest command (``.hydra/``) and the logs, which Hydra writes before gen_loop starts.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from PIL import Image

from gen_loop.loop.console import INTERRUPTED
from gen_loop.loop.summary import RunSummary
from gen_loop.search.workers import superseded
from tests.cli import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The issue's command: the smoke profile (6 trials, one fine-tune epoch) in runs/x.
RUN = ["run", "debug=smoke", "search=tpe", "hydra.run.dir=runs/x"]  # tpe: instant proposals


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` but the cache, Hydra's ``.hydra/`` and logs."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0] == "cache" or ".hydra" in rel.parts:
            continue
        if path.suffix == ".log":
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _study(run_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")


def _one_line_error(proc: subprocess.CompletedProcess[str], *names: str) -> str:
    """The run failed as a user error: exit 2, no traceback, one ``error:`` line naming all of
    ``names``."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with one finished, fine-tuned run folder ``runs/x`` (read-only to
    the tests: a test that changes a run folder works on a copy)."""
    cwd = tmp_path_factory.mktemp("finished")
    proc = run_cli(cwd, *RUN)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = RunSummary.load(cwd / "runs" / "x" / "summary.json")
    assert summary.selected_count > 0 and summary.verdict.status != "unknown"
    return cwd


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[Path], Path]:
    """A function ``(cwd)``: a copy of that working directory (runs, stores and cache)."""

    def _copy(cwd: Path) -> Path:
        target = tmp_path / "copy"
        shutil.copytree(cwd, target)
        return target

    return _copy


def test_rerunning_a_finished_run_shows_it_and_changes_nothing(finished: Path) -> None:
    before = _hashes(finished)
    again = run_cli(finished, *RUN)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "this run is finished (budget: 6 trials)" in again.stdout
    assert "raise search.n_trials" in again.stdout
    summary = RunSummary.load(finished / "runs" / "x" / "summary.json")
    assert f"verdict                 : {summary.verdict.message}" in again.stdout
    assert "another worker" not in again.stdout  # no process named as if it were running
    assert "| floor " not in again.stdout  # no trial run
    assert _hashes(finished) == before


@pytest.mark.parametrize(
    ("overrides", "key", "what"),
    [
        (["target=folder", "target.path=other"], "target", "folder other (12 images)"),
        # search=tpe refines by lsq, which a cosine scorer cannot drive: auto lets the resume
        # check speak first
        (["score.metric=cosine", "search.refine.method=auto"], "score", "metric=cosine"),
    ],
)
def test_resuming_against_another_target_or_scorer_is_refused(
    finished: Path, overrides: list[str], key: str, what: str
) -> None:
    other = finished / "other"
    if not other.exists():
        rng = np.random.default_rng(0)
        other.mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(
                other / f"{i}.png"
            )
    before = _hashes(finished)
    proc = run_cli(finished, *RUN, "search.n_trials=30", *overrides)
    line = _one_line_error(proc, f"config key '{key}'", str(finished / "runs" / "x"), what)
    assert "was searched against" in line and "hydra.run.dir" in line
    assert _hashes(finished) == before  # the study, summary and MLflow run are untouched


def test_an_unreadable_summary_is_named_and_kept(
    finished: Path, copy_of: Callable[[Path], Path]
) -> None:
    cwd = copy_of(finished)
    summary = cwd / "runs" / "x" / "summary.json"
    summary.write_text(summary.read_text()[:100])  # cut short, as by a full disk
    before = _hashes(cwd)
    proc = run_cli(cwd, *RUN, "search.n_trials=30")
    _one_line_error(proc, str(summary), "hydra.run.dir")
    assert _hashes(cwd) == before


def _running_trial(run_dir: Path, after: int, deadline: float) -> optuna.trial.FrozenTrial:
    while True:
        running = [t for t in _study(run_dir).trials if t.state == TrialState.RUNNING]
        # Past the sampler (the stage is set just before the trial starts rendering): with
        # vector_gp, proposing a point takes a moment, and an interrupt there has no child run.
        if running and running[0].number >= after and "stage" in running[0].user_attrs:
            time.sleep(0.1)  # into the render, and the trial's MLflow child run started
            return running[0]
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.05)


def test_ctrl_c_in_a_continued_search_retries_the_trial_and_keeps_the_earlier_result(
    finished: Path,
    copy_of: Callable[[Path], Path],
    start_cli: Callable[..., subprocess.Popen[str]],
) -> None:
    cwd = copy_of(finished)
    run_dir = cwd / "runs" / "x"
    first = RunSummary.load(run_dir / "summary.json")
    earlier = {t.number: t.value for t in _study(run_dir).trials}
    # The run's own fine-tuned weights (the result may be the base checkpoint, outside the
    # folder, when the verdict rejected them).
    assert first.finetuned_weights is not None
    weights = Path(first.finetuned_weights).relative_to(finished)
    weights_hash = hashlib.sha256((cwd / weights).read_bytes()).hexdigest()
    # 512 images a trial (~1 s to render; 64 took 0.1-0.2 s, so the interrupt could land after
    # the trial had finished) so that the interrupt lands inside one
    more = [*RUN, "search.n_trials=10", "search.batch_size=512", "finetune.enabled=false"]
    proc = start_cli(cwd, *more)
    _running_trial(run_dir, len(earlier) + 1, time.monotonic() + 120)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err

    trials = _study(run_dir).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and {t.number for t in failed} <= superseded(trials)  # re-queued, not lost
    assert [t.state for t in trials if t.number in earlier] == [TrialState.COMPLETE] * 6
    interrupted = RunSummary.load(run_dir / "summary.json")
    assert interrupted.stop_reason == INTERRUPTED
    # The earlier finish is still the recorded result until this search has one of its own.
    assert interrupted.verdict == first.verdict
    assert interrupted.selected_count == first.selected_count > 0
    assert interrupted.result_weights == first.result_weights
    assert interrupted.param_importances == first.param_importances
    assert hashlib.sha256((cwd / weights).read_bytes()).hexdigest() == weights_hash

    again = run_cli(cwd, *more)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    trials = _study(run_dir).trials
    gone = superseded(trials)
    live = [t for t in trials if t.number not in gone]
    assert [t.state for t in live] == [TrialState.COMPLETE] * 10  # like after kill -9
    assert {t.number: t.value for t in trials if t.number in earlier} == earlier
    retried = [t for t in live if t.system_attrs.get("retry_history")]
    assert len(retried) == 1  # the same point again (its parameters as far as it got them)
    assert failed[0].params.items() <= retried[0].params.items()
    summary = RunSummary.load(run_dir / "summary.json")
    assert summary.final_stage is not None and summary.final_stage.budget == 10
    assert summary.verdict.message == "unknown: fine-tuning disabled"
    client = MlflowClient(summary.mlflow.tracking_uri)
    query = f"tags.mlflow.parentRunId = '{summary.mlflow.run_id}'"
    statuses = {r.info.status for r in client.search_runs([summary.mlflow.experiment_id], query)}
    assert "RUNNING" not in statuses and "KILLED" in statuses  # the interrupted trial's run


def test_a_four_image_target_says_so_and_is_not_called_converged(tmp_path: Path) -> None:
    # The floor factor would call the first trial converged; the floor of 4 images (2 against
    # 2) cannot tell.
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "target.demo.n=4",
        "finetune.enabled=false",
        "search.floor_factor=1e9",
        "search.n_trials=3",
        "hydra.run.dir=runs/small",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "warning: the target has only 4 images" in proc.stdout
    assert "measured on batches of 2 against the other 2 (trials use 8)" in proc.stdout
    assert "warning: the noise floor is uncertain" in proc.stdout
    summary = RunSummary.load(tmp_path / "runs" / "small" / "summary.json")
    assert summary.stop_reason == "budget: 3 trials"
    assert summary.floor_quality is not None and not summary.floor_quality.stop_at_floor
    assert summary.floor_quality.target_images == 4 and summary.floor_quality.floor_batch == 2
    assert "floor uncertainty       : ±" in proc.stdout
    tags = MlflowClient(summary.mlflow.tracking_uri).get_run(summary.mlflow.run_id).data.tags
    assert "only 4 images" in tags["gen_loop.floor_quality"]
