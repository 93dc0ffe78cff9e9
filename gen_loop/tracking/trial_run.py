"""The nested child run of one trial."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gen_loop.tracking._limits import write_batch
from gen_loop.tracking._outage import _NoRun, _tolerant
from gen_loop.tracking._run_logger import ERROR_TAG, _RunLogger, upload, upload_image

if TYPE_CHECKING:
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from gen_loop.tracking._server import StoreHealth


class TrialRun(_RunLogger):
    """The nested child run of one trial; made by :meth:`Tracker.trial`, not directly.

    When the store was unreachable as the trial started, the run does not exist
    (``run_id`` is None) and every logging call is counted as lost.
    """

    def __init__(
        self, client: MlflowClient, run_id: str | None, health: StoreHealth, number: int
    ) -> None:
        self._client = client
        self._run_id = run_id
        self._health = health
        self._trial_number = number
        self._known_params: dict[str, str] = {}  # a run created just now has none
        self.ended = run_id is None

    @property
    def run_id(self) -> str | None:
        """Id of the trial's child run; None when it could not be created."""
        return self._run_id

    def fail(self, reason: str) -> None:
        """Mark the trial FAILED with ``reason`` in the ``gen_loop.error`` tag, without raising.

        For a trial whose failure the loop catches; the trial context then leaves it FAILED.

        Args:
            reason: Why the trial failed (an error message).
        """
        self.set_tags({ERROR_TAG: reason})
        self._end("FAILED")

    def _target(self) -> tuple[MlflowClient, str]:
        if self._run_id is None:
            raise _NoRun(f"trial {self._trial_number} has no MLflow run")
        return self._client, self._run_id

    def _logged_params(self) -> dict[str, str]:
        return self._known_params

    @_tolerant(fallback=lambda: False)
    def _write(
        self,
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        metrics: Sequence[Metric] = (),
    ) -> bool:
        write_batch(*self._target(), params, tags, metrics)
        return True

    @_tolerant()
    def _upload(self, path: Path, artifact_path: str | None) -> None:
        upload(*self._target(), path, artifact_path)

    @_tolerant()
    def _write_text(self, text: str, artifact_file: str) -> None:
        client, run_id = self._target()
        client.log_text(run_id, text, artifact_file)

    @_tolerant()
    def _write_image(self, image: np.ndarray, artifact_file: str) -> None:
        upload_image(*self._target(), image, artifact_file)

    @_tolerant()
    def _terminate(self, status: str) -> None:
        client, run_id = self._target()
        client.set_terminated(run_id, status=status)
