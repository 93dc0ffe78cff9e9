"""Several workers on one study: who is alive, what the budget is, who finalises.

Every decision is taken on the shared study, never on a worker's own memory: the trial budget
counts the study's trials, convergence replays the study's finished trials, and the final
selection/fine-tune is claimed once, under ``StudyMutex``, by the first worker that sees the
stop condition.

A trial whose worker died is failed and re-enqueued with the same parameters (Optuna's
``RetryHeartbeatStaleTrialCallback``); the failed copy is then *superseded* by its retry and counts
neither towards the budget nor towards convergence.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from gen_loop.search.convergence import Convergence
from gen_loop.search.storage import retried_trial_numbers, retry_callback
from gen_loop.search.study import from_objective

WORKER_ATTR = "worker"
FINALISER_ATTR = "finaliser:n_trials={}"
SESSIONS_ATTR = "worker_sessions"


def _start_ticks(pid: int) -> str | None:
    """The process start time (clock ticks since boot), to tell a reused pid apart."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 (tiny read)
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def worker_id() -> dict[str, Any]:
    """This process as the study records it: host, pid and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _start_ticks(pid)}


def is_dead(worker: dict[str, Any]) -> bool:
    """True when ``worker`` ran on this host and its process is gone.

    A worker on another host is never called dead here: the storage heartbeat decides that.
    """
    if worker.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(worker["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    started = worker.get("start")
    return started is not None and _start_ticks(int(worker["pid"])) != started


def requeue(study: optuna.Study, trial_id: int) -> bool:
    """Fail the running trial ``trial_id`` and enqueue its parameters again; False when it had
    already finished (another worker was faster).

    The failed copy is then superseded by its retry (:func:`superseded`): it holds no budget
    slot and the next ``ask`` runs the same point again.
    """
    storage = study._storage
    try:
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    retry_callback()(study, storage.get_trial(trial_id))
    return True


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Fail and re-enqueue the RUNNING trials whose worker died; return their numbers.

    Two checks, both safe with live workers around:

    - a trial asked on this host by a process that no longer exists is failed at once. This is
      the resume after ``kill -9`` on one machine: no waiting for a heartbeat grace period, and
      it is right for SQLite (no heartbeat between separate runs of one folder) as well as for a
      database server. A trial without a worker record comes from an older study; with no
      heartbeat to go by it is treated as dead, as before. Call it under the study mutex:
      :func:`ask` creates a trial and records its worker in two writes, and between them a live
      worker's new trial has no record yet.
    - on an RDB storage, Optuna's heartbeat: a trial whose worker (on any host) has not beaten
      for ``grace_period`` seconds is failed and re-enqueued by ``fail_stale_trials``.
    """
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker is not None and not is_dead(worker):
            continue
        if requeue(study, trial._trial_id):
            failed.append(trial.number)
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return sorted([*failed, *(after - before)])


