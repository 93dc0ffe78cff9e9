"""The run's own analysis (``analysis.*``): report, route, kept plane, summary, MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

from gen_loop.analysis.projection import PcaProjection
from gen_loop.analysis.shift import headline, two_sample_shift
from gen_loop.loop.analysis_stage import CENTROID_ATTR, search_route, stored_centroid
from gen_loop.loop.summary import RunSummary
from gen_loop.search.study import to_objective
from tests.cli import run_cli


def test_stored_centroid_is_the_batch_mean_to_four_digits() -> None:
    emb = np.random.default_rng(0).normal(size=(16, 5))
    stored = stored_centroid(emb)
    assert len(stored) == 5
    np.testing.assert_allclose(stored, emb.mean(axis=0), rtol=1e-3, atol=1e-6)
    json.dumps(stored)  # a JSON user attribute


def test_search_route_keeps_completed_trials_with_a_centroid_in_order() -> None:
    study = optuna.create_study()
    distances = {0: 5.0, 1: 2.0, 3: 1.0}
    for number in range(5):
        trial = study.ask()
        if number == 2:  # failed: not on the route
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        if number != 4:  # 4: a trial of an older version, no centroid stored
            trial.set_user_attr(CENTROID_ATTR, [float(number), 1.0])
        study.tell(trial, to_objective(distances.get(number, 0.5)))
    route = search_route(study)
    assert route is not None
    assert route.numbers.tolist() == [0, 1, 3]
    assert route.centroids.shape == (3, 2) and route.centroids[2, 0] == 3.0
    np.testing.assert_allclose(route.distances, [5.0, 2.0, 1.0])
    assert route.best == 3  # the best trial with a centroid


def test_search_route_is_none_without_centroids() -> None:
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    assert search_route(study) is None


def test_headline_words() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(60, 8))
    same = two_sample_shift(rng.normal(size=(40, 8)), ref, ("best", "target"), n_permutations=50)
    far = two_sample_shift(
        rng.normal(size=(40, 8)) + 3.0, ref, ("source", "target"), n_permutations=50
    )
    assert headline(far).startswith("target vs source: separable (AUC 1.00, p 0.02")
    assert "x the floor" in headline(far)
    assert headline(same).startswith("target vs best: not distinguishable (AUC ")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunSummary, str]:
    """A smoke run with its analysis on (the default)."""
    cwd = tmp_path_factory.mktemp("analysed")
    proc = run_cli(cwd, "run", "debug=smoke", "hydra.run.dir=runs/a")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = cwd / "runs" / "a"
    return run_dir, RunSummary.load(run_dir / "summary.json"), proc.stdout


@pytest.mark.slow
def test_the_run_writes_its_report(analysed: tuple[Path, RunSummary, str]) -> None:
    run_dir, summary, stdout = analysed
    info = summary.analysis
    assert info is not None and info.error is None
    report = Path(info.report)
    assert report == run_dir / "report" / "report.html" and report.is_file()
    for png in ("projection.png", "route.png", "projection_loss.png", "properties_top.png"):
        assert (report.parent / png).stat().st_size > 1000, png
    assert [line.split(":")[0] for line in info.lines] == [
        "target vs source",
        "target vs best",
        "target vs selected",
    ]
    # The demo's default camera is far from its target: the tests call it shifted.
    assert info.lines[0].startswith("target vs source: ") and "shift" in info.lines[0]
    assert info.metrics["source.shifted"] == 1.0
    data = json.loads((report.parent / "analysis.json").read_text())
    assert data["headline"] == info.lines
    assert len(data["route"]["numbers"]) == summary.n_trials  # every trial is on the route
    assert data["route"]["best"] == summary.best_trial
    assert 0.0 <= info.metrics["route.best_percentile"] <= 1.0
    html = report.read_text()
    assert "the search&#x27;s route" in html.lower() or "the search's route" in html.lower()
    assert info.lines[0] in html or info.lines[0].replace("'", "&#x27;") in html
    # quoted in the final table
    assert "population" in stdout and info.lines[-1] in stdout
    assert summary.timings_s["analysis_s"] > 0


@pytest.mark.slow
def test_the_plane_is_kept_and_a_later_run_draws_in_it(
    analysed: tuple[Path, RunSummary, str],
) -> None:
    run_dir, _, _ = analysed
    cwd = run_dir.parents[1]
    kept = list((cwd / "cache").glob("**/projections/*.npz"))
    assert len(kept) == 1
    first = PcaProjection.load(kept[0])
    proc = run_cli(cwd, "run", "debug=smoke", "hydra.run.dir=runs/b", "search.seed=5")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    second = PcaProjection.load(cwd / "runs" / "b" / "report" / "projection.npz")
    np.testing.assert_array_equal(first.components, second.components)
    np.testing.assert_array_equal(first.mean, second.mean)


@pytest.mark.slow
def test_report_and_numbers_reach_the_mlflow_parent(
    analysed: tuple[Path, RunSummary, str],
) -> None:
    _, summary, _ = analysed
    client = MlflowClient(summary.mlflow.tracking_uri)
    run = client.get_run(summary.mlflow.run_id)
    assert run.data.metrics["analysis.source.shifted"] == 1.0
    assert "analysis.selected.auc" in run.data.metrics
    files = {a.path for a in client.list_artifacts(summary.mlflow.run_id, "report")}
    assert {"report/report.html", "report/route.png", "report/analysis.json"} <= files


@pytest.mark.slow
def test_analysis_off_writes_no_report(tmp_path: Path) -> None:
    proc = run_cli(
        tmp_path, "run", "debug=smoke", "hydra.run.dir=runs/off", "analysis.enabled=false"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "off"
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    assert "analysis" not in data and "analysis_s" not in data["timings_s"]
    assert not (run_dir / "report").exists()


@pytest.mark.slow
def test_a_failed_analysis_keeps_the_run(tmp_path: Path) -> None:
    """A projection of other embeddings cannot draw this run: the analysis fails, said so;
    the search, selection and fine-tune stand."""
    wrong = PcaProjection.fit(np.random.default_rng(0).normal(size=(10, 3)))
    plane = wrong.save(tmp_path / "other.npz")
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "hydra.run.dir=runs/bad",
        f"analysis.projection_file={plane}",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = RunSummary.load(tmp_path / "runs" / "bad" / "summary.json")
    assert summary.analysis is not None and summary.analysis.report == ""
    assert "3-D embeddings" in (summary.analysis.error or "")
    assert "analysis" in proc.stdout and "failed" in proc.stdout
    assert summary.verdict.status in ("improved", "not_improved")
    assert "after" in summary.evaluation


def test_bad_analysis_settings_name_their_key(assert_config_error: Any) -> None:
    assert_config_error("analysis.shift.alpha=2", "analysis.shift.alpha")
    assert_config_error("analysis.max_images=2", "analysis.max_images")
    assert_config_error("analysis.projection_file=/nonexistent.npz", "analysis.projection_file")
