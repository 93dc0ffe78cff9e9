"""`python -m gen_loop run` end to end with the smoke profile: summary, study, MLflow."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from gen_loop.loop.summary import RunSummary
from tests.cli import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, "run", "debug=smoke", *overrides)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    cwd = tmp_path_factory.mktemp("smoke")
    proc = _run(cwd, "hydra.run.dir=runs/smoke")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = cwd / "runs" / "smoke"
    return run_dir, RunSummary.load(run_dir / "summary.json"), proc.stdout


def test_summary_is_the_contract(smoke: tuple[Path, RunSummary, str]) -> None:
    run_dir, summary, stdout = smoke
    assert summary.n_trials == 6 and summary.n_failed == 0
    assert summary.stop_reason.startswith(("budget", "converged", "plateau"))
    assert summary.best_distance <= summary.default_distance
    assert summary.noise_floor.mean > 0 and summary.noise_floor.batch_size == 8
    assert set(summary.best_params) == set(summary.target_hidden_params)
    assert all(0 <= e <= 1 for e in summary.recovery_error.values())
    assert 0 < summary.selected_count <= summary.pool_size == 24
    for stage in ("before", "after"):
        assert 0.0 <= summary.evaluation[stage]["map50"] <= 1.0
    assert Path(summary.finetuned_weights).is_file()
    assert (run_dir / "config.yaml").is_file()
    # What it ran on: two machines' distances differ from the fifth digit on.
    assert summary.environment is not None
    assert summary.environment["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert summary.environment["cpu"] and summary.environment["cuda"]
    # The console shows a line per trial and the final table.
    assert stdout.count("| floor ") == 6
    assert "stopped because" in stdout and "summary.json" in stdout


def test_study_in_storage_starts_from_the_default_params(
    smoke: tuple[Path, RunSummary, str],
) -> None:
    run_dir, summary, _ = smoke
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    assert len(study.trials) == 6
    assert study.trials[0].params == summary.default_params
    assert study.metric_names == ["log_distance"]
    assert math.exp(study.trials[0].value) == pytest.approx(summary.default_distance)
    assert study.trials[0].user_attrs["distance"] == pytest.approx(summary.default_distance)
    assert math.exp(study.best_value) == pytest.approx(summary.best_distance)


def test_mlflow_has_a_parent_run_and_a_child_per_trial(
    smoke: tuple[Path, RunSummary, str],
) -> None:
    _, summary, _ = smoke
    client = MlflowClient(summary.mlflow.tracking_uri)
    parent = client.get_run(summary.mlflow.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["search.n_trials"] == "6"
    assert "gen_loop.target_fingerprint" in parent.data.tags
    assert parent.data.tags["gen_loop.env.numpy"] == np.__version__
    history = client.get_metric_history(parent.info.run_id, "best_distance")
    assert len(history) == 6
    assert min(m.value for m in history) == pytest.approx(summary.best_distance)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 6
    assert all("distance" in c.data.metrics and "embed_s" in c.data.metrics for c in children)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "plots", "selection", "finetuned", "summary.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert "plots/optimization_history.png" in plots and "plots/target_vs_best.png" in plots


def test_rerun_in_the_same_folder_resumes_the_study(
    smoke: tuple[Path, RunSummary, str],
) -> None:
    run_dir, first, _ = smoke
    # As if the first session had run on another machine: the resume says so, and goes on.
    earlier = json.loads((run_dir / "summary.json").read_text())
    earlier["environment"]["cpu"] = "another CPU"
    (run_dir / "summary.json").write_text(json.dumps(earlier))
    proc = _run(
        run_dir.parent.parent,
        "hydra.run.dir=runs/smoke",
        "search.n_trials=8",
        "finetune.enabled=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "searched before on another machine or stack (cpu: another CPU -> " in (
        proc.stdout + proc.stderr
    )
    second = RunSummary.load(run_dir / "summary.json")
    assert second.environment is not None and second.environment["cpu"] != "another CPU"
    assert second.n_trials == 8  # 6 kept + 2 new
    assert second.mlflow.run_id == first.mlflow.run_id  # continued, not duplicated
    assert second.best_distance <= first.best_distance
    assert proc.stdout.count("| floor ") == 2


def test_fine_tune_mixes_in_replayed_source_images(tmp_path: Path) -> None:
    proc = _run(tmp_path, "finetune.replay_fraction=0.5", "hydra.run.dir=runs/replay")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "replay"
    summary = RunSummary.load(run_dir / "summary.json")
    n_train = summary.selected_count - round(summary.selected_count * 0.2)
    assert summary.replay_count == n_train  # half of the training set is source data
    data = yaml.safe_load((run_dir / "selected" / "data.yaml").read_text())
    assert data["train"] == ["images/train", "replay.txt"]
    assert "after" in summary.evaluation


def test_ctrl_c_stops_cleanly_and_keeps_results(
    tmp_path: Path, start_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = start_cli(
        tmp_path, "run", "debug=smoke", "search.n_trials=200", "hydra.run.dir=runs/interrupted"
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if line.startswith("trial    2") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    summary = RunSummary.load(tmp_path / "runs" / "interrupted" / "summary.json")
    assert summary.stop_reason == "interrupted by the user"
    assert summary.n_trials >= 3
    run = MlflowClient(summary.mlflow.tracking_uri).get_run(summary.mlflow.run_id)
    assert run.info.status == "KILLED"


def test_user_folder_without_labels_skips_evaluation_with_a_message(tmp_path: Path) -> None:
    from gen_loop.generator import ProceduralGenerator
    from gen_loop.generator.yolo_io import write_yolo_dataset

    batch = ProceduralGenerator(96, 96).generate({"fisheye": 0.4, "exposure_ev": 0.5}, 20, 5)
    write_yolo_dataset(batch, tmp_path / "client")
    (tmp_path / "client" / "images" / "broken.jpg").write_bytes(b"not a jpeg")
    proc = _run(
        tmp_path,
        "target=folder",
        f"target.path={tmp_path / 'client' / 'images'}",
        "hydra.run.dir=runs/user",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = RunSummary.load(tmp_path / "runs" / "user" / "summary.json")
    assert summary.target.n_images == 20 and summary.target.skipped == 1
    assert "broken.jpg" in proc.stderr + proc.stdout  # the skipped file is named
    assert "no labeled target data" in summary.evaluation["skipped"]
    assert summary.target_hidden_params is None
    assert Path(summary.finetuned_weights).is_file()  # fine-tuned, just not evaluated


def test_missing_target_folder_fails_before_any_work(tmp_path: Path) -> None:
    proc = _run(tmp_path, "target=folder", f"target.path={tmp_path / 'nope'}")
    assert proc.returncode == 2
    assert "target.path" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("summary.json"))
