"""The nested child run of one trial, written by the tracker's background writer."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gen_loop.tracking._run_logger import ERROR_TAG, _RunLogger, upload, upload_image

if TYPE_CHECKING:
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from gen_loop.tracking._server import StoreHealth
    from gen_loop.tracking._writer import RunHandle, Writer


class TrialRun(_RunLogger):
    """The nested child run of one trial; made by :meth:`Tracker.trial`, not directly.

    Its logging calls check and normalise their arguments, queue the write for the tracker's
    background writer (:mod:`gen_loop.tracking._writer`) and return; they may be made from any
    thread. Everything queued is in the store when the tracker's ``with`` block has ended
    (or after :meth:`Tracker.flush`). When the store was unreachable as the trial started,
    the run does not exist (``run_id`` is None) and every logging call is counted as lost.
    """

    def __init__(self, writer: Writer, run: RunHandle, health: StoreHealth) -> None:
        self._writer = writer
        self._run = run
        self._health = health
        self._trial_number = run.number
        self._known_params: dict[str, str] = {}  # a run created just now has none

    @property
    def run_id(self) -> str | None:
        """Id of the trial's child run; None when it could not be created.

        Waits for the writer to have created the run (the first job of the trial).
        """
        self._run.created.wait()
        return self._run.run_id

    def fail(self, reason: str) -> None:
        """Mark the trial FAILED with ``reason`` in the ``gen_loop.error`` tag, without raising.

        For a trial whose failure the loop catches; the trial context then leaves it FAILED.

        Args:
            reason: Why the trial failed (an error message).
        """
        self.set_tags({ERROR_TAG: reason})
        self._end("FAILED")

    def _logged_params(self) -> dict[str, str]:
        return self._known_params

    def _write(
        self,
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        metrics: Sequence[Metric] = (),
    ) -> bool:
        self._writer.log_batch(self._run, params, tags, metrics)
        return True

    def _upload(self, path: Path, artifact_path: str | None) -> None:
        # A copy: the caller may change or delete its file before the writer gets to it.
        staging = Path(tempfile.mkdtemp(prefix="gen_loop_artifact_"))
        local = staging / path.name
        if path.is_dir():
            shutil.copytree(path, local)
        else:
            shutil.copy2(path, local)

        def send(client: MlflowClient, run_id: str) -> None:
            upload(client, run_id, local, artifact_path)

        self._writer.call(
            self._run, "log_artifact", send, lambda: shutil.rmtree(staging, ignore_errors=True)
        )

    def _write_text(self, text: str, artifact_file: str) -> None:
        def send(client: MlflowClient, run_id: str) -> None:
            client.log_text(run_id, text, artifact_file)

        self._writer.call(self._run, "log_text", send)

    def _write_image(self, image: np.ndarray, artifact_file: str) -> None:
        copy = image.copy()  # encoded by the writer; the caller may reuse its array

        def send(client: MlflowClient, run_id: str) -> None:
            upload_image(client, run_id, copy, artifact_file)

        self._writer.call(self._run, "log_image", send)

    def _terminate(self, status: str) -> None:
        end_time = int(time.time() * 1000)

        def send(client: MlflowClient, run_id: str) -> None:
            client.set_terminated(run_id, status=status, end_time=end_time)

        self._writer.call(self._run, "set_terminated", send)
