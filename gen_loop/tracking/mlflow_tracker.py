"""MLflow tracking: one parent run per loop, one nested child run per trial.

The tracker talks to the store through an ``MlflowClient`` with explicit run ids, so it never
depends on (or disturbs) MLflow's global active-run stack. mlflow is imported lazily: importing
this module costs nothing and touches no store.

An ``http(s)://`` tracking server that does not answer at start is a :class:`GenLoopError`
naming ``tracking.uri``. Once started, logging never stops the loop: a call that fails on the
way to the store is counted and skipped (see :mod:`gen_loop.tracking._server` for the policy),
because the Optuna study, not MLflow, is the record of the trials.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from gen_loop._secrets import mask_url
from gen_loop.errors import GenLoopError
from gen_loop.tracking._server import StoreHealth, configure_http_client, is_remote, probe
from gen_loop.tracking.plots import save_png

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import TracebackType

    import numpy as np
    from mlflow import MlflowClient

__all__ = ["Tracker", "TrialRun", "check_server", "git_commit", "use_wal"]

_logger = logging.getLogger(__name__)

# Limits of MLflow 3.x (mlflow.utils.validation); read from mlflow when it has them.
_MAX_PARAM_VAL_LENGTH = 6000
_MAX_TAG_VAL_LENGTH = 8000
_MAX_KEY_LENGTH = 250
_MAX_PARAMS_TAGS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000

ERROR_TAG = "gen_loop.error"
TRIAL_TAG = "gen_loop.trial"
PARENT_TAG = "mlflow.parentRunId"

# Characters MLflow accepts in param, metric and tag keys (POSIX rule, colon included).
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def _limit(name: str, default: int) -> int:
    try:
        from mlflow.utils import validation
    except ImportError:  # pragma: no cover - mlflow is a dependency
        return default
    return int(getattr(validation, name, default))


def _flatten(params: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _sanitize_key(key: str) -> str:
    """Make ``key`` acceptable to MLflow: allowed characters, a normalised relative path."""
    cleaned = _BAD_KEY_CHARS.sub("_", key)
    # MLflow rejects names that change under posixpath.normpath ("a//b", "./a", "a/", "/a").
    parts = [p if p not in (".", "..") else p.replace(".", "_") for p in cleaned.split("/") if p]
    cleaned = "/".join(parts) or "_"
    return cleaned[:_MAX_KEY_LENGTH]


def _truncate(value: str, limit: int, what: str) -> str:
    if len(value) <= limit:
        return value
    _logger.warning("%s is %d characters; truncated to MLflow's %d.", what, len(value), limit)
    return value[:limit]


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _NoRun(ConnectionError):
    """The run was never created because the store was unreachable."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Errors of a store that cannot be reached or refuses a write (not programming errors)."""
    from mlflow.exceptions import MlflowException

    errors: tuple[type[BaseException], ...] = (MlflowException, ConnectionError, TimeoutError)
    try:
        import requests

        errors += (requests.exceptions.RequestException,)
    except ImportError:  # pragma: no cover - a dependency of mlflow
        pass
    return errors


_F = TypeVar("_F", bound=Callable[..., Any])


def _tolerant(fallback: Callable[[], object] = lambda: None) -> Callable[[_F], _F]:
    """Make a logging method skip and count its call instead of raising when the store fails.

    Args:
        fallback: Makes the value returned for a skipped or failed call.
    """

    def decorate(method: _F) -> _F:
        @wraps(method)
        def wrapper(self: _RunLogger, *args: Any, **kwargs: Any) -> Any:
            health = self._health
            if not health.available():
                health.lost(self._trial_number, method.__name__)
                return fallback()
            try:
                result = method(self, *args, **kwargs)
            except _transport_errors() as err:
                health.lost(self._trial_number, method.__name__, err)
                return fallback()
            if health.down:
                health.recovered()
            return result

        return cast(_F, wrapper)

    return decorate


