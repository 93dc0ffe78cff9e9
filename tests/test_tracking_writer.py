"""The tracker's background writer: trial logs land, in order, whatever ends the run.

Real SQLite MLflow stores read back with MlflowClient. Where a test needs the writer to lag
behind the trials (so that a missing drain would lose something), the store's writes are
slowed down by a wrapper around ``MlflowClient.log_batch``.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from gen_loop.tracking import ERROR_TAG, PARENT_TAG, Tracker

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = pytest.mark.usefixtures("clean_tracking_uri")


@pytest.fixture
def batch_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every ``log_batch`` call's (params, tags, metrics) sizes; each call slowed by 20 ms."""
    calls: list[tuple[int, int, int]] = []
    original = MlflowClient.log_batch

    def slow(self: MlflowClient, run_id: str, metrics=(), params=(), tags=(), **kw: Any) -> Any:
        time.sleep(0.02)
        calls.append((len(params), len(tags), len(metrics)))
        return original(self, run_id, metrics=metrics, params=params, tags=tags, **kw)

    monkeypatch.setattr(MlflowClient, "log_batch", slow)
    return calls


def _children(client: MlflowClient, tracker: Tracker) -> dict[str, Any]:
    runs = client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{tracker.run_id}'"
    )
    return {r.info.run_name: r for r in runs}


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (12, 20, 3), dtype=np.uint8)


def _stored_image(client: MlflowClient, run_id: str, name: str, tmp: Path) -> np.ndarray:
    local = client.download_artifacts(run_id, name, str(tmp))
    return cv2.cvtColor(cv2.imread(local), cv2.COLOR_BGR2RGB)


def test_every_queued_log_lands_in_order_within_mlflow_batch_limits(
    store: str, experiment: str, tmp_path: Path, batch_calls: list[tuple[int, int, int]]
) -> None:
    many_params = {f"p{i:03d}": i for i in range(150)}
    many_metrics = {f"m{i:04d}": float(i) for i in range(1100)}
    with Tracker(store, experiment, "loop") as tracker:
        for number in range(6):
            with tracker.trial(number, {"camera": {"gain": number}}) as trial:
                trial.log_params({"stage": "sampler", **(many_params if number == 0 else {})})
                trial.set_tags({"note": "first"})
                trial.set_tags({"note": f"last-{number}"})  # a later value wins
                for step in range(5):
                    trial.log_metrics({"curve": 10.0 * number + step}, step=step)
                if number == 0:
                    trial.log_metrics(many_metrics)
                trial.log_text(f"trial {number}", "notes/n.txt")
                trial.log_image(_image(number), "samples.png")
                file = tmp_path / f"a{number}.txt"
                file.write_text(f"artifact {number}")
                trial.log_artifact(file, "files")
                file.unlink()  # queued: the writer uploads its own copy
                if number == 5:
                    trial.fail("bad batch")
                    trial.log_metrics({"late": 1.0})
    client = MlflowClient(store)
    children = _children(client, tracker)
    assert sorted(children) == [f"trial-{n:04d}" for n in range(6)]
    for number in range(6):
        run = children[f"trial-{number:04d}"]
        run_id = run.info.run_id
        assert run.info.status == ("FAILED" if number == 5 else "FINISHED")
        assert run.data.params["camera.gain"] == str(number)
        assert run.data.tags["note"] == f"last-{number}"
        history = client.get_metric_history(run_id, "curve")
        assert [(m.step, m.value) for m in history] == [(s, 10.0 * number + s) for s in range(5)]
        stored = _stored_image(client, run_id, "samples.png", tmp_path / f"d{number}")
        np.testing.assert_array_equal(stored, _image(number))
        text = Path(client.download_artifacts(run_id, "notes/n.txt", str(tmp_path / f"t{number}")))
        assert text.read_text() == f"trial {number}"
        art = Path(client.download_artifacts(run_id, "files", str(tmp_path / f"f{number}")))
        assert (art / f"a{number}.txt").read_text() == f"artifact {number}"
        assert run.info.start_time <= run.info.end_time
    first = children["trial-0000"]
    assert len(first.data.params) == 2 + 150 and len(first.data.metrics) == 1 + 1100
    assert children["trial-0005"].data.tags[ERROR_TAG] == "bad batch"
    assert children["trial-0005"].data.metrics["late"] == 1.0
    assert tracker.lost_logs["n_trials"] == 0
    for params, tags, metrics in batch_calls:  # MLflow's per-call limits
        assert params <= 100 and tags <= 100 and metrics <= 1000
        assert params + tags + metrics <= 1000


