"""The ask/tell loop: propose parameters, run the trial, log it, check convergence."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from gen_loop.embedder.base import Embedder
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.loop.report import trial_line
from gen_loop.loop.trial import TrialResult, evaluate_params
from gen_loop.score.scorer import Scorer
from gen_loop.search.convergence import Convergence
from gen_loop.tracking.mlflow_tracker import Tracker
from gen_loop.tracking.plots import image_grid

log = logging.getLogger(__name__)


@dataclass
class SearchOutcome:
    """How the search ended.

    Attributes:
        stop_reason: why it stopped.
        n_failed: failed trials (this session and earlier ones of a resumed study).
        best_result: the best trial's result of this session, if the best ran in it.
        interrupted: True when the user pressed Ctrl-C.
    """

    stop_reason: str
    n_failed: int
    best_result: TrialResult | None
    interrupted: bool = False


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares."""

    generator: Generator
    embedder: Embedder
    scorer: Scorer
    base_params: Mapping[str, ParamValue]
    space: Mapping[str, BaseDistribution]
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
        elif trial.state == TrialState.COMPLETE:
            convergence.update(trial.number, trial.value)
        elif trial.state == TrialState.FAIL:
            failed += 1
            convergence.update(trial.number, None)
    return failed


def search(
    study: optuna.Study, setup: TrialSetup, convergence: Convergence, tracker: Tracker
) -> SearchOutcome:
    """Run trials until ``convergence`` says stop, logging each to MLflow and the console."""
    failed = replay_history(study, convergence)
    best_result: TrialResult | None = None
    consecutive_failures = 0
    start = time.monotonic()
    reason = convergence.stop_reason(0.0)
    while reason is None:
        trial = study.ask(dict(setup.space))
        params = {**setup.base_params, **trial.params}
        try:
            result = _run_trial(trial, params, setup, tracker)
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            return SearchOutcome("interrupted by the user", failed + 1, best_result, True)
        except Exception as err:  # a failed trial is recorded and the loop goes on
            failed += 1
            consecutive_failures += 1
            message = f"{type(err).__name__}: {err}"
            trial.set_user_attr("error", message[:2000])
            study.tell(trial, state=TrialState.FAIL)
            convergence.update(trial.number, None)
            print(
                trial_line(
                    trial.number,
                    None,
                    convergence.best,
                    convergence.best_trial,
                    convergence.noise_floor,
                    trial.params,
                    message,
                ),
                flush=True,
            )
            if consecutive_failures >= setup.max_consecutive_failures:
                return SearchOutcome(
                    f"aborted: {consecutive_failures} consecutive failed trials (last: {message})",
                    failed,
                    best_result,
                )
            reason = convergence.stop_reason(time.monotonic() - start)
            continue
        consecutive_failures = 0
        study.tell(trial, result.distance)
        convergence.update(trial.number, result.distance)
        if convergence.best_trial == trial.number:
            best_result = result
        tracker.log_metrics(
            {"distance": result.distance, "best_distance": convergence.best}, step=trial.number
        )
        print(
            trial_line(
                trial.number,
                result.distance,
                convergence.best,
                convergence.best_trial,
                convergence.noise_floor,
                trial.params,
            ),
            flush=True,
        )
        reason = convergence.stop_reason(time.monotonic() - start)
    return SearchOutcome(reason, failed, best_result)


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
