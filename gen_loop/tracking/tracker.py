"""The MLflow parent run of one loop, and the door to the nested child run of each trial.

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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gen_loop._secrets import mask_url
from gen_loop.errors import GenLoopError
from gen_loop.tracking._limits import metric_entries, write_batch
from gen_loop.tracking._outage import _tolerant, _transport_errors
from gen_loop.tracking._run_logger import (
    ERROR_TAG,
    PARENT_TAG,
    TRIAL_TAG,
    _RunLogger,
    upload,
    upload_image,
)
from gen_loop.tracking._server import StoreHealth, check_server, configure_http_client, is_remote
from gen_loop.tracking._sqlite import quiet_database_errors, use_wal
from gen_loop.tracking._writer import RunHandle, Writer
from gen_loop.tracking.trial_run import TrialRun

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import TracebackType

    import numpy as np
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

_logger = logging.getLogger(__name__)

_NOT_STARTED = "Tracker is not started; use it as `with Tracker(...) as t:`"

#: MLflow 3's UI shows an experiment of this kind in its classic runs view, not the GenAI one
#: (a fresh browser still needs ``workflowType=machine_learning`` in the URL: links.py).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}

#: Trial runs are evaluations of one camera; MLflow 3.17's runs table expands the parent of
#: such runs on a browser's first visit, so a new user sees the trials (mlflow_view.py).
TRIAL_RUN_TYPE = {"mlflow.runType": "evaluation"}

#: The tag of the best trial's child run, and the parent run's tag naming that child.
BEST_TAG = "gen_loop.best"
BEST_RUN_TAG = "gen_loop.best_trial_run_id"


class Tracker(_RunLogger):
    """Owns the MLflow parent run of one loop and the nested child run of each trial.

    Use as a context manager: entering sets the tracking URI, creates the experiment when it is
    missing (tagged :data:`EXPERIMENT_KIND`) and starts (or resumes) the parent run; leaving
    ends it FINISHED, KILLED on ``KeyboardInterrupt`` or FAILED on another exception, which
    always propagates.

    The parent run's calls write to the store at once. The trial runs' calls are queued for a
    background writer thread owned by the tracker (they took ~25 ms a trial:
    experiments/throughput/RESULTS.md); leaving the ``with`` block, however it is left, first
    waits until every queued trial log is in the store or counted in :attr:`lost_logs`. Read
    the store inside the block only after :meth:`flush`.

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
        self._writer: Writer | None = None
        self._parent: RunHandle | None = None  # the parent run, for queue_metrics
        # Params of the parent run (None: not read yet). Only this object logs params to its
        # run, so after one read the store need not be asked again.
        self._known_params: dict[str, str] | None = None

    @property
    def run_id(self) -> str:
        """Id of the parent run (available inside the ``with`` block)."""
        if self._run_id is None:
            raise RuntimeError(_NOT_STARTED)
        return self._run_id

    @property
    def experiment_id(self) -> str:
        """Id of the experiment holding the parent run."""
        if self._experiment_id is None:
            raise RuntimeError(_NOT_STARTED)
        return self._experiment_id

    @property
    def resumed(self) -> bool:
        """Whether the parent run is an earlier one continued (it keeps its name)."""
        return self._resume_run_id is not None

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI, its password (if any) masked: for display and summaries."""
        return mask_url(self._tracking_uri)

    @property
    def lost_logs(self) -> dict[str, object]:
        """Logging calls that did not reach the store: trial numbers, parent-run calls, outages.

        Waits for the trial logs still queued, so that the counts are complete.
        """
        self.flush()
        return self._health.report()

    def queue_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log parent-run metrics through the background writer, like the trials' own logs.

        For values logged on the loop's path once per trial (the distance curve): the call
        returns at once; the values are in the store after :meth:`flush` or the ``with``
        block, in order with the trials' writes. Non-finite values are skipped with a warning.
        """
        _, run_id = self._target()
        assert self._writer is not None
        if self._parent is None or self._parent.run_id != run_id:
            self._parent = RunHandle(None)  # already created: the writer only logs to it
            self._parent.run_id = run_id
            self._parent.created.set()
        self._writer.log_batch(self._parent, metrics=metric_entries(metrics, step))

    def flush(self) -> None:
        """Wait until every queued trial log is in the store (or counted as lost)."""
        if self._writer is not None:
            self._writer.flush()

    def __enter__(self) -> Tracker:
        import mlflow
        from mlflow import MlflowClient

        if is_remote(self._tracking_uri):
            configure_http_client(self._tracking_uri)
            check_server(self._tracking_uri)
        quiet_database_errors()
        mlflow.set_tracking_uri(self._tracking_uri)
        self._client = MlflowClient(tracking_uri=self._tracking_uri)
        self._writer = Writer(self._client, self._health)
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
                f"{self.tracking_uri}: {mask_url(_reason(err))[:1000]}"
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
        try:
            if self._writer is not None:
                self._writer.close()  # the trials' logs first: the parent ends last
        finally:
            self._close(exc)

    def trial(self, number: int, params: Mapping[str, object]) -> AbstractContextManager[TrialRun]:
        """Open the nested child run of one trial.

        The child is named ``trial-NNNN`` and tagged ``mlflow.parentRunId`` (the parent run id),
        ``gen_loop.trial`` (``number``) and :data:`TRIAL_RUN_TYPE`; ``params`` are logged at
        start. On exit it is FINISHED, or FAILED with the error text in the ``gen_loop.error``
        tag when the body raised (the exception propagates), or left FAILED when
        :meth:`TrialRun.fail` was called.

        Args:
            number: The trial number (the Optuna trial number).
            params: The trial's parameters; nested mappings are flattened to dotted keys.

        Returns:
            A context manager yielding the :class:`TrialRun`.
        """
        return self._trial(number, params)

    @contextmanager
    def _trial(self, number: int, params: Mapping[str, object]) -> Iterator[TrialRun]:
        _, parent_id = self._target()
        assert self._writer is not None
        run = RunHandle(number)
        tags = {PARENT_TAG: parent_id, TRIAL_TAG: str(number), **TRIAL_RUN_TYPE}
        self._writer.create_run(run, self.experiment_id, f"trial-{number:04d}", tags)
        trial = TrialRun(self._writer, run, self._health)
        try:
            trial.log_params(params)
            yield trial
        except BaseException as exc:
            trial._close(exc)
            raise
        trial._close(None)

    @_tolerant(fallback=list)
    def end_orphan_trials(self, numbers: Sequence[int], reason: str) -> list[str]:
        """End KILLED the child runs of ``numbers`` that an earlier process left RUNNING.

        For the trials of a resumed parent run whose process died (``kill -9``): their child
        runs were never ended. Returns the ids of the runs ended; a store failure is counted.
        """
        client, run_id = self._target()
        self.flush()
        query = f"tags.{PARENT_TAG} = '{run_id}' and attributes.status = 'RUNNING'"
        wanted = {str(n) for n in numbers}
        ended = []
        for run in client.search_runs([self.experiment_id], query, max_results=1000):
            if run.data.tags.get(TRIAL_TAG) in wanted:
                client.set_tag(run.info.run_id, ERROR_TAG, reason)
                client.set_terminated(run.info.run_id, status="KILLED")
                ended.append(run.info.run_id)
        return ended

    @_tolerant(fallback=lambda: None)
    def mark_best_trial(self, number: int) -> str | None:
        """Tag the child run of trial ``number`` :data:`BEST_TAG` (``true``), and the parent run
        :data:`BEST_RUN_TAG` with its id; a child marked best before loses the tag.

        The child is looked up by its ``gen_loop.trial`` tag among the parent's children, so a
        trial of an earlier session of a resumed run is found too. Returns its run id, or None
        when the parent has no child run of that trial (e.g. another worker's trial); then no
        child is marked.
        """
        client, run_id = self._target()
        self.flush()
        children = f"tags.`{PARENT_TAG}` = '{run_id}'"
        best = client.search_runs(
            [self.experiment_id], f"{children} and tags.`{TRIAL_TAG}` = '{number}'", max_results=1
        )
        marked = client.search_runs(
            [self.experiment_id], f"{children} and tags.`{BEST_TAG}` = 'true'", max_results=100
        )
        best_id = best[0].info.run_id if best else None
        for run in marked:
            if run.info.run_id != best_id:
                client.delete_tag(run.info.run_id, BEST_TAG)
        if best_id is None:  # the marks of a trial that is no longer the best go too
            _logger.info("trial %d has no child run under parent run %s", number, run_id)
            if BEST_RUN_TAG in client.get_run(run_id).data.tags:
                client.delete_tag(run_id, BEST_RUN_TAG)
            return None
        client.set_tag(best_id, BEST_TAG, "true")
        client.set_tag(run_id, BEST_RUN_TAG, best_id)
        return best_id

    @_tolerant()
    def set_experiment_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags of the experiment (e.g. a shared view of its runs table)."""
        assert self._client is not None
        for key, value in tags.items():
            self._client.set_experiment_tag(self.experiment_id, key, value)

    # ------------------------------------------------ the parent run's writes: synchronous

    def _target(self) -> tuple[MlflowClient, str]:
        if self._client is None or self._run_id is None:
            raise RuntimeError(_NOT_STARTED)
        return self._client, self._run_id

    @_tolerant(fallback=lambda: None)
    def _logged_params(self) -> dict[str, str] | None:
        if self._known_params is None:
            client, run_id = self._target()
            self._known_params = dict(client.get_run(run_id).data.params)
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

    # ------------------------------------------------ start: experiment, new or resumed run

    def _ensure_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        assert self._client is not None
        found = self._client.get_experiment_by_name(self._experiment)
        if found is None:
            try:
                return self._client.create_experiment(
                    self._experiment, artifact_location=self._artifact_root(), tags=EXPERIMENT_KIND
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
        for key, value in EXPERIMENT_KIND.items():  # an experiment made before the tag existed
            if found.tags.get(key) != value:
                self._client.set_experiment_tag(found.experiment_id, key, value)
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


def _reason(err: BaseException) -> str:
    """One line: the innermost cause (``sqlite3.OperationalError: database is locked``), not
    SQLAlchemy's statement and parameters."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = [line for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0].strip()}" if lines else type(err).__name__