class _RunLogger(ABC):
    """Logging methods shared by the parent run and the trial runs; all address one run id.

    A call that cannot reach the store is counted in :attr:`_health` and skipped (see
    :func:`_tolerant`); bad arguments still raise.
    """

    _health: StoreHealth
    _trial_number: int | None = None
    # Params this object has seen in its run (None: not read yet). Only this object logs
    # params to its run, so after one read the store need not be asked again.
    _known_params: dict[str, str] | None = None

    @abstractmethod
    def _target(self) -> tuple[MlflowClient, str]:
        """The client and the id of the run to log to."""

    @_tolerant(fallback=list)
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

        client, run_id = self._target()
        if self._known_params is None:
            self._known_params = dict(client.get_run(run_id).data.params)
        logged = self._known_params
        limit = _limit("MAX_PARAM_VAL_LENGTH", _MAX_PARAM_VAL_LENGTH)
        entries: dict[str, str] = {}
        for raw_key, value in _flatten(params).items():
            key = _sanitize_key(raw_key)
            if key in entries:
                _logger.warning("Param %r collides with another key after sanitising.", raw_key)
                continue
            entries[key] = _truncate(str(value), limit, f"Param {key!r}")
        changed = sorted(k for k, v in entries.items() if k in logged and logged[k] != v)
        if changed:
            _logger.warning(
                "Params already logged with other values, kept as they were: %s",
                ", ".join(changed),
            )
        batch = [Param(k, v) for k, v in entries.items() if k not in logged]
        size = _limit("MAX_PARAMS_TAGS_PER_BATCH", _MAX_PARAMS_TAGS_PER_BATCH)
        for chunk in _chunks(batch, size):
            client.log_batch(run_id, params=chunk)
            logged.update((p.key, p.value) for p in chunk)
        return changed

    @_tolerant()
    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags (keys sanitised, values ``str()``-ed and truncated).

        Args:
            tags: Tag names to values.
        """
        from mlflow.entities import RunTag

        client, run_id = self._target()
        limit = _limit("MAX_TAG_VAL_LENGTH", _MAX_TAG_VAL_LENGTH)
        batch = [
            RunTag(_sanitize_key(k), _truncate(str(v), limit, f"Tag {k!r}"))
            for k, v in tags.items()
        ]
        size = _limit("MAX_PARAMS_TAGS_PER_BATCH", _MAX_PARAMS_TAGS_PER_BATCH)
        for chunk in _chunks(batch, size):
            client.log_batch(run_id, tags=chunk)

    @_tolerant()
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metric values at one step; non-finite values are skipped with a warning.

        Args:
            metrics: Metric names to values.
            step: The step (e.g. trial number) the values belong to; 0 when not given.
        """
        from mlflow.entities import Metric

        client, run_id = self._target()
        timestamp = int(time.time() * 1000)
        batch = []
        for key, value in metrics.items():
            number = float(value)
            if not math.isfinite(number):
                _logger.warning("Metric %r = %r is not finite; not logged.", key, value)
                continue
            batch.append(Metric(_sanitize_key(key), number, timestamp, step or 0))
        size = _limit("MAX_METRICS_PER_BATCH", _MAX_METRICS_PER_BATCH)
        for chunk in _chunks(batch, size):
            client.log_batch(run_id, metrics=chunk)

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

    @_tolerant()
    def _upload(self, path: Path, artifact_path: str | None) -> None:
        client, run_id = self._target()
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path)
        else:
            client.log_artifact(run_id, str(path), artifact_path)

    @_tolerant()
    def log_text(self, text: str, artifact_file: str) -> None:
        """Write ``text`` to an artifact file.

        Args:
            text: The content.
            artifact_file: Path of the file inside the run's artifacts, e.g. ``"notes/a.txt"``.
        """
        client, run_id = self._target()
        client.log_text(run_id, text, artifact_file)

    @_tolerant()
    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        """Log an RGB image as a PNG artifact.

        Args:
            image: ``HxWx3`` uint8 RGB array.
            artifact_file: Path of the PNG inside the run's artifacts, e.g. ``"grids/best.png"``.
        """
        client, run_id = self._target()
        artifact = Path(artifact_file)
        with tempfile.TemporaryDirectory(prefix="gen_loop_img_") as tmp:
            local = save_png(image, Path(tmp) / artifact.name)
            folder = artifact.parent.as_posix()
            client.log_artifact(run_id, str(local), None if folder == "." else folder)


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
        self._known_params = {}  # a run created just now has none
        self.ended = run_id is None

    @property
    def run_id(self) -> str | None:
        """Id of the trial's child run; None when it could not be created."""
        return self._run_id

    def _target(self) -> tuple[MlflowClient, str]:
        if self._run_id is None:
            raise _NoRun(f"trial {self._trial_number} has no MLflow run")
        return self._client, self._run_id

    def fail(self, reason: str) -> None:
        """Mark the trial FAILED with ``reason`` in the ``gen_loop.error`` tag, without raising.

        For a trial whose failure the loop catches; the trial context then leaves it FAILED.

        Args:
            reason: Why the trial failed (an error message).
        """
        self.set_tags({ERROR_TAG: reason})
        self._end("FAILED")

    def _end(self, status: str) -> None:
        if not self.ended:
            self._terminate(status)

    @_tolerant()
    def _terminate(self, status: str) -> None:
        client, run_id = self._target()
        client.set_terminated(run_id, status=status)
        self.ended = True


