"""What the parent run and the trial runs share: the logging methods and how a run ends.

Subclasses decide where a call goes (the parent run writes to the store at once, a trial run
queues its writes for the tracker's background writer) by filling a few private hooks; the
checks and the normalisation of keys and values live here once, on the caller's thread.
"""

from __future__ import annotations

import logging
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gen_loop.tracking._limits import metric_entries, param_entries, tag_entries

if TYPE_CHECKING:
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from gen_loop.tracking._server import StoreHealth

_logger = logging.getLogger(__name__)

ERROR_TAG = "gen_loop.error"
TRIAL_TAG = "gen_loop.trial"
PARENT_TAG = "mlflow.parentRunId"


def end_status(exc: BaseException | None) -> str:
    """FINISHED without an exception, KILLED on ``KeyboardInterrupt``, FAILED on another."""
    if exc is None:
        return "FINISHED"
    return "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"


def upload(client: MlflowClient, run_id: str, path: Path, artifact_path: str | None) -> None:
    """Copy a file, or a directory's contents, into the run's artifacts."""
    if path.is_dir():
        client.log_artifacts(run_id, str(path), artifact_path)
    else:
        client.log_artifact(run_id, str(path), artifact_path)


def upload_image(client: MlflowClient, run_id: str, image: np.ndarray, artifact_file: str) -> None:
    """PNG-encode an RGB image and store it as ``artifact_file`` of the run."""
    from gen_loop.tracking.plots import save_png

    artifact = Path(artifact_file)
    with tempfile.TemporaryDirectory(prefix="gen_loop_img_") as tmp:
        local = save_png(image, Path(tmp) / artifact.name)
        folder = artifact.parent.as_posix()
        client.log_artifact(run_id, str(local), None if folder == "." else folder)


class _RunLogger(ABC):
    """Logging methods shared by the parent run and the trial runs; each addresses one run.

    A call that cannot reach the store is counted in ``_health`` and skipped (see
    :mod:`gen_loop.tracking._outage`); bad arguments still raise.
    """

    _health: StoreHealth
    _trial_number: int | None = None
    ended = False

    @abstractmethod
    def _logged_params(self) -> dict[str, str] | None:
        """Params already in the run (updated by :meth:`log_params`); None: not readable."""

    @abstractmethod
    def _write(
        self,
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        metrics: Sequence[Metric] = (),
    ) -> bool:
        """Send entries to the run (or queue them); False when they were skipped."""

    @abstractmethod
    def _upload(self, path: Path, artifact_path: str | None) -> None:
        """Store a file or a directory's contents (checked to exist)."""

    @abstractmethod
    def _write_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` as an artifact file."""

    @abstractmethod
    def _write_image(self, image: np.ndarray, artifact_file: str) -> None:
        """Store an RGB image (checked) as a PNG artifact."""

    @abstractmethod
    def _terminate(self, status: str) -> None:
        """Set the run's end status."""

    def log_params(self, params: Mapping[str, object]) -> list[str]:
        """Log parameters, nested mappings flattened to dotted keys.

        Values are ``str()``-ed and truncated to MLflow's length limit; keys with characters
        MLflow rejects are sanitised. MLflow params are immutable, so on a continued run a key
        already logged with the same value is skipped, and one logged with another value is
        left as it was and reported.

        Args:
            params: Parameter names to values; values that are mappings are flattened.

        Returns:
            The keys whose new value differs from the one already logged (not changed).
        """
        from mlflow.entities import Param

        logged = self._logged_params()
        if logged is None:
            return []
        entries = param_entries(params)
        changed = sorted(k for k, v in entries.items() if k in logged and logged[k] != v)
        if changed:
            _logger.warning(
                "Params already logged with other values, kept as they were: %s",
                ", ".join(changed),
            )
        new = [Param(k, v) for k, v in entries.items() if k not in logged]
        if new and self._write(params=new):
            logged.update((p.key, p.value) for p in new)
        return changed

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags (keys sanitised, values ``str()``-ed and truncated).

        Args:
            tags: Tag names to values.
        """
        self._write(tags=tag_entries(tags))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metric values at one step; non-finite values are skipped with a warning.

        Args:
            metrics: Metric names to values.
            step: The step (e.g. trial number) the values belong to; 0 when not given.
        """
        self._write(metrics=metric_entries(metrics, step))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload a file, or a directory's contents, to the run's artifacts.

        Args:
            path: A local file or directory.
            artifact_path: Folder inside the run's artifacts; the root when not given.

        Raises:
            FileNotFoundError: ``path`` does not exist.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"artifact to log does not exist: {path}")
        self._upload(path, artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Write ``text`` to an artifact file.

        Args:
            text: The content.
            artifact_file: Path of the file inside the run's artifacts, e.g. ``"notes/a.txt"``.
        """
        self._write_text(text, artifact_file)

    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        """Log an RGB image as a PNG artifact.

        Args:
            image: ``HxWx3`` uint8 RGB array.
            artifact_file: Path of the PNG inside the run's artifacts, e.g. ``"grids/best.png"``.

        Raises:
            ValueError: ``image`` is not an ``HxWx3`` uint8 array.
        """
        from gen_loop.tracking.plots import _check_rgb

        self._write_image(_check_rgb(image), artifact_file)

    def _end(self, status: str) -> None:
        if not self.ended:
            self._terminate(status)
            self.ended = True

    def _close(self, exc: BaseException | None) -> None:
        """End the run as its ``with`` block ended: FINISHED, or KILLED on ``KeyboardInterrupt``,
        or FAILED with the error in the ``gen_loop.error`` tag; a run already ended is left as
        it is. Never raises, so that it cannot hide the exception that ended the block."""
        if self.ended:
            return
        status = end_status(exc)
        try:
            if status == "FAILED":
                self.set_tags({ERROR_TAG: f"{type(exc).__name__}: {exc}"})
            self._end(status)
        except Exception:
            what = "parent run" if self._trial_number is None else f"trial {self._trial_number}"
            _logger.exception("Could not mark the MLflow %s as %s", what, status)
