"""After the search: one Gauss-Newton step from the best camera, on a Jacobian measured there.

The refinement's Jacobian is measured once, at its start, and follows the search by Broyden
updates, which correct it only along the steps taken: in a direction the steps never took
(vignetting behind exposure, in the default embedding) it stays what it was several steps
back. At the stop, the search's best trial therefore still lies some way from the minimum that
a Jacobian measured at the best itself points to. On 21 hidden cameras x 3 search seeds, the
step on that Jacobian lowered the best in 63 of 63 runs (median 1.19x -> 0.65x the floor) and
brought all five identifiable parameters within 3 % of their range in 47 runs instead of 14
(experiments/recovery/UNCERTAINTY.md). So when the search ends converged or on a
plateau, one worker measures that Jacobian (one batch render a refined parameter, not trials)
and runs the bounded Gauss-Newton step from it as one more trial of the study
(``stage=polish``), within the trial budget; it becomes the best if it scores lower. The same
Jacobian gives the parameters' uncertainty (:mod:`gen_loop.loop.camera_uncertainty`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from gen_loop.loop.observer import LoopObserver
from gen_loop.loop.trial import TrialSetup, ask, residual_at, run_trial
from gen_loop.search.convergence import Convergence
from gen_loop.search.refine import STAGE_ATTR, Box, forward_jacobian
from gen_loop.search.storage import StudyMutex
from gen_loop.search.study import from_objective
from gen_loop.search.vector_sampler import RESIDUAL_ATTR
from gen_loop.search.workers import decide, worker_id

log = logging.getLogger(__name__)

#: The stage of the polish trial.
POLISH_STAGE = "polish"
#: The study's user attribute naming the worker that took the polish (one per study).
POLISH_ATTR = "polish"
#: The stop reasons after which the search is polished (a trial or time budget is respected,
#: an aborted or interrupted search is left as it is).
POLISHED_STOPS = ("converged", "plateau")


@dataclass(frozen=True)
class MeasuredJacobian:
    """A forward-difference Jacobian of the residual measured at one trial's camera.

    Attributes:
        trial: the trial it was measured at.
        box: the parameters it is over (unit cube).
        matrix: D x P.
        point: the trial's camera in ``box``'s unit cube.
        residual: the trial's residual there (D).
    """

    trial: int
    box: Box
    matrix: np.ndarray
    point: np.ndarray
    residual: np.ndarray


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The completed trial of the lowest distance."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return min(done, key=lambda t: float(t.value), default=None)  # type: ignore[arg-type]


def residual_of_best(setup: TrialSetup, trial: FrozenTrial) -> np.ndarray:
    """``trial``'s residual at the run's scenes: stored, or rendered again when each trial
    renders scenes of its own (``search.scene_seeds=fresh``)."""
    stored = trial.user_attrs.get(RESIDUAL_ATTR)
    if stored is None or setup.scene_seeds != "common":
        return residual_at(setup, {**setup.base_params, **trial.params})
    return np.asarray(stored, dtype=np.float64)


def measure_jacobian(setup: TrialSetup, trial: FrozenTrial, box: Box) -> MeasuredJacobian:
    """The forward-difference Jacobian at ``trial``'s camera (``search.refine.diff_step``):
    one batch render a parameter of ``box``."""
    params = {**setup.base_params, **trial.params}

    def at_units(points: list[np.ndarray]) -> list[np.ndarray]:
        return [residual_at(setup, {**params, **box.from_unit(u)}) for u in points]

    point, residual = box.to_unit(params), residual_of_best(setup, trial)
    matrix = forward_jacobian(at_units, point, residual, setup.refine.diff_step)
    return MeasuredJacobian(trial.number, box, matrix, point, residual)


def polish(
    study: optuna.Study,
    setup: TrialSetup,
    convergence: Convergence,
    observer: LoopObserver,
    mutex: StudyMutex,
    stop_reason: str,
) -> MeasuredJacobian | None:
    """Run the polish trial (see the module docstring) and return the Jacobian it measured;
    None when there is none to run: another stop, no residual vector, nothing continuous, no
    budget left, another worker's polish, or a resumed polish trial (run here, its Jacobian
    lost with the run that measured it).

    Raises:
        KeyboardInterrupt: after re-queueing the polish trial (the next run runs it).
    """
    if not stop_reason.startswith(POLISHED_STOPS) or not setup.scorer.has_residual:
        return None
    box = Box.of_space(setup.space)
    if not box.names:
        return None
    with mutex.hold():
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        resumed = [t for t in waiting if t.user_attrs.get(STAGE_ATTR) == POLISH_STAGE]
        now = decide(study, convergence, 0.0)
        if resumed:  # interrupted last time: run it (the enqueued trial is asked first)
            trial = ask(study)
        elif waiting or POLISH_ATTR in study.user_attrs or not now.budget_left:
            return None
        else:
            study.set_user_attr(POLISH_ATTR, worker_id())
            start = best_trial(study)
    if resumed:
        run_trial(trial, study, setup, now.convergence, observer)
        return None
    if start is None:
        return None
    from scipy.optimize import lsq_linear

    jacobian = measure_jacobian(setup, start, box)
    u0 = jacobian.point
    step = lsq_linear(jacobian.matrix, -jacobian.residual, bounds=(-u0, 1.0 - u0)).x
    if not np.any(np.abs(step) > 1e-9):
        observer.on_refine(
            f"polish: the Jacobian measured at trial {start.number} ({len(box.names)} renders) "
            "puts the minimum there: no step to try"
        )
        return jacobian
    with mutex.hold():
        study.enqueue_trial(
            {**start.params, **box.from_unit(u0 + step)}, user_attrs={STAGE_ATTR: POLISH_STAGE}
        )
        trial = ask(study)
        now = decide(study, convergence, 0.0)
    error, result = run_trial(trial, study, setup, now.convergence, observer)
    before = from_objective(float(start.value))  # type: ignore[arg-type]
    if result is None:
        outcome = f"failed ({error})"
    elif result.distance < before:
        outcome = f"{result.distance:.3f}, the new best (was {before:.3f})"
    else:
        outcome = f"{result.distance:.3f}, not below the best {before:.3f}"
    observer.on_refine(
        f"polish: Gauss-Newton step on the Jacobian measured at trial {start.number} "
        f"({len(box.names)} renders, step {float(np.max(np.abs(step))):.3f} of a range at "
        f"most): trial {trial.number} scored {outcome}"
    )
    return jacobian