class Tracker(_RunLogger):
    """Owns the MLflow parent run of one loop and the nested child run of each trial.

    Use as a context manager: entering sets the tracking URI, creates the experiment when it is
    missing and starts (or resumes) the parent run; leaving ends it FINISHED, KILLED on
    ``KeyboardInterrupt`` or FAILED on another exception, which always propagates.

    Args:
        tracking_uri: MLflow tracking URI, e.g. ``sqlite:///runs/mlflow.db`` or a server URL.
        experiment: Experiment name; created when missing.
        run_name: Name of the parent run.
        artifact_location: Artifact root for a new experiment (a path or a URI). When not given
            and the store is a SQLite file, ``artifacts/`` next to the database file, so that
            artifacts do not land in ``./mlruns`` of whatever the working directory is.
        resume_run_id: Id of an existing parent run to continue instead of starting a new one.
        parent_run_id: Id of a run (e.g. a sweep's) to nest this parent run under: it is tagged
            ``mlflow.parentRunId``.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        artifact_location: str | None = None,
        resume_run_id: str | None = None,
        parent_run_id: str | None = None,
    ) -> None:
        self._tracking_uri = tracking_uri
        self._experiment = experiment
        self._run_name = run_name
        self._artifact_location = artifact_location
        self._resume_run_id = resume_run_id
        self._parent_run_id = parent_run_id
        self._experiment_id: str | None = None
        self._client: MlflowClient | None = None
        self._run_id: str | None = None
        self._health = StoreHealth(tracking_uri)

    @property
    def run_id(self) -> str:
        """Id of the parent run (available inside the ``with`` block)."""
        if self._run_id is None:
            raise RuntimeError("Tracker is not started; use it as `with Tracker(...) as t:`")
        return self._run_id

    @property
    def experiment_id(self) -> str:
        """Id of the experiment holding the parent run."""
        if self._experiment_id is None:
            raise RuntimeError("Tracker is not started; use it as `with Tracker(...) as t:`")
        return self._experiment_id

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI, its password (if any) masked: for display and summaries."""
        return mask_url(self._tracking_uri)

    @property
    def lost_logs(self) -> dict[str, object]:
        """Logging calls that did not reach the store: trial numbers, parent-run calls, outages."""
        return self._health.report()

    def _target(self) -> tuple[MlflowClient, str]:
        if self._client is None or self._run_id is None:
            raise RuntimeError("Tracker is not started; use it as `with Tracker(...) as t:`")
        return self._client, self._run_id

    def __enter__(self) -> Tracker:
        import mlflow
        from mlflow import MlflowClient

        if is_remote(self._tracking_uri):
            configure_http_client(self._tracking_uri)
            check_server(self._tracking_uri)
        mlflow.set_tracking_uri(self._tracking_uri)
        self._client = MlflowClient(tracking_uri=self._tracking_uri)
        try:
            self._experiment_id = self._ensure_experiment()
            use_wal(self._tracking_uri)
            if self._resume_run_id is not None:
                self._run_id = self._resume(self._resume_run_id)
            else:
                from mlflow.tracking.context.registry import resolve_tags

                tags = resolve_tags()
                if self._parent_run_id is not None:  # e.g. the sweep run of a --multirun
                    tags[PARENT_TAG] = self._parent_run_id
                run = self._client.create_run(
                    self._experiment_id, run_name=self._run_name, tags=tags
                )
                self._run_id = run.info.run_id
        except _transport_errors() as err:
            raise GenLoopError(
                f"config key 'tracking.uri': could not start an MLflow run in "
                f"{self.tracking_uri}: {mask_url(str(err))[:1000]}"
            ) from None
        _logger.info("MLflow parent run %s in experiment %r", self._run_id, self._experiment)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._run_id is None or self._client is None:
            return
        if exc is None:
            self._terminate("FINISHED")
            return
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            if status == "FAILED":
                self.set_tags({ERROR_TAG: f"{type(exc).__name__}: {exc}"})
            self._client.set_terminated(self._run_id, status=status)
        except Exception:  # never hide the exception that ended the loop
            _logger.exception("Could not mark MLflow run %s as %s", self._run_id, status)

    @_tolerant()
    def _terminate(self, status: str) -> None:
        client, run_id = self._target()
        client.set_terminated(run_id, status=status)

    def _create_trial_run(self, number: int) -> str | None:
        client, parent_id = self._target()
        if not self._health.available():
            return None
        tags = {PARENT_TAG: parent_id, TRIAL_TAG: str(number)}
        try:
            run = client.create_run(self.experiment_id, run_name=f"trial-{number:04d}", tags=tags)
        except _transport_errors() as err:
            self._health.lost(number, "create_run", err)
            return None
        return str(run.info.run_id)

    @contextmanager
    def _trial(self, number: int, params: Mapping[str, object]) -> Iterator[TrialRun]:
        client, _ = self._target()
        run_id = self._create_trial_run(number)
        if run_id is None:
            self._health.lost(number, "create_run")
        trial = TrialRun(client, run_id, self._health, number)
        try:
            trial.log_params(params)
            yield trial
        except BaseException as exc:
            if not trial.ended:
                status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
                try:
                    trial.set_tags({ERROR_TAG: f"{type(exc).__name__}: {exc}"})
                    trial._end(status)
                except Exception:  # never hide the trial's own error
                    _logger.exception("Could not mark trial run %s as %s", trial.run_id, status)
            raise
        trial._end("FINISHED")

    def trial(self, number: int, params: Mapping[str, object]) -> AbstractContextManager[TrialRun]:
        """Open the nested child run of one trial.

        The child is named ``trial-NNNN`` and tagged ``mlflow.parentRunId`` (the parent run id)
        and ``gen_loop.trial`` (``number``); ``params`` are logged at start. On exit it is
        FINISHED, or FAILED with the error text in the ``gen_loop.error`` tag when the body
        raised (the exception propagates), or left FAILED when :meth:`TrialRun.fail` was called.

        Args:
            number: The trial number (the Optuna trial number).
            params: The trial's parameters; nested mappings are flattened to dotted keys.

        Returns:
            A context manager yielding the :class:`TrialRun`.
        """
        return self._trial(number, params)

    def _ensure_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        assert self._client is not None
        found = self._client.get_experiment_by_name(self._experiment)
        if found is None:
            try:
                return self._client.create_experiment(
                    self._experiment, artifact_location=self._artifact_root()
                )
            except MlflowException:
                # Another worker may have created it in between.
                found = self._client.get_experiment_by_name(self._experiment)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise GenLoopError(
                f"MLflow experiment {self._experiment!r} is deleted in {self.tracking_uri}; "
                "restore it (`mlflow experiments restore`) or choose another experiment name."
            )
        return str(found.experiment_id)

    def _artifact_root(self) -> str | None:
        location = self._artifact_location
        if location is None and self._tracking_uri.startswith("sqlite:///"):
            db_file = Path(self._tracking_uri[len("sqlite:///") :])
            location = str(db_file.parent / "artifacts")
        if location is not None and "://" not in location:
            # A relative path would be resolved against the working directory of each reader.
            location = Path(location).expanduser().resolve().as_uri()
        return location

    def _resume(self, run_id: str) -> str:
        from mlflow.exceptions import MlflowException

        assert self._client is not None
        try:
            run = self._client.get_run(run_id)
        except MlflowException as exc:
            raise GenLoopError(
                f"MLflow run {run_id!r} to resume was not found in {self.tracking_uri}: {exc}. "
                "Give the id of an existing parent run, or none to start a new run."
            ) from exc
        problem = None
        if run.info.experiment_id != self._experiment_id:
            problem = f"it belongs to experiment id {run.info.experiment_id}"
        elif run.info.lifecycle_stage != "active":
            problem = "it is deleted"
        elif TRIAL_TAG in run.data.tags:  # a parent run may itself be nested (sweeps)
            problem = "it is a trial (child) run"
        if problem:
            raise GenLoopError(
                f"cannot resume MLflow run {run_id!r} in experiment {self._experiment!r}: "
                f"{problem}. Give the id of a parent run of this experiment."
            )
        self._client.update_run(run_id, status="RUNNING")
        return run_id


