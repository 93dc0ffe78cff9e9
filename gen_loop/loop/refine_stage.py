"""The least-squares refinement stage of the search, driven trial by trial.

The maths are in :mod:`gen_loop.search.refine` (scipy's bounded least squares on the
scorer's residual vector); this module runs each point it asks for as a real trial of the
study, so the stop rule, the budget, resume and several workers apply to it exactly as to
the sampler's trials. The stop rule is judged by the same
:func:`~gen_loop.search.workers.decide` as the sampler's loop.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from gen_loop.generator.params import ParamValue
from gen_loop.loop.observer import LoopObserver
from gen_loop.loop.trial import TrialSetup, ask, run_trial
from gen_loop.search.convergence import Convergence
from gen_loop.search.refine import (
    STAGE_ATTR,
    Box,
    StopRefinement,
    refine_gauss_newton,
    refine_lsq,
)
from gen_loop.search.storage import StudyMutex
from gen_loop.search.vector_sampler import RESIDUAL_ATTR
from gen_loop.search.workers import StudyView, decide

log = logging.getLogger(__name__)


@dataclass
class Refiner:
    """When to switch to the local refinement, and the refinement itself.

    After ``search.refine.after`` finished trials, a worker refines from the study's best.
    When the refinement ends at a minimum before the stop rule or the budget ends the search,
    the sampler proposes the next trials, and once one of them is the study's new best (another
    basin), the worker refines again from there. A resumed run refines again from the study's
    best.

    Args:
        study: the shared study.
        setup: what every trial shares (``setup.refine`` holds the settings).
        convergence: the stop rule.
        observer: told of every trial and of the stage's start and end.
        mutex: the study's cross-worker lock.
        start: ``time.monotonic()`` when the search started (for ``search.timeout_s``).
    """

    study: optuna.Study
    setup: TrialSetup
    convergence: Convergence
    observer: LoopObserver
    mutex: StudyMutex
    start: float
    done: bool = field(init=False)
    # This session's refinements: the trials refined from, and the trials they ran.
    refined_from: set[int] = field(default_factory=set)
    refined: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.done = self.setup.refine.method == "none"

    def start_point(self, view: StudyView) -> FrozenTrial | None:
        """The study's best trial when this worker should switch to refining now, else None.

        Enqueued trials (priors, a dead worker's re-queued trial) are run first: one of them
        may be the best start. Call under the study mutex.
        """
        if self.done or len(view.finished) < self.setup.refine.after:
            return None
        if self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return None
        done = [t for t in view.finished if t.state == TrialState.COMPLETE and t.value is not None]
        if not done:
            return None
        if not self.setup.scorer.has_residual:
            # auto: only where the metric allows it (lsq with another metric is a config error)
            log.info("search.refine: %r has no residual vector; not refining", self.setup.scorer)
            self.done = True
            return None
        best = min(done, key=lambda t: t.value)  # type: ignore[arg-type,return-value]
        if best.number in self.refined_from | self.refined:
            return None  # refined already: a sampler trial must find a new best first
        return best

    def run(self, best: FrozenTrial) -> str | None:
        """Least squares from ``best``, every evaluation a trial of the study; return the error
        of a failed trial that ended it (None otherwise).

        Each evaluation enqueues its point (user attribute ``stage=refine``) and asks it under
        the study mutex, then runs it outside the mutex like a sampler trial. When the stop
        rule or the budget says stop, or a trial fails, the refinement ends
        (:class:`StopRefinement`) and the main loop takes over. A trial re-queued for a dead
        worker that is asked first is run as it is.
        """
        self.refined_from.add(best.number)
        box = Box.of(self.setup.space.distributions, set(self.setup.space.conditions))
        failure: list[str] = []
        start_distance = float(best.user_attrs.get("distance", float("nan")))
        lsq = self.setup.refine.method == "lsq"
        self.observer.on_refine(
            f"refining trial {best.number} (distance {start_distance:.4g}) by "
            f"{'least squares' if lsq else 'Gauss-Newton'} over {list(box.names)}"
        )

        def evaluate(params: dict[str, ParamValue]) -> np.ndarray:
            number, error, residual = self._evaluate(params)
            if error is not None:
                failure.append(error)
                raise StopRefinement(f"trial {number} failed")
            return residual

        step = self.setup.refine.diff_step
        if lsq:
            why = refine_lsq(best.params, box, step, evaluate)
        else:  # gn, and auto with a scorer that has a residual vector
            stored = best.user_attrs.get(RESIDUAL_ATTR)
            residual = None if stored is None else np.asarray(stored, dtype=np.float64)
            why = refine_gauss_newton(best.params, residual, box, step, evaluate)
        self.observer.on_refine(f"refinement ended: {why}")
        return failure[0] if failure else None

    def _evaluate(self, params: dict[str, ParamValue]) -> tuple[int, str | None, np.ndarray]:
        """Run ``params`` as a trial of the study: its number, its error or its residual."""
        token = uuid.uuid4().hex
        enqueued = False
        while True:
            with self.mutex.hold():
                now = decide(self.study, self.convergence, time.monotonic() - self.start)
                if now.stop_reason is not None:
                    raise StopRefinement(now.stop_reason)
                if not now.budget_left:
                    raise StopRefinement("the trial budget is all asked")
                if not enqueued:
                    attrs = {STAGE_ATTR: "refine", "refine_id": token}
                    self.study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
                    enqueued = True
                trial = ask(self.study)
            error, result = run_trial(
                trial, self.study, self.setup, now.convergence, self.observer
            )
            self.refined.add(trial.number)
            if trial.user_attrs.get("refine_id") != token:
                continue  # a re-queued trial came first; ours is still waiting
            if error is not None or result is None:
                return trial.number, error or "no result", np.empty(0)
            return trial.number, None, self.setup.scorer.residual(result.embeddings)