def superseded(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that have been re-enqueued (a retry stands in for them)."""
    return {n for t in trials for n in retried_trial_numbers(t)}


@dataclass(frozen=True)
class StudyView:
    """The shared study at one moment, as the loop's decisions need it.

    Attributes:
        asked: trials that hold a budget slot (asked or finished; retried ones excluded).
        running: trials being run by some worker.
        finished: finished trials in number order (retried ones excluded).
        n_failed: failed trials, retried ones included.
        n_retried: failed trials that were re-enqueued.
    """

    asked: int
    running: int
    finished: tuple[FrozenTrial, ...]
    n_failed: int
    n_retried: int

    @classmethod
    def of(cls, study: optuna.Study) -> StudyView:
        """Read the study once."""
        trials = study.get_trials(deepcopy=False)
        gone = superseded(trials)
        live = [t for t in trials if t.number not in gone]
        return cls(
            asked=sum(t.state != TrialState.WAITING for t in live),
            running=sum(t.state == TrialState.RUNNING for t in live),
            finished=tuple(t for t in live if t.state.is_finished()),
            n_failed=sum(t.state == TrialState.FAIL for t in trials),
            n_retried=len(gone),
        )

    def convergence(self, template: Convergence) -> Convergence:
        """``template``'s rule fed with every finished trial of the study."""
        conv = dataclasses.replace(
            template,
            best=float("inf"),
            best_trial=None,
            trials_seen=0,
            since_improvement=0,
            history=[],
        )
        for trial in self.finished:
            ok = trial.state == TrialState.COMPLETE and trial.value is not None
            conv.update(trial.number, from_objective(trial.value) if ok else None)  # type: ignore[arg-type]
        return conv


def join_study(study: optuna.Study) -> int:
    """Register one more worker session on the study; return how many joined before it.

    Call under ``StudyMutex.hold()``. The loop seeds its sampler with ``search.seed`` plus
    this number: workers (and resumed runs) that shared one seed would draw the very same
    random startup points, and a first session still gets exactly ``search.seed``.
    """
    joined = int(study.user_attrs.get(SESSIONS_ATTR, 0))
    study.set_user_attr(SESSIONS_ATTR, joined + 1)
    return joined


def claim_finalisation(study: optuna.Study, n_trials: int, run_dir: str) -> dict[str, Any] | None:
    """Claim the final select/fine-tune for the study's ``n_trials`` budget.

    Call under ``StudyMutex.hold()``: the read-then-write on the study's attributes is only
    atomic because every worker holds the mutex around it. Returns None when this worker got
    the claim, else the record of the worker that has it. A claim left by a dead worker of
    this host that never finished is taken over. A later run with a larger budget gets a
    claim of its own.
    """
    key = FINALISER_ATTR.format(n_trials)
    holder = study.user_attrs.get(key)
    if holder is not None and (holder.get("done") or not is_dead(holder)):
        return dict(holder)
    study.set_user_attr(key, {**worker_id(), "run_dir": run_dir, "done": False})
    return None


def finalised(study: optuna.Study) -> bool:
    """Whether some worker's final select/fine-tune of the study completed (any budget)."""
    prefix = FINALISER_ATTR.split("{")[0]
    return any(
        key.startswith(prefix) and isinstance(value, dict) and value.get("done")
        for key, value in study.user_attrs.items()
    )


def mark_finalised(study: optuna.Study, n_trials: int) -> None:
    """Record that this worker's finalisation for the ``n_trials`` budget completed."""
    key = FINALISER_ATTR.format(n_trials)
    study.set_user_attr(key, {**study.user_attrs[key], "done": True})


@dataclass(frozen=True)
class Decision:
    """What the shared study says a worker should do next (see :func:`decide`).

    Attributes:
        stop_reason: the stop rule's reason to stop, or None.
        budget_left: whether trials of the budget remain to be asked.
        view: the study as read.
        convergence: the stop rule's state replayed from the study's finished trials.
    """

    stop_reason: str | None
    budget_left: bool
    view: StudyView
    convergence: Convergence


def decide(
    study: optuna.Study,
    convergence: Convergence,
    elapsed_s: float,
    plateau_held: Callable[[StudyView], bool] | None = None,
) -> Decision:
    """Read the shared study and judge the stop rule and the budget on it.

    The one stop decision of the search: the sampler's loop and the refinement stage both
    take it before each trial (under the study mutex). Dead workers' trials are failed and
    re-queued first. ``plateau_held(view)`` True holds the plateau rule back for now
    (:func:`gen_loop.search.refine_claim.plateau_held`).
    """
    fail_dead_trials(study)
    view = StudyView.of(study)
    shared = view.convergence(convergence)
    held = plateau_held is not None and plateau_held(view)
    reason = shared.stop_reason(elapsed_s, plateau=not held)
    return Decision(reason, view.asked < convergence.n_trials, view, shared)