@pytest.mark.parametrize(
    ("error", "status"), [(KeyboardInterrupt, "KILLED"), (ValueError, "FAILED")]
)
def test_an_error_mid_run_still_lands_every_trial_log(
    store: str,
    experiment: str,
    error: type[BaseException],
    status: str,
    batch_calls: list[tuple[int, int, int]],
) -> None:
    tracker = Tracker(store, experiment, "loop")
    with pytest.raises(error), tracker:
        for number in range(5):
            with tracker.trial(number, {"a": number}) as trial:
                trial.log_metrics({"distance": float(number)})
        with tracker.trial(5, {"a": 5}) as trial:
            trial.log_metrics({"distance": 5.0})
            raise error("stop")
    client = MlflowClient(store)
    children = _children(client, tracker)
    assert len(children) == 6
    for number in range(6):
        run = children[f"trial-{number:04d}"]
        assert run.data.metrics["distance"] == float(number)
        assert run.info.status == (status if number == 5 else "FINISHED")
    assert (ERROR_TAG in children["trial-0005"].data.tags) == (status == "FAILED")
    assert client.get_run(tracker.run_id).info.status == status


def test_a_tracker_that_is_never_exited_drains_at_process_exit(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = textwrap.dedent(
        f"""
        import time
        from mlflow import MlflowClient
        from gen_loop.tracking import Tracker

        original = MlflowClient.log_batch
        def slow(self, *args, **kwargs):
            time.sleep(0.05)
            return original(self, *args, **kwargs)
        MlflowClient.log_batch = slow

        tracker = Tracker({uri!r}, "e", "loop").__enter__()
        for number in range(8):
            with tracker.trial(number, {{"a": number}}) as trial:
                trial.log_metrics({{"distance": float(number)}})
        print(tracker.run_id, flush=True)
        raise RuntimeError("crash outside the tracker's with block")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1 and "crash outside" in done.stderr
    parent_id = done.stdout.strip().splitlines()[-1]
    client = MlflowClient(uri)
    parent = client.get_run(parent_id)
    runs = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'"
    )
    assert len(runs) == 8
    assert all(r.info.status == "FINISHED" for r in runs)
    assert sorted(r.data.metrics["distance"] for r in runs) == [float(n) for n in range(8)]


def test_an_unreachable_store_is_counted_not_raised(
    store: str, experiment: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise MlflowException("store went away")

    def not_a_store_error(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    with Tracker(store, experiment, "loop") as tracker:
        with tracker.trial(0, {"a": 0}) as trial:
            trial.log_metrics({"distance": 0.0})
        tracker.flush()
        with monkeypatch.context() as patch:
            patch.setattr(MlflowClient, "create_run", broken)
            patch.setattr(MlflowClient, "log_batch", broken)
            with tracker.trial(1, {"a": 1}) as lost:  # nothing raises on the trial's path
                lost.log_metrics({"distance": 1.0})
                lost.log_image(_image(1), "samples.png")
            assert lost.run_id is None
            assert tracker.lost_logs["trials"] == [1] and tracker.lost_logs["outages"] == 1
        with monkeypatch.context() as patch:  # an unexpected error is counted; the thread goes on
            patch.setattr(MlflowClient, "log_artifact", not_a_store_error)
            with tracker.trial(2, {"a": 2}) as odd:
                odd.log_image(_image(2), "samples.png")
            tracker.flush()
        with tracker.trial(3, {"a": 3}) as back:  # a file store is simply tried again
            back.log_metrics({"distance": 3.0})
            back.log_image(_image(3), "samples.png")
    report = tracker.lost_logs
    assert report["trials"] == [1, 2] and report["run_logs"] == 0 and report["outages"] == 1
    assert report["store_down_at_end"] is False
    client = MlflowClient(store)
    children = _children(client, tracker)
    assert sorted(children) == ["trial-0000", "trial-0002", "trial-0003"]
    assert all(c.info.status == "FINISHED" for c in children.values())
    back_image = _stored_image(client, back.run_id or "", "samples.png", tmp_path)
    np.testing.assert_array_equal(back_image, _image(3))


def test_log_image_from_other_threads_lands_on_the_right_runs(
    store: str, experiment: str, tmp_path: Path, batch_calls: list[tuple[int, int, int]]
) -> None:
    pool = ThreadPoolExecutor(max_workers=3)
    jobs = []
    threads: set[str] = set()

    def grid(trial: Any, number: int) -> None:
        threads.add(threading.current_thread().name)
        trial.log_image(_image(100 + number), "samples.png")
        trial.log_image(_image(200 + number), f"more/{number}.png")

    with Tracker(store, experiment, "loop") as tracker:
        for number in range(12):
            with tracker.trial(number, {"a": number}) as trial:
                trial.log_metrics({"distance": float(number)})
                jobs.append(pool.submit(grid, trial, number))  # may run after the trial ends
        pool.shutdown(wait=True)
        for job in jobs:
            job.result()
    assert threading.main_thread().name not in threads
    client = MlflowClient(store)
    children = _children(client, tracker)
    assert len(children) == 12
    for number in range(12):
        run_id = children[f"trial-{number:04d}"].info.run_id
        folder = tmp_path / str(number)
        first = _stored_image(client, run_id, "samples.png", folder)
        second = _stored_image(client, run_id, f"more/{number}.png", folder)
        np.testing.assert_array_equal(first, _image(100 + number))
        np.testing.assert_array_equal(second, _image(200 + number))


def test_a_trial_run_id_is_known_inside_its_block_and_late_logs_still_land(
    store: str, experiment: str
) -> None:
    with Tracker(store, experiment, "loop") as tracker, tracker.trial(0, {"a": 0}) as trial:
        inside = trial.run_id  # waits for the writer to create the run
        assert inside is not None
        assert MlflowClient(store).get_run(inside).data.tags[PARENT_TAG] == tracker.run_id
    trial.log_metrics({"after_exit": 2.0})  # e.g. a sample grid done after the tracker ended
    run = MlflowClient(store).get_run(inside)
    assert run.info.status == "FINISHED" and run.data.metrics["after_exit"] == 2.0


def test_a_started_tracker_can_be_pickled(store: str, experiment: str) -> None:
    """Hydra's joblib launcher pickles the sweep callback, which holds an entered tracker."""
    with Tracker(store, experiment, "sweep") as tracker:
        with tracker.trial(0, {"a": 0}) as trial:
            trial.log_metrics({"distance": 1.0})
        tracker.queue_metrics({"distance": 1.0}, step=0)  # the parent's handle pickles too
        copy = pickle.loads(pickle.dumps(tracker))
        assert copy.run_id == tracker.run_id and copy.lost_logs == tracker.lost_logs
    assert MlflowClient(store).get_run(trial.run_id or "").data.metrics["distance"] == 1.0


def test_queued_parent_metrics_land_in_order_with_their_steps(store: str, experiment: str) -> None:
    """The loop's per-trial distance curve on the parent run, sent by the writer."""
    with Tracker(store, experiment, "loop") as tracker:
        for step, value in enumerate((3.0, 2.0, float("nan"), 1.0)):
            tracker.queue_metrics({"distance": value}, step=step)
        parent = tracker.run_id
        tracker.flush()
        landed = MlflowClient(store).get_metric_history(parent, "distance")
        assert [(m.step, m.value) for m in landed] == [(0, 3.0), (1, 2.0), (3, 1.0)]
        assert tracker.lost_logs["run_logs"] == 0
    assert MlflowClient(store).get_run(parent).info.status == "FINISHED"
