"""The tracker's background writer: the trial runs' MLflow writes, off the trial's path.

A trial's child run used to cost about 25 ms of small synchronous store writes per trial
(create, params, tags, metrics, sample grid, end: experiments/throughput/RESULTS.md). A
:class:`TrialRun <gen_loop.tracking.TrialRun>` now queues them here and returns at once; one
thread owned by the :class:`Tracker <gen_loop.tracking.Tracker>` sends them, in order per
run, with the params, tags and metrics that are waiting for one run merged into as few
``log_batch`` calls as MLflow's per-call limits allow.

Nothing queued is dropped silently: :meth:`Writer.close` (the tracker's exit, on success,
error or Ctrl-C) and an ``atexit`` hook (a tracker never exited) wait until every job is
written or, when the store cannot be reached, counted as lost in the shared
:class:`~gen_loop.tracking._server.StoreHealth` (skip and count, as for the parent run).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gen_loop.tracking._limits import write_batch
from gen_loop.tracking._outage import attempt

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from gen_loop.tracking._server import StoreHealth

_logger = logging.getLogger(__name__)

#: Jobs waiting before a caller blocks (back-pressure instead of unbounded memory: a queued
#: sample grid holds its image).
MAX_PENDING = 1024
#: Jobs the thread takes at once; the data jobs of one run among them make one batch.
_TAKE = 256
#: How long the ``atexit`` hook waits for a store that does not answer.
EXIT_WAIT_S = 120.0

Call = Callable[["MlflowClient", str], object]


class RunHandle:
    """A queued run: its trial number, and its id once the writer has created it.

    Args:
        number: The trial number (for the lost-log counts); None for the parent run.
    """

    def __init__(self, number: int | None) -> None:
        self.number = number
        self.run_id: str | None = None
        self.created = threading.Event()  # set when creation was tried (run_id None: failed)

    def __getstate__(self) -> dict[str, object]:  # e.g. in a tracker a Hydra callback sends
        return {"number": self.number, "run_id": self.run_id, "done": self.created.is_set()}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.number = state["number"]  # type: ignore[assignment]
        self.run_id = state["run_id"]  # type: ignore[assignment]
        self.created = threading.Event()
        if state["done"]:
            self.created.set()


@dataclass(eq=False)
class _Job:
    run: RunHandle
    what: str
    call: Call | None = None  # None: a data job (params, tags, metrics)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    cleanup: Callable[[], None] | None = None  # runs whether or not the call was made


class _Batch:
    """The data jobs of one run waiting among the taken jobs, merged in order."""

    def __init__(self) -> None:
        self.params: list[Param] = []
        self.tags: dict[str, RunTag] = {}  # a later value of a key replaces the earlier one
        self.metrics: list[Metric] = []

    def add(self, job: _Job) -> None:
        self.params += job.params
        for tag in job.tags:
            self.tags.pop(tag.key, None)
            self.tags[tag.key] = tag
        self.metrics += job.metrics


class Writer:
    """One background thread writing queued jobs of trial runs to the store.

    The thread starts with the first job. Jobs of one run are written in the order they were
    queued; a job of a run whose creation failed is counted as lost.

    Args:
        client: The tracker's client.
        health: The store's health, shared with the tracker (the lost-log counts).
        max_pending: Jobs waiting before :meth:`create_run`/:meth:`log_batch`/:meth:`call`
            block.
    """

    def __init__(
        self, client: MlflowClient, health: StoreHealth, max_pending: int = MAX_PENDING
    ) -> None:
        self._client = client
        self._health = health
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._busy = 0  # jobs taken by the thread and not finished yet
        self._closing = False
        self._thread: threading.Thread | None = None

    def __reduce__(self) -> tuple[type[Writer], tuple[MlflowClient, StoreHealth, int]]:
        # A copy (e.g. in a Hydra callback sent to a job process) starts idle, with no thread.
        return (Writer, (self._client, self._health, self._max_pending))

    # ------------------------------------------------ queueing (any thread)

    def create_run(
        self, run: RunHandle, experiment_id: str, run_name: str, tags: dict[str, str]
    ) -> None:
        """Queue the creation of ``run`` (started now, as far as MLflow is told)."""
        start_time = int(time.time() * 1000)

        def create(client: MlflowClient, _: str) -> None:
            created = client.create_run(
                experiment_id, start_time=start_time, tags=tags, run_name=run_name
            )
            run.run_id = str(created.info.run_id)

        self._put(_Job(run, "create_run", create, cleanup=run.created.set))

    def log_batch(
        self,
        run: RunHandle,
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        metrics: Sequence[Metric] = (),
    ) -> None:
        """Queue params, tags and metrics (already within MLflow's key and value limits)."""
        if params or tags or metrics:
            self._put(_Job(run, "log_batch", None, list(params), list(tags), list(metrics)))

    def call(
        self, run: RunHandle, what: str, call: Call, cleanup: Callable[[], None] | None = None
    ) -> None:
        """Queue ``call(client, run_id)`` (an artifact, the end status); ``cleanup`` after."""
        self._put(_Job(run, what, call, cleanup=cleanup))

    def _put(self, job: _Job) -> None:
        with self._cond:
            # Checked and queued under one lock: the thread stops only on an empty queue.
            if not self._closing:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="gen_loop-mlflow-writer", daemon=True
                    )
                    self._thread.start()
                    atexit.register(self._drain_at_exit)
                while (
                    len(self._jobs) >= self._max_pending
                    and self._thread.is_alive()
                    and not self._closing
                ):
                    self._cond.wait(0.5)
                if not self._closing:
                    self._jobs.append(job)
                    self._cond.notify_all()
                    return
        self._write([job])  # e.g. a sample grid finished after the tracker's exit: written here

    # ------------------------------------------------ waiting (the tracker's thread)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued job is written or counted as lost; False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._jobs or self._busy:
                if self._thread is None or not self._thread.is_alive():
                    self._count_lost(list(self._jobs))  # not expected: the thread never raises
                    self._jobs.clear()
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(0.5, left))
        return True

    def close(self, timeout_s: float | None = None) -> None:
        """Write (or count) everything queued, then stop the thread; later jobs are written
        on the caller's thread."""
        done = self.flush(timeout_s)
        with self._cond:
            self._closing = True
            if not done:
                _logger.warning(
                    "The MLflow store did not take %d queued trial logs in %.0f s; counted "
                    "as lost.",
                    len(self._jobs),
                    timeout_s,
                )
                self._count_lost(list(self._jobs))
                self._jobs.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            atexit.unregister(self._drain_at_exit)
            if done:
                thread.join()

    def _drain_at_exit(self) -> None:
        """A tracker left without ``__exit__`` (a crash): its trial logs still land."""
        self.close(EXIT_WAIT_S)

    # ------------------------------------------------ writing (the writer's thread)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    return
                taken = [self._jobs.popleft() for _ in range(min(_TAKE, len(self._jobs)))]
                self._busy = len(taken)
                self._cond.notify_all()
            try:
                self._write(taken)
            finally:
                with self._cond:
                    self._busy = 0
                    self._cond.notify_all()

    def _write(self, jobs: list[_Job]) -> None:
        """Write taken jobs: a run's data jobs merged until its next other job, order kept."""
        batches: dict[RunHandle, _Batch] = {}
        for job in jobs:
            if job.call is None:
                batches.setdefault(job.run, _Batch()).add(job)
                continue
            waiting = batches.pop(job.run, None)
            if waiting is not None:
                self._send(job.run, waiting)
            self._execute(job.run, job.what, job.call, job.cleanup)
        for run, waiting in batches.items():
            self._send(run, waiting)

    def _send(self, run: RunHandle, batch: _Batch) -> None:
        def send(client: MlflowClient, run_id: str) -> None:
            write_batch(client, run_id, batch.params, list(batch.tags.values()), batch.metrics)

        self._execute(run, "log_batch", send, None)

    def _execute(
        self, run: RunHandle, what: str, call: Call, cleanup: Callable[[], None] | None
    ) -> None:
        try:
            if what != "create_run" and run.run_id is None:
                self._health.lost(run.number, what)  # the run was never created
                return
            attempt(self._health, run.number, what, lambda: call(self._client, run.run_id or ""))
        except Exception:  # a bug or a local file error: the thread must go on
            _logger.exception("MLflow %s of trial %s failed; not logged.", what, run.number)
            self._health.lost(run.number, what)
        finally:
            if cleanup is not None:
                cleanup()

    def _count_lost(self, jobs: list[_Job]) -> None:
        for job in jobs:
            self._health.lost(job.run.number, job.what)
            if job.cleanup is not None:
                job.cleanup()
