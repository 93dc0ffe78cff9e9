"""The least-squares refinement stage of the search, driven trial by trial.

The maths are in :mod:`gen_loop.search.refine` (scipy's bounded least squares on the
scorer's residual vector); this module runs each point it asks for as a real trial of the
study, so the stop rule, the budget, resume and several workers apply to it exactly as to
the sampler's trials. The stop rule is judged by the same
:func:`~gen_loop.search.workers.decide` as the sampler's loop.

With several workers on one study, one of them owns the refinement
(:mod:`gen_loop.search.refine_claim`): the others run the points of its finite-difference
Jacobians with it and wait while it takes its one-trial steps, so two workers spend no more
trials on a refinement than one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from gen_loop.generator.params import ParamValue
from gen_loop.loop.observer import LoopObserver
from gen_loop.loop.trial import TrialSetup, ask, run_trial
from gen_loop.search import basins, refine_claim
from gen_loop.search.basins import Basins
from gen_loop.search.convergence import Convergence
from gen_loop.search.refine import (
    Box,
    StopRefinement,
    refine_gauss_newton,
    refine_lsq,
)
from gen_loop.search.refine_claim import Claim
from gen_loop.search.storage import StudyMutex
from gen_loop.search.vector_sampler import RESIDUAL_ATTR
from gen_loop.search.workers import StudyView, decide

log = logging.getLogger(__name__)


@dataclass
class Refiner:
    """When to switch to the local refinement, and the refinement itself.

    After ``search.refine.after`` finished trials, a worker claims the refinement from the
    study's best (one worker at a time: :func:`~gen_loop.search.refine_claim.take_over`) and
    runs it; the other workers help it (:meth:`help`). When the refinement ends at a minimum
    (or on a failed trial) before the stop rule or the budget ends the search, its start and
    its trials are recorded as spent: the sampler proposes the next trials, and once one of
    them is the study's new best (another basin), a worker refines again from there. A
    refinement cut by the stop rule, the budget or Ctrl-C is not spent: a resumed run with a
    larger budget refines again from the study's best.

    A refinement stuck far above the noise floor (``search.refine.restart``) ends there and
    its trials become a left basin (:mod:`gen_loop.search.basins`): the sampler proposes
    ``restart.samples`` trials outside every left basin, and then a worker refines from the
    best trial outside them, even when the study's best is inside one.

    Args:
        study: the shared study.
        setup: what every trial shares (``setup.refine`` holds the settings).
        convergence: the stop rule.
        observer: told of every trial and of the stage's start and end.
        mutex: the study's cross-worker lock.
        start: ``time.monotonic()`` when the search started (for ``search.timeout_s``).
        poll_s: how long a worker waits before it looks at the refinement again.
    """

    study: optuna.Study
    setup: TrialSetup
    convergence: Convergence
    observer: LoopObserver
    mutex: StudyMutex
    start: float
    poll_s: float = 0.25
    done: bool = field(init=False)
    claim: Claim | None = field(default=None, init=False)  # the refinement this worker owns
    _helped: str | None = field(default=None, init=False)  # the last one it said it helps
    _cut: bool = field(default=False, init=False)  # ended by the stop rule or the budget
    _left: bool = field(default=False, init=False)  # ended in a wrong basin
    _start_distance: float = field(default=float("nan"), init=False)

    def __post_init__(self) -> None:
        self.done = self.setup.refine.method == "none"

    def start_point(self, view: StudyView) -> tuple[FrozenTrial | None, bool]:
        """Whether this worker switches to refining now: ``(best, False)`` with the study's
        best trial once it has claimed the refinement from it, ``(None, True)`` to wait for
        the other workers' running trials first (one of them may be the better start), and
        ``(None, False)`` to go on sampling.

        Enqueued trials (priors, a dead worker's re-queued trial) are run first: one of them
        may be the best start. Once ``refine.after`` trials are finished or running, no more
        sampler trials are asked: several workers then refine after as many sampler trials
        as one worker would (not after one more a worker, each asked while the last were
        still running). Call under the study mutex.
        """
        after = self.setup.refine.after
        if self.done or len(view.finished) + view.running < after:
            return None, False
        if not self.setup.scorer.has_residual:
            # auto: only where the metric allows it (lsq with another metric is a config error)
            log.info("search.refine: %r has no residual vector; not refining", self.setup.scorer)
            self.done = True
            return None, False
        if self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return None, False
        if len(view.finished) < after:
            return None, True  # the last sampler trials are running: wait for them
        done = [t for t in view.finished if t.state == TrialState.COMPLETE and t.value is not None]
        left = Basins.of(self.study)
        if left.trials:
            if len(self._searched_since(view, left)) < self.setup.refine.restart.samples:
                return None, False  # the sampler looks outside the left basins first
            done = self._outside(done, view, left)
        if not done:
            return None, False
        best = min(done, key=lambda t: t.value)  # type: ignore[arg-type,return-value]
        if best.number in refine_claim.spent_trials(self.study):
            return None, False  # refined already: a sampler trial must find a new best first
        if view.running > 0:
            return None, True
        self.claim = refine_claim.take_over(self.study, best.number)
        return (None, False) if self.claim is None else (best, False)

    def help(self) -> tuple[optuna.Trial | None, bool]:
        """Another worker's refinement: a trial of it to run now, or whether to wait for it.

        Returns ``(trial, False)`` with a point of its Jacobian (or a waiting trial) asked for
        this worker, ``(None, True)`` while it takes a step only its owner runs, and
        ``(None, False)`` when no other worker is refining. Call under the study mutex.
        """
        claim = refine_claim.current(self.study)
        if claim is None or (self.claim is not None and claim.token == self.claim.token):
            return None, False
        if claim.token != self._helped:
            self._helped = claim.token
            self.observer.on_refine(
                f"helping the refinement of trial {claim.start} "
                f"(worker {claim.owner.get('host')}:{claim.owner.get('pid')})"
            )
        queued = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if refine_claim.enqueue_next(self.study, claim) is not None or queued:
            return ask(self.study, self.setup.space), False
        return None, True

    def run(self, best: FrozenTrial) -> str | None:
        """Refine from ``best`` (claimed by :meth:`start_point`), every evaluation a trial of
        the study; return the error of a failed trial that ended it (None otherwise).

        When the stop rule or the budget says stop, or a trial fails, the refinement ends
        (:class:`StopRefinement`) and the main loop takes over. A trial re-queued for a dead
        worker that is asked first is run as it is. The claim is released however it ends.
        """
        box = Box.of_space(self.setup.space)
        failure: list[str] = []
        start_distance = float(best.user_attrs.get("distance", float("nan")))
        self._start_distance = start_distance
        lsq = self.setup.refine.method == "lsq"
        self.observer.on_refine(
            f"refining trial {best.number} (distance {start_distance:.4g}) by "
            f"{'least squares' if lsq else 'Gauss-Newton'} over {list(box.names)}"
        )

        def evaluate_many(points: list[dict[str, ParamValue]]) -> list[np.ndarray]:
            residuals, failed = self._evaluate_many(points)
            if failed is not None:
                number, error = failed
                failure.append(error)
                raise StopRefinement(f"trial {number} failed")
            return residuals

        def evaluate(params: dict[str, ParamValue]) -> np.ndarray:
            return evaluate_many([params])[0]

        self._cut = self._left = False
        try:
            step = self.setup.refine.diff_step
            if lsq:
                why = refine_lsq(best.params, box, step, evaluate)
            else:  # gn, and auto with a scorer that has a residual vector
                stored = best.user_attrs.get(RESIDUAL_ATTR)
                residual = None if stored is None else np.asarray(stored, dtype=np.float64)
                why = refine_gauss_newton(
                    best.params,
                    residual,
                    box,
                    step,
                    evaluate,
                    evaluate_many=evaluate_many,
                    regrow=self.setup.refine.regrow,
                    correct=self.setup.refine.correct,
                )
        finally:
            with self.mutex.hold():
                if self.claim is not None:
                    if self._left:
                        self._leave_basin(self.claim)
                    refine_claim.release(self.study, self.claim, spent=not self._cut)
            self.claim = None
        self.observer.on_refine(f"refinement ended: {why}")
        return failure[0] if failure else None

    def _evaluate_many(
        self, points: list[dict[str, ParamValue]]
    ) -> tuple[list[np.ndarray], tuple[int, str] | None]:
        """Run ``points`` as trials of the study, this worker and any helping worker taking
        them one by one: their residuals in order, or the number and error of the first that
        failed.

        Raises:
            StopRefinement: the stop rule or the budget ends the search first.
        """
        assert self.claim is not None
        with self.mutex.hold():
            n_finished = len(StudyView.of(self.study).finished)
            self.claim = refine_claim.post(self.study, self.claim, points, n_finished)
        keys = [key for key, _ in self.claim.pending[-len(points) :]]
        while True:
            trial: optuna.Trial | None = None
            with self.mutex.hold():
                now = decide(
                    self.study,
                    self.convergence,
                    time.monotonic() - self.start,
                    refine_claim.plateau_held(self.study),
                )
                finished = refine_claim.results(self.study, self.claim.token)
                if all(key in finished for key in keys):
                    return self._collect(keys, finished)
                if now.stop_reason is not None:
                    self._cut = True
                    raise StopRefinement(now.stop_reason)
                if not now.budget_left:
                    self._cut = True
                    raise StopRefinement("the trial budget is all asked")
                if (why := self._wrong_basin(now.convergence)) is not None:
                    self._left = True
                    raise StopRefinement(why)
                claim = refine_claim.current(self.study) or self.claim
                queued = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                if refine_claim.enqueue_next(self.study, claim) is not None or queued:
                    trial = ask(self.study, self.setup.space)
                self.claim = refine_claim.beat(self.study, claim)  # reads the claim afresh
            if trial is None:  # a helping worker runs the last of them: wait for it
                time.sleep(self.poll_s)
                continue
            run_trial(trial, self.study, self.setup, now.convergence, self.observer)

    def _wrong_basin(self, convergence: Convergence) -> str | None:
        """Why this refinement is in a wrong basin (``search.refine.restart``), or None: its
        own best is above ``restart.above`` x the noise floor and has not fallen by
        ``search.min_rel_improvement`` in its last ``restart.stall`` trials, and in at least
        a Jacobian and two steps (P + 2 trials, P refined parameters: a Jacobian's own points
        never gain). Never with a floor too uncertain to stop at. Call under the study
        mutex."""
        restart = self.setup.refine.restart
        if restart.above <= 0 or not convergence.stop_at_floor or self.claim is None:
            return None
        stall = max(restart.stall, len(Box.of_space(self.setup.space).names) + 2)
        ran = sorted(
            refine_claim.results(self.study, self.claim.token).values(), key=lambda t: t.number
        )
        distances = [float(t.user_attrs.get("distance", float("nan"))) for t in ran]
        since = basins.stalled_for(
            self._start_distance, distances, convergence.min_rel_improvement
        )
        best = basins.own_best(self._start_distance, distances)
        ratio = best / convergence.noise_floor if convergence.noise_floor > 0 else float("inf")
        if since < stall or ratio <= restart.above:
            return None
        return (
            f"a wrong basin: {ratio:.3g} x the noise floor, no "
            f"{convergence.min_rel_improvement:.0%} gain in {since} trials; searching outside it"
        )

    def _leave_basin(self, claim: Claim) -> None:
        """Record the refinement ``claim`` (its start and its trials) as a left basin and hold
        the plateau rule for ``restart.window`` trials: once per real gain, so a target no
        basin fits still stops on a plateau (a basin left again before the study's best fell
        by ``search.min_rel_improvement`` holds nothing). Call under the study mutex."""
        restart = self.setup.refine.restart
        trials = self.study.get_trials(deepcopy=False)
        before = Basins.of(self.study)
        ran = refine_claim.trials_of(trials, claim.token) | {claim.start}
        n_finished = sum(t.state.is_finished() for t in trials)
        scored = [t for t in trials if t.number in ran and "distance" in t.user_attrs]
        best = min(scored, key=lambda t: float(t.user_attrs["distance"]))
        entry = {
            "start": claim.start,
            "best_trial": best.number,
            "distance": float(best.user_attrs["distance"]),
        }
        gained = not before.left or basins.gained_after(
            trials, before.left_at, self.convergence.min_rel_improvement
        )
        left = basins.leave(
            self.study,
            entry,
            ran,
            restart.radius,
            held_until=n_finished + restart.window if gained else 0,
            left_at=max(t.number for t in trials),
        )
        self.observer.on_refine(
            f"left the basin of trial {claim.start} ({len(ran)} trials; {len(left.trials)} in "
            f"left basins): the next {restart.samples} trials are proposed at least "
            f"{restart.radius:g} of the unit cube from them and from each other"
        )

    def _searched_since(self, view: StudyView, left: Basins) -> list[FrozenTrial]:
        """The sampler's finished trials since the latest basin was left."""
        return [t for t in view.finished if left.searched_after(t)]

    def _outside(
        self, done: list[FrozenTrial], view: StudyView, left: Basins
    ) -> list[FrozenTrial]:
        """The trials of ``done`` outside every left basin."""
        box = Box.of_space(self.setup.space)
        if not box.names:
            return done
        points = left.points(view.finished, box)
        mine = [t for t in done if set(box.names) <= set(t.params)]
        unit = np.array([box.to_unit(t.params) for t in mine]).reshape(-1, len(box.names))
        keep = basins.outside(unit, points, left.radius)
        return [t for t, ok in zip(mine, keep, strict=True) if ok]

    @staticmethod
    def _collect(
        keys: list[str], finished: dict[str, FrozenTrial]
    ) -> tuple[list[np.ndarray], tuple[int, str] | None]:
        """The residuals of ``keys`` in order, as the study stores them whichever worker
        measured them (so N workers take the steps one worker takes), or the number and error
        of the first failed one."""
        residuals = []
        for key in keys:
            trial = finished[key]
            if trial.state != TrialState.COMPLETE:
                return [], (trial.number, str(trial.user_attrs.get("error", "no result")))
            residuals.append(np.asarray(trial.user_attrs[RESIDUAL_ATTR], dtype=np.float64))
        return residuals, None
