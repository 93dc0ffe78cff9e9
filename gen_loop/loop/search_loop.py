"""The ask/tell loop: propose parameters, run the trial, tell the study, check convergence.

The loop only decides; what it does is told to a :class:`~gen_loop.loop.observer.LoopObserver`
(the console line, the MLflow child run). Every decision is taken on the shared study
(:func:`~gen_loop.search.workers.decide`), so several workers can run this loop on one study.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial

from gen_loop.loop.console import INTERRUPTED
from gen_loop.loop.observer import LoopObserver
from gen_loop.loop.refine_stage import Refiner
from gen_loop.loop.trial import TrialSetup, ask, run_trial
from gen_loop.search.convergence import Convergence
from gen_loop.search.refine_claim import plateau_held
from gen_loop.search.storage import StudyMutex
from gen_loop.search.vector_sampler import proposal_waits
from gen_loop.search.workers import StudyView, decide, fail_dead_trials

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOutcome:
    """How the search ended.

    Attributes:
        stop_reason: why it stopped.
        n_failed: failed trials of the study (all workers, earlier sessions, retried ones).
        interrupted: True when the user pressed Ctrl-C.
    """

    stop_reason: str
    n_failed: int
    interrupted: bool = False


def search(
    study: optuna.Study,
    setup: TrialSetup,
    convergence: Convergence,
    observer: LoopObserver,
    mutex: StudyMutex | None = None,
    poll_s: float = 2.0,
) -> SearchOutcome:
    """Run trials until the shared study's convergence says stop, telling ``observer`` of each.

    Several workers may run this on one study (``mutex`` shared through the storage): the
    budget and the stop rule are judged on the study, and a worker with nothing left to ask
    waits for the others' trials (or for a dead worker's trial to be re-enqueued), and so does
    one whose next trial is a model-based proposal while trials are running
    (:func:`~gen_loop.search.vector_sampler.proposal_waits`). A failing
    trial is recorded as failed with its error and the loop goes on, unless
    ``setup.max_consecutive_failures`` fail in a row (a broken generator, not a bad point).
    Ctrl-C fails the running trial and returns with ``interrupted`` set.

    With ``setup.refine.method`` lsq (or auto, for a scorer with a residual vector) the
    worker switches, once the study has ``setup.refine.after`` finished trials, to a
    least-squares refinement of the study's best trial (:mod:`gen_loop.loop.refine_stage`);
    its evaluations are trials like any other (``stage=refine``). One worker at a time
    refines; the others run the points of its Jacobians and wait during its steps
    (:meth:`~gen_loop.loop.refine_stage.Refiner.help`).

    Args:
        study: the (possibly shared, possibly resumed) study.
        setup: what every trial shares.
        convergence: the stop rule; its state is rebuilt from the study before each trial.
        observer: told of every trial (console, MLflow).
        mutex: the study's cross-worker lock (None: this process only).
        poll_s: how long a worker with no trial to ask waits before looking again.
    """
    mutex = mutex or StudyMutex("", study.study_name)
    with mutex.hold():  # not between another worker's ask and its worker record
        dead = fail_dead_trials(study)
    for number in dead:
        log.warning("trial %d was interrupted earlier: marked failed, re-queued", number)
    if dead:
        observer.on_requeued(dead)
    # Ctrl-C is caught around the call, not by a ``try`` around the loop in the loop's own
    # frame: there, on CPython 3.11.7, a KeyboardInterrupt raised at the loop's ``continue``
    # (a backward jump, where pending signals are handled) escaped the handler, traceback
    # at the ``continue``, and about half of the interrupted runs lost their summary.
    try:
        return _run_trials(study, setup, convergence, observer, mutex, poll_s)
    except KeyboardInterrupt:
        return SearchOutcome(INTERRUPTED, StudyView.of(study).n_failed, interrupted=True)


def _run_trials(
    study: optuna.Study,
    setup: TrialSetup,
    convergence: Convergence,
    observer: LoopObserver,
    mutex: StudyMutex,
    poll_s: float,
) -> SearchOutcome:
    """:func:`search`'s loop, until a stop or Ctrl-C (raised)."""
    consecutive = 0
    start = time.monotonic()
    refiner = Refiner(study, setup, convergence, observer, mutex, start)
    while True:
        trial: optuna.Trial | None = None
        refine_from: FrozenTrial | None = None
        wait = False
        with mutex.hold():
            now = decide(study, convergence, time.monotonic() - start, plateau_held(study))
            if now.stop_reason is None and now.budget_left:
                trial, wait = refiner.help()  # another worker's refinement first
                if trial is None and not wait:
                    refine_from, wait = refiner.start_point(now.view)
                    if refine_from is None and not wait:
                        wait = proposal_waits(study)  # a model-based proposal: all results
                        if not wait:
                            trial = ask(study, setup.space)
        if now.stop_reason is not None:
            return SearchOutcome(now.stop_reason, now.view.n_failed)
        if refine_from is not None:
            error = refiner.run(refine_from)
        elif wait:  # a refinement's step, its start or a model-based proposal waits for trials
            time.sleep(refiner.poll_s)
            continue
        elif trial is None:  # the budget is all asked: wait for the other workers
            time.sleep(poll_s)
            continue
        else:
            error, _ = run_trial(trial, study, setup, now.convergence, observer)
        if error is None:
            consecutive = 0
            continue
        consecutive += 1
        if consecutive >= setup.max_consecutive_failures:
            return SearchOutcome(
                f"aborted: {consecutive} consecutive failed trials (last: {error})",
                StudyView.of(study).n_failed,
            )
