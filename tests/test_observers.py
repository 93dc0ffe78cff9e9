"""The loop's observers and its typed summary: what reaches the console, MLflow, summary.json."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from gen_loop.generator import ProceduralGenerator
from gen_loop.loop.console import INTERRUPTED, ConsoleObserver
from gen_loop.loop.mlflow_observer import MlflowObserver
from gen_loop.loop.observer import FinishOutputs, Observers, TrialEnd, TrialStart
from gen_loop.loop.summary import RunSummary
from gen_loop.tracking import Tracker


def test_summary_round_trips_and_omits_what_the_run_did_not_set(
    make_summary, tmp_path: Path
) -> None:
    summary = make_summary()
    summary.write(tmp_path / "summary.json")
    data = json.loads((tmp_path / "summary.json").read_text())
    assert "finetuned_weights" not in data and "finalised_by" not in data
    assert "lost_logs" not in data["mlflow"]
    assert data["noise_floor"] == {
        "mean": 0.5, "std": 0.1, "batch_size": 8, "n_splits": 2, "values": [0.4, 0.6]
    }  # fmt: skip
    assert data["verdict"]["status"] == "unknown" and data["best_distance"] == 1.5
    assert RunSummary.load(tmp_path / "summary.json") == summary
    summary.result_weights = "w.pt"
    summary.mlflow.lost_logs = {"n_trials": 2, "run_logs": 0}
    again = RunSummary.from_dict(summary.to_dict())
    assert again.result_weights == "w.pt" and again.mlflow.lost_anything()
    assert summary.best_over_floor == pytest.approx(3.0)


def test_a_bad_summary_file_is_named(make_summary, tmp_path: Path) -> None:
    bad = tmp_path / "summary.json"
    data = make_summary().to_dict()
    del data["stop_reason"]
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="stop_reason") as info:
        RunSummary.load(bad)
    assert str(bad) in str(info.value)
    bad.write_text("{half a file")
    with pytest.raises(ValueError, match=r"summary\.json"):
        RunSummary.load(bad)


def test_console_prints_a_line_per_trial_and_the_table(make_summary) -> None:
    out = io.StringIO()
    console = ConsoleObserver(out)
    console.on_trial_end(TrialEnd(0, {"fisheye": 0.25}, distance=2.0, best=2.0, best_trial=0))
    console.on_trial_end(TrialEnd(1, {"fisheye": 0.9}, error="RuntimeError: boom", best=2.0))
    console.on_trial_end(TrialEnd(2, {"fisheye": 0.1}, interrupted=True))
    console.on_search_end(make_summary(stop_reason=INTERRUPTED))
    holder = {"host": "h", "pid": 7, "run_dir": "/r", "done": True}
    console.on_end(make_summary(finalised_by=holder))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trial    0 | dist   2.0000*") and "fisheye=0.25" in lines[0]
    assert "failed" in lines[1] and "error: RuntimeError: boom" in lines[1]
    assert not any(line.startswith("trial    2") for line in lines)  # Ctrl-C: no trial line
    assert "interrupted: results so far are kept" in out.getvalue()
    assert "another worker finalised the study: the run in /r (process h:7, finished)" in (
        out.getvalue()
    )
    assert "best / floor            : 3.00x" in out.getvalue()
    assert "mlflow ui --backend-store-uri sqlite:///m.db" in out.getvalue()


def test_mlflow_observer_ends_each_child_run_with_the_trial_s_state(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'm.db'}"
    batch = ProceduralGenerator(32, 32).generate({}, 2, 0)
    with Tracker(store, "e", "loop") as tracker, MlflowObserver(tracker, 2, "e") as mlflow:
        observer = Observers([ConsoleObserver(io.StringIO()), mlflow])
        for number in range(3):
            observer.on_trial_start(TrialStart(number, {"fisheye": 0.1 * number}, "sampler"))
        timings = {"generate_s": 0.1, "embed_s": 0.2, "score_s": 0.0}
        observer.on_trial_end(
            TrialEnd(0, {}, distance=2.0, best=2.0, timings=timings, batch=batch)
        )
        observer.on_trial_end(TrialEnd(1, {}, error="RuntimeError: boom"))
        observer.on_trial_end(TrialEnd(2, {}, interrupted=True))
        parent = tracker.run_id
    client = MlflowClient(store)
    experiment = client.get_run(parent).info.experiment_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent}'")
    by_trial = {int(c.data.tags["gen_loop.trial"]): c for c in children}
    assert {n: c.info.status for n, c in by_trial.items()} == {
        0: "FINISHED", 1: "FAILED", 2: "KILLED"
    }  # fmt: skip
    assert by_trial[0].data.metrics["distance"] == 2.0
    assert by_trial[0].data.metrics["embed_s"] == 0.2
    assert by_trial[1].data.tags["gen_loop.error"] == "RuntimeError: boom"
    assert by_trial[2].data.params["fisheye"] == "0.2" and by_trial[2].data.params["stage"]
    assert [a.path for a in client.list_artifacts(by_trial[0].info.run_id)] == ["samples.png"]
    history = client.get_metric_history(parent, "distance")
    assert [(m.step, m.value) for m in history] == [(0, 2.0)]  # completed trials only
    assert np.isfinite(client.get_run(parent).data.metrics["best_distance"])


def test_mlflow_observer_logs_the_final_stage(make_summary, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'm.db'}"
    manifest = tmp_path / "manifest.json"
    manifest.write_text("[]")
    summary = make_summary(selected_count=5, selection_threshold=0.0, default_distance=None)
    with Tracker(store, "e", "loop") as tracker, MlflowObserver(tracker, 0, "e") as mlflow:
        mlflow.on_search_end(summary)
        mlflow.on_finish(summary, FinishOutputs(manifest=manifest))
        parent = tracker.run_id
    run = MlflowClient(store).get_run(parent)
    assert run.data.metrics["selection_threshold"] == 0.0  # a zero threshold is not missing
    assert run.data.metrics["selected_count"] == 5.0
    assert "default_distance" not in run.data.metrics  # NaN: skipped, not logged as 0
    assert run.data.tags["gen_loop.verdict"] == "unknown"
    assert run.data.tags["gen_loop.stop_reason"] == "budget: 4 trials"
