"""The ask/tell loop: propose parameters, run the trial, log it, check convergence."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from gen_loop.embedder.base import Embedder
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.loop.report import trial_line
from gen_loop.loop.trial import TrialResult, evaluate_params
from gen_loop.score.scorer import Scorer
from gen_loop.search.convergence import Convergence
from gen_loop.search.space import SearchSpace
from gen_loop.search.study import from_objective, to_objective
from gen_loop.tracking.mlflow_tracker import Tracker
from gen_loop.tracking.plots import image_grid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOutcome:
    """How the search ended.

    Attributes:
        stop_reason: why it stopped.
        n_failed: failed trials (this session and earlier ones of a resumed study).
        interrupted: True when the user pressed Ctrl-C.
    """

    stop_reason: str
    n_failed: int
    interrupted: bool = False


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares."""

    generator: Generator
    embedder: Embedder
    scorer: Scorer
    base_params: Mapping[str, ParamValue]
    space: SearchSpace
    batch_size: int
    scene_seed: int
    trial_images: int
    max_consecutive_failures: int


def replay_history(study: optuna.Study, convergence: Convergence) -> int:
    """Feed a resumed study's finished trials to ``convergence``; fail and re-enqueue trials
    left running by a killed process. Returns the number of failed trials."""
    failed = 0
    for trial in study.trials:
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"role": "retry"})
            log.warning("trial %d was interrupted earlier: marked failed, re-queued", trial.number)
            failed += 1
        elif trial.state == TrialState.COMPLETE and trial.value is not None:
            convergence.update(trial.number, from_objective(trial.value))
        elif trial.state == TrialState.FAIL:
            failed += 1
            convergence.update(trial.number, None)
    return failed


def search(
    study: optuna.Study, setup: TrialSetup, convergence: Convergence, tracker: Tracker
) -> SearchOutcome:
    """Run trials until ``convergence`` says stop, logging each to MLflow and the console.

    A failing trial is recorded as failed with its error and the loop goes on, unless
    ``setup.max_consecutive_failures`` fail in a row (a broken generator, not a bad point).
    Ctrl-C fails the running trial and returns with ``interrupted`` set.
    """
    failed = replay_history(study, convergence)
    consecutive = 0
    start = time.monotonic()
    pending: optuna.Trial | None = None
    try:
        while (reason := convergence.stop_reason(time.monotonic() - start)) is None:
            pending = study.ask()
            error = _step(pending, study, setup, convergence, tracker)
            pending = None
            if error is None:
                consecutive = 0
                continue
            failed += 1
            consecutive += 1
            if consecutive >= setup.max_consecutive_failures:
                return SearchOutcome(
                    f"aborted: {consecutive} consecutive failed trials (last: {error})", failed
                )
    except KeyboardInterrupt:
        if pending is not None:
            study.tell(pending, state=TrialState.FAIL, skip_if_finished=True)
            failed += 1
        return SearchOutcome("interrupted by the user", failed, interrupted=True)
    return SearchOutcome(reason, failed)


def _step(
    trial: optuna.Trial,
    study: optuna.Study,
    setup: TrialSetup,
    convergence: Convergence,
    tracker: Tracker,
) -> str | None:
    """Run, tell, record and print one trial; return its error message if it failed."""
    params = {**setup.base_params, **setup.space.suggest(trial)}
    error: str | None = None
    try:
        result = _run_trial(trial, params, setup, tracker)
    except Exception as err:  # recorded as a failed trial; the loop goes on
        error = f"{type(err).__name__}: {err}"
        trial.set_user_attr("error", error[:2000])
        study.tell(trial, state=TrialState.FAIL)
        convergence.update(trial.number, None)
        distance = None
    else:
        distance = result.distance
        trial.set_user_attr("distance", distance)
        study.tell(trial, to_objective(distance))
        convergence.update(trial.number, distance)
        tracker.log_metrics(
            {"distance": distance, "best_distance": convergence.best}, step=trial.number
        )
    line = trial_line(
        trial.number,
        distance,
        convergence.best,
        convergence.best_trial,
        convergence.noise_floor,
        trial.params,
        error,
    )
    print(line, flush=True)
    return error


def _run_trial(
    trial: optuna.Trial, params: dict[str, ParamValue], setup: TrialSetup, tracker: Tracker
) -> TrialResult:
    with tracker.trial(trial.number, trial.params) as child:
        # An exception here marks the child run FAILED (KILLED on Ctrl-C) and propagates.
        result = evaluate_params(
            setup.generator,
            setup.embedder,
            setup.scorer,
            params,
            setup.batch_size,
            setup.scene_seed,
        )
        child.log_metrics({"distance": result.distance, **result.timings})
        if setup.trial_images > 0:
            k = min(setup.trial_images, len(result.batch))
            child.log_image(
                image_grid(
                    result.batch.images[:k], ncols=min(k, 4), boxes=result.batch.labels[:k]
                ),
                "samples.png",
            )
        for key, value in result.timings.items():
            trial.set_user_attr(key, value)
    return result
