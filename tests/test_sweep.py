"""Hydra sweeps: job folders, the MLflow sweep run, `sweep-report`, the story's overlays."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from gen_loop.config import RunConfig
from gen_loop.loop.summary import RunSummary
from gen_loop.score import NoiseFloor
from gen_loop.sweep.report import collect_jobs, markdown_table, sweep_report_main, write_report
from gen_loop.tracking import PARENT_TAG, TRIAL_TAG, Tracker
from tests.cli import run_cli


def _job(sweep: Path, name: str, overrides: list[str], summary: RunSummary | None) -> None:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary.to_dict()))


def test_report_has_a_row_per_job_in_job_order(
    tmp_path: Path, make_summary: Callable[..., RunSummary]
) -> None:
    def summary(best: float, floor: float, after: float | None) -> RunSummary:
        evaluation = {"before": {"map50": 0.1}, "after": {"map50": after}} if after else {}
        return make_summary(
            best_distance=best,
            default_distance=10.0,
            noise_floor=NoiseFloor(floor, 0.1, 8, 2, (floor, floor)),
            stop_reason="converged",
            n_trials=7,
            n_failed=1,
            evaluation=evaluation,
        )

    _job(tmp_path, "10", ["search.seed=10"], summary(2.0, 0.5, 0.6))
    _job(tmp_path, "2", ["search.seed=2", "score.metric=cosine"], summary(3.0, 1.5, None))
    _job(tmp_path, "3", ["search.seed=3"], None)  # failed before writing its summary
    rows = collect_jobs(tmp_path)
    assert [r["job"] for r in rows] == ["2", "3", "10"]
    assert rows[0]["overrides"] == "search.seed=2 score.metric=cosine"
    assert rows[0]["best_over_floor"] == pytest.approx(2.0)
    assert rows[0]["map50_after"] is None
    assert rows[2]["map50_before"] == 0.1 and rows[2]["map50_after"] == 0.6
    assert rows[2]["best_over_floor"] == pytest.approx(4.0)
    assert rows[1]["best_distance"] is None and "no summary" in rows[1]["status"]

    md_path, csv_path, table = write_report(tmp_path, tmp_path / "out")
    assert table == markdown_table(rows)
    assert len(table.strip().splitlines()) == 2 + 3
    with csv_path.open() as handle:
        read = list(csv.DictReader(handle))
    assert [r["job"] for r in read] == ["2", "3", "10"]
    assert float(read[2]["best_distance"]) == 2.0
    assert md_path.read_text().endswith(table)


def test_a_job_that_followed_its_advice_reports_its_last_round(
    tmp_path: Path, make_summary: Callable[..., RunSummary]
) -> None:
    first = make_summary(n_trials=30, stop_reason="plateau: no 1% improvement in 20 trials")
    first.advised = {"run_dir": "elsewhere", "overrides": ["+search.space.gamma={low: 0.5}"]}
    last = make_summary(
        n_trials=12, best_distance=0.7, evaluation={"after": {"map50": 0.4}}, stop_reason="c"
    )
    _job(tmp_path, "0", ["search.advice_rounds=1"], first)
    (tmp_path / "0" / "advised").mkdir()
    (tmp_path / "0" / "advised" / "summary.json").write_text(json.dumps(last.to_dict()))
    _job(tmp_path, "1", ["search.advice_rounds=1"], first)  # its round 2 has not written yet
    row, waiting = collect_jobs(tmp_path)
    assert (row["rounds"], row["n_trials"], row["best_distance"]) == (2, 42, 0.7)
    assert row["map50_after"] == 0.4 and row["stop_reason"] == "c"
    assert waiting["best_distance"] is None
    assert waiting["status"].startswith("advised round 2: no readable summary.json")


def test_report_of_a_folder_without_jobs_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sweep_report_main([f"dir={tmp_path}"]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    assert sweep_report_main([str(tmp_path / "missing")]) == 2


def test_parent_run_nests_under_a_given_run_and_resumes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with Tracker(uri, "e", "sweep") as sweep:
        with Tracker(uri, "e", "job", parent_run_id=sweep.run_id) as job:
            job_id = job.run_id
        with Tracker(uri, "e", "job", resume_run_id=job_id) as resumed:
            assert resumed.run_id == job_id
            with resumed.trial(0, {"a": 1}) as trial:
                trial_id = trial.run_id
    client = MlflowClient(uri)
    assert client.get_run(job_id).data.tags[PARENT_TAG] == sweep.run_id
    assert PARENT_TAG not in client.get_run(sweep.run_id).data.tags
    assert client.get_run(trial_id).data.tags[TRIAL_TAG] == "0"


def test_story_overlays_compose_from_far_to_near(
    compose_run: Callable[[list[str]], RunConfig],
) -> None:
    a, b, done = (
        compose_run([f"experiment={e}"]) for e in ("cognata_a", "cognata_b", "converged")
    )
    hidden = float(a.target.demo.params["red_std_scale"])
    red = [float(c.generator.params["red_std_scale"]) for c in (a, b, done)]
    assert red[0] > red[1] > hidden and red[2] == red[1]
    assert a.search.n_trials == b.search.n_trials == 1
    assert not a.finetune.enabled and not b.finetune.enabled
    assert done.finetune.enabled and done.search.n_trials > 1


@pytest.mark.integration
@pytest.mark.slow
def test_multirun_jobs_nest_under_one_sweep_run_and_are_reported(tmp_path: Path) -> None:
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    proc = run_cli(
        tmp_path,
        *("run", "--multirun", "debug=smoke", "experiment=cognata_a,cognata_b"),
        *("search.n_trials=2", "hydra.sweep.dir=sweep", *launcher),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep = tmp_path / "sweep"
    summaries = [json.loads((sweep / j / "summary.json").read_text()) for j in ("0", "1")]
    # Each job has its own folder and its own study.
    assert [Path(s["run_dir"]) for s in summaries] == [sweep / "0", sweep / "1"]
    assert all((sweep / j / "optuna.db").exists() for j in ("0", "1"))
    assert summaries[0]["study"]["storage"] != summaries[1]["study"]["storage"]
    # The story: CognataA (red std too high) is farther from the target than CognataB.
    far, near = (s["default_distance"] for s in summaries)
    assert far > near > summaries[1]["noise_floor"]["mean"]

    sweep_id = (sweep / "mlflow_sweep_run_id").read_text().strip()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    sweep_run = client.get_run(sweep_id)
    assert sweep_run.info.status == "FINISHED"
    assert "experiment=cognata_a,cognata_b" in sweep_run.data.params["sweep.overrides"]
    jobs = client.search_runs(
        [sweep_run.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{sweep_id}'"
    )
    assert sorted(r.info.run_id for r in jobs) == sorted(s["mlflow"]["run_id"] for s in summaries)
    for job in jobs:
        trials = client.search_runs(
            [sweep_run.info.experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{job.info.run_id}'",
        )
        assert len(trials) == 2
    artifacts = {a.path for a in client.list_artifacts(sweep_id)}
    assert {"sweep_report.md", "sweep_report.csv"} <= artifacts

    report = run_cli(tmp_path, "sweep-report", str(sweep), "out=report", timeout=120)
    assert report.returncode == 0, report.stderr
    rows = [line for line in report.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2  # header + one row per job
    assert "experiment=cognata_a" in rows[1] and "experiment=cognata_b" in rows[2]
    with (tmp_path / "report" / "sweep_report.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2


@pytest.mark.integration
@pytest.mark.slow
def test_a_failed_job_leaves_the_sweep_run_failed_not_running(tmp_path: Path) -> None:
    proc = run_cli(
        tmp_path,
        *("run", "--multirun", "debug=smoke"),
        "search.n_trials=2,0",  # job 1 is invalid: fails before any work
        "finetune.enabled=false",
        "search.study_name=sweep_${hydra:job.num}",  # a study of its own per job
        "hydra.sweep.dir=sweep",
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Callback" not in proc.stderr  # Hydra reports a callback's error only as a warning
    sweep = tmp_path / "sweep"
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert summary["study"]["name"] == "sweep_0"
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    sweep_run = client.get_run((sweep / "mlflow_sweep_run_id").read_text().strip())
    assert sweep_run.info.status == "FAILED"
    assert "${hydra:job.num}" in sweep_run.data.params["sweep.overrides"]
    job = client.get_run(summary["mlflow"]["run_id"])
    assert job.data.tags[PARENT_TAG] == sweep_run.info.run_id
