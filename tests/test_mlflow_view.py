"""What a new user sees in MLflow: the link, the runs table's view, names, the description.

The pure parts (links, view state, the Markdown description) are checked on their own; a real
smoke run is then read back through ``MlflowClient`` from its SQLite store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from gen_loop.finetune.verdict import gain_verdict
from gen_loop.loop.figures import optuna_figures
from gen_loop.loop.mlflow_view import VIEW_KEY, parent_run_name, view_state
from gen_loop.loop.run_note import NOTE_TAG, result_note, start_note
from gen_loop.loop.summary import AnalysisInfo, FinalStage, RunSummary
from gen_loop.score import NoiseFloor
from gen_loop.tracking import PARENT_TAG, TRIAL_TAG, Tracker
from gen_loop.tracking.links import SHARED_VIEW_PREFIX, runs_table_url, ui_command
from gen_loop.tracking.tracker import BEST_RUN_TAG, BEST_TAG, EXPERIMENT_KIND
from tests.cli import run_cli


def test_links_open_the_classic_runs_table() -> None:
    local = "sqlite:////tmp/runs/mlflow.db"
    assert ui_command(local) == f"mlflow ui --backend-store-uri {local}"
    assert runs_table_url(local, "7", "gen_loop") == (
        "http://127.0.0.1:5000/#/experiments/7/runs"
        "?workflowType=machine_learning&viewStateShareKey=gen_loop"
    )
    server = "https://mlflow.example:8443/"
    assert ui_command(server) is None
    assert runs_table_url(server, "7") == (
        "https://mlflow.example:8443/#/experiments/7/runs?workflowType=machine_learning"
    )


def test_view_state_lists_the_distances_first_then_the_searched_params() -> None:
    state = json.loads(view_state(["fisheye", "gamma"]))
    columns = state["selectedColumns"]
    assert columns[:3] == [
        "metrics.`best_distance`",
        "metrics.`best_over_floor`",
        "metrics.`distance`",
    ]
    assert columns[-2:] == ["params.`fisheye`", "params.`gamma`"]
    assert state["columnOrder"] == columns


def test_start_note_says_what_is_searched() -> None:
    note = start_note(
        "folder clientcam",
        40,
        ["fisheye", "gamma"],
        60,
        NoiseFloor(0.5, 0.1, 8, 2, (0.4, 0.6)),
        "3",
    )
    assert "searching 2 camera parameters" in note
    assert "`fisheye`, `gamma`" in note and "up to 60 trials" in note
    assert "(#/experiments/3/runs?workflowType=machine_learning)" in note


def test_result_note_holds_the_final_table(make_summary: Callable[..., RunSummary]) -> None:
    evaluation = {
        "before": {"map50": 0.1, "map50_95": 0.05},
        "after": {"map50": 0.3, "map50_95": 0.12},
    }
    summary = make_summary(
        selected_count=20,
        pool_size=24,
        evaluation=evaluation,
        verdict=gain_verdict(evaluation, 0.01, False),
        final_stage=FinalStage(4, 4, 3),
        target_hidden_params={"fisheye": 0.55},
        analysis=AnalysisInfo(
            "/r/report.html", ["target vs source: separable (AUC 1.00)"], {}, 1.0
        ),
    )
    note = result_note(summary, "3", "p1", ["plots/optuna_slice.png"], best_run_id="c3")
    assert note.startswith("## gen_loop: improved; distance 6 -> 1.5, 3x floor")
    for row in (
        "| default params distance | 6.0000 |",
        "| best distance | 1.5000 ([trial 3](#/experiments/3/runs/c3"
        "?workflowType=machine_learning)) |",
        "| best / floor | 3.00x |",
        "| trials | 4 (1 failed) |",
        "| stopped because | budget: 4 trials |",
        "| selected samples | 20 of 24 |",
        "| target mAP50 before | 0.1000 (mAP50-95 0.0500) |",
        "| target mAP50 after | 0.3000 (mAP50-95 0.1200) |",
        "| `fisheye` | 0 | 0.5 | 0.55 |",  # default, best, hidden
        "- target vs source: separable (AUC 1.00)",
    ):
        assert row in note.splitlines(), row
    assert "| verdict | improved: target map50 0.1000 -> 0.3000" in note
    route = "#/experiments/3/runs/p1/artifacts/"
    assert f"({route}report/report.html?workflowType=machine_learning)" in note
    assert f"[optuna_slice]({route}plots/optuna_slice.png?workflowType=machine_learning)" in note


def test_result_note_before_the_final_stage_and_without_trials(
    make_summary: Callable[..., RunSummary],
) -> None:
    note = result_note(make_summary(), "3", "p1")
    assert note.startswith("## gen_loop: search ended; distance 6 -> 1.5")
    assert "| selection / fine-tune | not run yet |" in note
    assert "verdict" not in note and "Analysis" not in note
    empty = result_note(make_summary(best_distance=None, best_trial=None), "3", "p1")
    assert "no trial completed" in empty and "budget: 4 trials" in empty


def test_parent_run_name_is_readable() -> None:
    from datetime import datetime

    assert parent_run_name("demo camera", 6, datetime(2026, 1, 2, 3, 4)) == (
        "demo camera: 6 params, 2026-01-02 03:04"
    )


def test_best_mark_moves_and_finds_a_trial_of_an_earlier_session(
    store: str, experiment: str
) -> None:
    client = MlflowClient(store)
    with Tracker(store, experiment, "loop") as first:
        for number in range(2):
            with first.trial(number, {}):
                pass
        assert client.get_experiment(first.experiment_id).tags.items() >= EXPERIMENT_KIND.items()
        first_best = first.mark_best_trial(1)
    with Tracker(store, experiment, "x", resume_run_id=first.run_id) as second:
        assert second.resumed
        with second.trial(2, {}):
            pass
        earlier = second.mark_best_trial(0)  # a trial of the first session
    children = client.search_runs([first.experiment_id], f"tags.`{PARENT_TAG}` = '{first.run_id}'")
    marked = {c.data.tags[TRIAL_TAG]: c.info.run_id for c in children if BEST_TAG in c.data.tags}
    assert marked == {"0": earlier} and first_best != earlier
    assert client.get_run(first.run_id).data.tags[BEST_RUN_TAG] == earlier
    with Tracker(store, experiment, "x", resume_run_id=first.run_id) as third:
        assert third.mark_best_trial(9) is None  # not a trial of this run: nothing is marked
    children = client.search_runs([first.experiment_id], f"tags.`{PARENT_TAG}` = '{first.run_id}'")
    assert not any(BEST_TAG in c.data.tags for c in children)
    assert BEST_RUN_TAG not in client.get_run(first.run_id).data.tags
    assert all(c.data.tags["mlflow.runType"] == "evaluation" for c in children)


def test_optuna_plots_are_skipped_when_there_is_too_little_to_draw(tmp_path: Path) -> None:
    study = optuna.create_study()
    assert optuna_figures(study, ["a"], tmp_path) == {}  # no trial at all
    study.optimize(lambda t: math.log(1 + t.suggest_float("a", 0, 1)), n_trials=1)
    one = optuna_figures(study, ["a", "not_searched"], tmp_path)
    assert set(one) == {"optuna_parallel_coordinate", "optuna_slice"}  # no importances of one
    study.optimize(lambda t: math.log(1 + t.suggest_float("a", 0, 1)), n_trials=3)
    files = optuna_figures(study, ["a"], tmp_path)
    assert set(files) == {"optuna_parallel_coordinate", "optuna_slice", "optuna_importances"}
    assert all(p.stat().st_size > 1000 for p in files.values())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunSummary, str]:
    cwd = tmp_path_factory.mktemp("view")
    proc = run_cli(cwd, "run", "debug=smoke", "finetune.enabled=false", "hydra.run.dir=runs/v")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return RunSummary.load(cwd / "runs" / "v" / "summary.json"), proc.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_smoke_run_as_a_new_user_sees_it(smoke: tuple[RunSummary, str]) -> None:
    summary, stdout = smoke
    info = summary.mlflow
    client = MlflowClient(info.tracking_uri)
    # The printed link opens the runs table in the classic view, with the loop's columns.
    assert f"mlflow ui --backend-store-uri {info.tracking_uri}" in stdout
    assert runs_table_url(info.tracking_uri, info.experiment_id, VIEW_KEY) in stdout
    tags = client.get_experiment(info.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    columns = json.loads(tags[SHARED_VIEW_PREFIX + VIEW_KEY])["selectedColumns"]
    assert "metrics.`distance`" in columns
    assert {f"params.`{p}`" for p in summary.best_params} <= set(columns)
    parent = client.get_run(info.run_id)
    assert parent.info.run_name.startswith(f"demo camera: {len(summary.best_params)} params, ")
    note = parent.data.tags[NOTE_TAG]
    assert f"| best distance | {summary.best_distance:.4f} ([trial {summary.best_trial}]" in note
    assert "| stopped because |" in note and "| verdict | unknown: fine-tuning disabled |" in note
    children = client.search_runs([info.experiment_id], f"tags.`{PARENT_TAG}` = '{info.run_id}'")
    assert sorted(c.info.run_name for c in children) == [f"trial-{n:04d}" for n in range(6)]
    best = [c for c in children if c.data.tags.get(BEST_TAG) == "true"]
    assert [c.data.tags[TRIAL_TAG] for c in best] == [str(summary.best_trial)]
    assert parent.data.tags[BEST_RUN_TAG] == best[0].info.run_id
    assert best[0].info.run_id in note  # the table links to the best trial's run
    plots = {a.path for a in client.list_artifacts(info.run_id, "plots")}
    for name in ("optuna_importances", "optuna_parallel_coordinate", "optuna_slice"):
        assert f"plots/{name}.png" in plots
        assert f"artifacts/plots/{name}.png" in note


@pytest.mark.integration
@pytest.mark.slow
def test_smoke_run_grid_is_in_the_best_child(smoke: tuple[RunSummary, str]) -> None:
    summary, _ = smoke
    client = MlflowClient(summary.mlflow.tracking_uri)
    best_id = client.get_run(summary.mlflow.run_id).data.tags[BEST_RUN_TAG]
    assert [a.path for a in client.list_artifacts(best_id)] == ["samples.png"]