def use_wal(uri: str) -> bool:
    """Put a local SQLite tracking store in write-ahead-log mode; True when it is.

    A trial makes about five small MLflow writes; in SQLite's default rollback-journal mode
    each commit costs several fsyncs, in WAL mode one (as durable: ``synchronous`` is left as
    it is), which took about 2.3x less time a write on this project's machines
    (experiments/throughput/RESULTS.md). The mode is stored in the database file, so
    ``mlflow ui`` and other workers use it too; it needs a local disk (as SQLite does for
    several writers anyway). Any other store, or a database that is busy, is left alone.

    Args:
        uri: The tracking URI.
    """
    if not uri.startswith("sqlite:///"):
        return False
    import sqlite3
    from contextlib import closing

    path = uri[len("sqlite:///") :].split("?", 1)[0]
    try:
        with closing(sqlite3.connect(path, timeout=10)) as con:
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.Error as err:  # e.g. locked by another process: keep its mode
        _logger.info("SQLite store %s kept its journal mode: %s", path, err)
        return False
    return str(mode).lower() == "wal"


def check_server(uri: str) -> None:
    """Fail early, naming ``tracking.uri``, when the MLflow server at ``uri`` does not answer.

    Only ``http(s)://`` URIs are probed (``GET /health``, a few seconds at most); file and
    database stores pass.

    Args:
        uri: The tracking URI.

    Raises:
        GenLoopError: The server is unreachable.
    """
    if not is_remote(uri):
        return
    problem = probe(uri)
    if problem is not None:
        raise GenLoopError(
            f"config key 'tracking.uri': the MLflow tracking server {mask_url(uri)} is "
            f"unreachable ({mask_url(problem)}). Start it (e.g. `mlflow server --host "
            "127.0.0.1 --port 5000`), fix tracking.uri, or leave tracking.uri unset for a "
            "local SQLite store."
        )


def git_commit(path: Path) -> str | None:
    """Return the commit checked out in the git repository containing ``path``.

    Args:
        path: A file or directory inside the repository.

    Returns:
        The ``git rev-parse HEAD`` hash, or None when ``path`` is not in a git repository with a
        commit, or git is missing or does not answer within 5 s.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None
