"""Tracking stage: a real SQLite MLflow store read back with MlflowClient, and the plots."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_loop._git import git_commit
from gen_loop.errors import GenLoopError
from gen_loop.tracking import (
    CLASS_COLORS,
    ERROR_TAG,
    PARENT_TAG,
    TRIAL_TAG,
    Tracker,
    history_figure,
    image_grid,
    importance_figure,
    save_png,
    side_by_side,
)
from gen_loop.tracking._limits import _sanitize_key
from gen_loop.tracking._sqlite import use_wal

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

pytestmark = pytest.mark.usefixtures("clean_tracking_uri")


def _children(client: MlflowClient, tracker: Tracker) -> list:
    runs = client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{tracker.run_id}'"
    )
    return sorted(runs, key=lambda r: r.info.run_name)


def test_parent_run_records_params_metrics_and_artifacts(
    store: str, experiment: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    folder = tmp_path / "manifest"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")
    many = {f"p{i:03d}": i for i in range(150)}  # more than one log_batch call
    with Tracker(store, experiment, "loop", artifact_location=str(tmp_path / "arts")) as tracker:
        tracker.log_params(
            {"search": {"n_trials": 20, "sampler": {"seed": 3}}, "long": "x" * 7000, **many}
        )
        tracker.log_params({"bad key!": "v"})
        tracker.set_tags({"gen_loop.stage": "search"})
        for step, value in enumerate([3.0, 2.0, 1.5]):
            tracker.log_metrics({"best_distance": value}, step=step)
        with caplog.at_level(logging.WARNING, logger="gen_loop.tracking"):
            tracker.log_metrics({"broken": float("nan"), "ok": 1.0}, step=0)
        tracker.log_text("hello", "notes/readme.txt")
        tracker.log_image(image, "grids/target.png")
        tracker.log_artifact(folder, "manifest")
        tracker.log_artifact(folder / "a.txt")
        with pytest.raises(FileNotFoundError, match="missing"):
            tracker.log_artifact(tmp_path / "missing")
        assert mlflow.active_run() is None  # the global run stack is left alone
    client = MlflowClient(store)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "loop"
    params = run.data.params
    assert params["search.n_trials"] == "20"
    assert params["search.sampler.seed"] == "3"
    assert params["long"] == "x" * 6000
    assert params["bad key_"] == "v"
    assert params["p149"] == "149"
    assert run.data.tags["gen_loop.stage"] == "search"
    history = client.get_metric_history(tracker.run_id, "best_distance")
    assert [(m.step, m.value) for m in history] == [(0, 3.0), (1, 2.0), (2, 1.5)]
    assert "broken" not in run.data.metrics
    assert run.data.metrics["ok"] == 1.0
    assert "broken" in caplog.text
    assert run.info.artifact_uri.startswith((tmp_path / "arts").as_uri())
    top = {f.path for f in client.list_artifacts(tracker.run_id)}
    assert top == {"notes", "grids", "manifest", "a.txt"}
    assert {f.path for f in client.list_artifacts(tracker.run_id, "manifest")} == {
        "manifest/a.txt",
        "manifest/b.txt",
    }
    local = client.download_artifacts(tracker.run_id, "grids/target.png", str(tmp_path))
    stored = cv2.imread(local)
    assert stored is not None
    back = cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, image)


def test_trials_are_nested_child_runs(store: str, experiment: str) -> None:
    with Tracker(store, experiment, "loop") as tracker:
        for number in range(2):
            with tracker.trial(number, {"camera": {"red_gain": 1.0 + number}}) as trial:
                trial.log_metrics({"distance": 5.0 - number})
                trial.set_tags({"gen_loop.note": "ok"})
        trial_ids = {trial.run_id}
    client = MlflowClient(store)
    children = _children(client, tracker)
    assert [c.info.run_name for c in children] == ["trial-0000", "trial-0001"]
    assert trial_ids <= {c.info.run_id for c in children}
    for number, child in enumerate(children):
        assert child.info.status == "FINISHED"
        assert child.data.tags[PARENT_TAG] == tracker.run_id
        assert child.data.tags[TRIAL_TAG] == str(number)
        assert child.data.params["camera.red_gain"] == str(1.0 + number)
        assert child.data.metrics["distance"] == 5.0 - number


def test_trial_that_raises_is_failed_and_the_error_propagates(store: str, experiment: str) -> None:
    with Tracker(store, experiment, "loop") as tracker:
        with pytest.raises(RuntimeError, match="renderer crashed"), tracker.trial(0, {"a": 1}):
            raise RuntimeError("renderer crashed")
        with tracker.trial(1, {"a": 2}) as trial:
            trial.fail("batch was empty")  # recorded, not raised
            trial.log_metrics({"late": 1.0})  # a failed run still accepts data
    client = MlflowClient(store)
    raised, failed = _children(client, tracker)
    assert raised.info.status == "FAILED"
    assert raised.data.tags[ERROR_TAG] == "RuntimeError: renderer crashed"
    assert failed.info.status == "FAILED"  # not turned FINISHED on a normal exit
    assert failed.data.tags[ERROR_TAG] == "batch was empty"
    assert client.get_run(tracker.run_id).info.status == "FINISHED"


@pytest.mark.parametrize(
    ("error", "status"), [(KeyboardInterrupt, "KILLED"), (ValueError, "FAILED")]
)
def test_parent_status_on_error(
    store: str, experiment: str, error: type[BaseException], status: str
) -> None:
    tracker = Tracker(store, experiment, "loop")
    with pytest.raises(error), tracker:
        raise error("stop")
    run = MlflowClient(store).get_run(tracker.run_id)
    assert run.info.status == status
    assert (ERROR_TAG in run.data.tags) == (status == "FAILED")


def test_resume_continues_the_same_parent_run(store: str, experiment: str) -> None:
    with Tracker(store, experiment, "loop") as first:
        first.log_params({"seed": 0})
        first.log_metrics({"best": 2.0}, step=0)
    with Tracker(store, experiment, "ignored", resume_run_id=first.run_id) as second:
        assert second.log_params({"seed": 0, "new": 1}) == []  # same value again: accepted
        assert second.log_params({"seed": 5}) == ["seed"]  # a changed value is reported
        second.log_metrics({"best": 1.0}, step=1)
        with second.trial(1, {}):
            pass
    assert second.run_id == first.run_id
    client = MlflowClient(store)
    parents = client.search_runs(
        [first.experiment_id], filter_string=f"tags.`{PARENT_TAG}` IS NULL"
    )
    assert [r.info.run_id for r in parents] == [first.run_id]
    history = client.get_metric_history(first.run_id, "best")
    assert [(m.step, m.value) for m in history] == [(0, 2.0), (1, 1.0)]
    assert client.get_run(first.run_id).data.params == {"seed": "0", "new": "1"}
    assert client.get_run(first.run_id).info.status == "FINISHED"


def test_resume_rejects_unknown_and_child_runs(store: str, experiment: str) -> None:
    with pytest.raises(GenLoopError, match="not found"):
        Tracker(store, experiment, "loop", resume_run_id="0" * 32).__enter__()
    with Tracker(store, experiment, "loop") as tracker, tracker.trial(0, {}) as trial:
        pass
    with pytest.raises(GenLoopError, match="trial"):
        Tracker(store, experiment, "loop", resume_run_id=trial.run_id).__enter__()


def test_default_artifact_root_sits_next_to_the_sqlite_file(store: str, experiment: str) -> None:
    with Tracker(store, experiment, "loop") as tracker:
        pass
    db_dir = Path(store.removeprefix("sqlite:///")).parent
    location = MlflowClient(store).get_experiment(tracker.experiment_id).artifact_location
    assert location == (db_dir / "artifacts").as_uri()


def test_sqlite_store_is_put_in_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "wal" / "mlflow.db"
    db.parent.mkdir()
    with Tracker(f"sqlite:///{db}", "e", "loop") as tracker, tracker.trial(0, {"a": 1}):
        pass
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert MlflowClient(f"sqlite:///{db}").get_run(tracker.run_id).info.status == "FINISHED"
    assert not use_wal("http://127.0.0.1:5000") and not use_wal("postgresql://h/db")


def test_trial_params_logged_in_steps_are_all_kept(store: str, experiment: str) -> None:
    """A trial run knows its params without reading them back; later calls still check them."""
    with Tracker(store, experiment, "loop") as tracker, tracker.trial(0, {"a": 1}) as trial:
        assert trial.log_params({"scene_seed": 5}) == []
        assert trial.log_params({"a": 1, "b": 2}) == []  # "a" again with its value: accepted
        assert trial.log_params({"a": 3}) == ["a"]  # a changed value is reported, not logged
    params = MlflowClient(store).get_run(trial.run_id).data.params
    assert params == {"a": "1", "scene_seed": "5", "b": "2"}


def test_tracker_needs_to_be_entered() -> None:
    tracker = Tracker("sqlite:///unused.db", "e", "r")
    with pytest.raises(RuntimeError, match="not started"):
        _ = tracker.run_id
    with pytest.raises(RuntimeError, match="not started"):
        tracker.log_metrics({"a": 1.0})


def test_import_does_not_load_mlflow_or_matplotlib() -> None:
    code = (
        "import sys, gen_loop.tracking; "
        "assert not {'mlflow', 'matplotlib', 'cv2'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_sanitised_keys_pass_mlflow_validation(key: str) -> None:
    from mlflow.utils.validation import _validate_param_name, _validate_tag_name

    clean = _sanitize_key(key)
    _validate_param_name(clean)
    _validate_tag_name(clean)
    assert len(clean) <= 250


def test_git_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert git_commit(tmp_path) is None
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "f.txt").write_text("x")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(repo / "sub" / "f.txt") == head
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert git_commit(repo) is None


# ---------------------------------------------------------------- plots


def test_image_grid_shape_and_placement() -> None:
    images = [np.full((32, 32, 3), 10 * (i + 1), np.uint8) for i in range(10)]
    grid = image_grid(images, ncols=4, pad=2)
    assert grid.shape == (3 * 32 + 4 * 2, 4 * 32 + 5 * 2, 3)
    assert grid.dtype == np.uint8
    for i in range(10):
        row, col = divmod(i, 4)
        top, left = 2 + row * 34, 2 + col * 34
        assert (grid[top : top + 32, left : left + 32] == 10 * (i + 1)).all()
    assert (grid[:2] == 0).all() and (grid[:, :2] == 0).all()
    np.testing.assert_array_equal(image_grid(np.stack(images), ncols=4, pad=2), grid)
    assert image_grid(images[:3], ncols=8, pad=0).shape == (32, 96, 3)
    mixed = image_grid([images[0], np.full((64, 48, 3), 7, np.uint8)], ncols=2, pad=0)
    assert mixed.shape == (32, 64, 3)  # resized to the first image's size
    assert (mixed[:, 32:] == 7).all()


def test_image_grid_box_changes_only_its_edge() -> None:
    image = np.full((64, 64, 3), 100, np.uint8)
    box = np.array([[2, 0.5, 0.5, 0.5, 0.5]])  # pedestrian: pixels 16..47
    drawn = image_grid([image], ncols=1, pad=0, boxes=[box])
    changed = (drawn != image).any(axis=2)
    edge = np.zeros((64, 64), bool)
    edge[16:48, 16:48] = True
    edge[17:47, 17:47] = False
    np.testing.assert_array_equal(changed, edge)
    assert (drawn[edge] == CLASS_COLORS[2]).all()
    assert CLASS_COLORS[2] == (255, 0, 0)
    assert (image == 100).all()  # the input is not drawn on


def test_image_grid_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        image_grid([])
    with pytest.raises(ValueError, match="uint8"):
        image_grid([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="box arrays"):
        image_grid([np.zeros((8, 8, 3), np.uint8)], boxes=[])


def test_side_by_side_layout() -> None:
    left = np.full((40, 30, 3), 50, np.uint8)
    right = np.full((20, 50, 3), 200, np.uint8)
    out = side_by_side(left, right, ("target", "best batch"))
    assert out.shape == (28 + 40, 30 + 8 + 50, 3)
    assert (out[28:68, :30] == 50).all()
    assert (out[28:48, 38:88] == 200).all()
    assert (out[:28, :30] < 128).any() and (out[:28, 38:] < 128).any()  # captions drawn


def test_history_figure_is_an_rgb_image_that_shows_its_inputs() -> None:
    numbers, values = [0, 1, 2, 3, 4], [3.0, float("nan"), 2.0, 2.5, 1.0]
    plain = history_figure(numbers, values, noise_floor=None, default_value=None)
    full = history_figure(numbers, values, noise_floor=0.8, default_value=3.2)
    assert plain.ndim == 3 and plain.shape[2] == 3 and plain.dtype == np.uint8
    assert plain.shape == full.shape
    assert plain.std() > 0
    assert (plain != full).any(axis=2).mean() > 0.01
    with pytest.raises(ValueError, match="trial numbers"):
        history_figure([0, 1], [1.0], None, None)


def test_importance_figure_grows_with_the_number_of_parameters() -> None:
    small = importance_figure({"red_gain": 0.7, "gamma": 0.3})
    large = importance_figure({f"p{i}": i / 10 for i in range(10)})
    assert small.dtype == np.uint8 and small.shape[2] == 3
    assert large.shape[0] > small.shape[0]
    assert importance_figure({}).shape[2] == 3


def test_save_png_round_trips_rgb(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    image[0, 0] = (255, 0, 0)
    path = save_png(image, tmp_path / "a" / "b" / "img.png")
    bgr = cv2.imread(str(path))
    assert bgr is not None
    assert tuple(bgr[0, 0]) == (0, 0, 255)  # stored as a red pixel, not a blue one
    np.testing.assert_array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), image)
