"""The ask/tell loop: propose parameters, run the trial, log it, check convergence."""

from __future__ import annotations

import logging
import time
import uuid
import warnings
from collections.abc import Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import FrozenTrial, TrialState

from gen_loop.config.schema import RefineConfig
from gen_loop.embedder.base import Embedder
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.loop.report import trial_line
from gen_loop.loop.trial import TrialResult, evaluate_params, trial_scene_seed
from gen_loop.score.scorer import CentroidScorer, Scorer
from gen_loop.search.convergence import Convergence
from gen_loop.search.refine import STAGE_ATTR, Box, StopRefinement, refine_lsq
from gen_loop.search.space import SearchSpace
from gen_loop.search.storage import StudyMutex
from gen_loop.search.study import to_objective
from gen_loop.search.workers import WORKER_ATTR, StudyView, fail_dead_trials, worker_id
from gen_loop.tracking import Tracker, TrialRun
from gen_loop.tracking.plots import image_grid

if TYPE_CHECKING:
    from collections.abc import Sequence

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
    scene_seeds: str = "common"  # search.scene_seeds: common | fresh (see trial_scene_seed)
    refine: RefineConfig = field(default_factory=RefineConfig)  # search.refine


@dataclass
class _Running:
    """The trial this worker is running (failed on Ctrl-C), and whether it has refined."""

    trial: optuna.Trial | None = None
    refined: bool = False


def search(
    study: optuna.Study,
    setup: TrialSetup,
    convergence: Convergence,
    tracker: Tracker,
    mutex: StudyMutex | None = None,
    poll_s: float = 2.0,
) -> SearchOutcome:
    """Run trials until the shared study's convergence says stop, logging each to MLflow and
    the console.

    Several workers may run this on one study (``mutex`` shared through the storage): the
    budget and the stop rule are judged on the study, and a worker with nothing left to ask
    waits for the others' trials (or for a dead worker's trial to be re-enqueued). A failing
    trial is recorded as failed with its error and the loop goes on, unless
    ``setup.max_consecutive_failures`` fail in a row (a broken generator, not a bad point).
    Ctrl-C fails the running trial and returns with ``interrupted`` set.

    Each trial's sample grid is drawn, PNG-encoded and logged by a background thread while the
    next trial runs (it was the largest cost of a trial outside generate + embed, and the
    encoder releases the GIL: experiments/throughput/RESULTS.md); all are logged on return.

    With ``setup.refine.method == "lsq"`` the worker switches, once the study has
    ``setup.refine.after`` finished trials, to a least-squares refinement of the study's best
    trial (:func:`_refine`); its evaluations are trials like any other (user attribute and
    MLflow param ``stage=refine``). When it converges before the stop rule or the budget ends
    it, the sampler proposes the remaining trials. Each worker refines once per session, from
    the study's best at its own switch point; a resumed run past ``after`` refines again from
    the study's best.

    Args:
        study: the (possibly shared, possibly resumed) study.
        setup: what every trial shares.
        convergence: the stop rule; its state is rebuilt from the study before each trial.
        tracker: the MLflow parent run of this worker.
        mutex: the study's cross-worker lock (None: this process only).
        poll_s: how long a worker with no trial to ask waits before looking again.
    """
    mutex = mutex or StudyMutex("", study.study_name)
    for number in fail_dead_trials(study):
        log.warning("trial %d was interrupted earlier: marked failed, re-queued", number)
    consecutive = 0
    start = time.monotonic()
    running = _Running()
    grids = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gen_loop-grid")
    try:
        while True:
            refine_from: FrozenTrial | None = None
            with mutex.hold():
                fail_dead_trials(study)
                view = StudyView.of(study)
                shared = view.convergence(convergence)
                reason = shared.stop_reason(time.monotonic() - start)
                if reason is None and view.asked < convergence.n_trials:
                    refine_from = _refine_start(setup, view, running, study)
                    if refine_from is None:
                        running.trial = _ask(study)
            if reason is not None:
                return SearchOutcome(reason, view.n_failed)
            if refine_from is not None:
                running.refined = True
                error = _refine(
                    refine_from, study, setup, convergence, tracker, grids, mutex, running, start
                )
            elif running.trial is None:  # the budget is all asked: wait for the other workers
                time.sleep(poll_s)
                continue
            else:
                error, _ = _step(running.trial, study, setup, shared, tracker, grids)
            running.trial = None
            if error is None:
                consecutive = 0
                continue
            consecutive += 1
            if consecutive >= setup.max_consecutive_failures:
                return SearchOutcome(
                    f"aborted: {consecutive} consecutive failed trials (last: {error})",
                    StudyView.of(study).n_failed,
                )
    except KeyboardInterrupt:
        if running.trial is not None:
            study.tell(running.trial, state=TrialState.FAIL, skip_if_finished=True)
        return SearchOutcome(
            "interrupted by the user", StudyView.of(study).n_failed, interrupted=True
        )
    finally:
        grids.shutdown(wait=True)


def _ask(study: optuna.Study) -> optuna.Trial:
    """Ask a trial and record which process runs it (so a resume can tell it died)."""
    with warnings.catch_warnings():  # heartbeats are recorded by _step, not study.optimize
        warnings.filterwarnings("ignore", "Heartbeat of storage")
        trial = study.ask()
    trial.set_user_attr(WORKER_ATTR, worker_id())
    return trial


def _step(
    trial: optuna.Trial,
    study: optuna.Study,
    setup: TrialSetup,
    convergence: Convergence,
    tracker: Tracker,
    grids: Executor,
) -> tuple[str | None, TrialResult | None]:
    """Run, tell, record and print one trial; return its error message if it failed, else
    its result."""
    params = {**setup.base_params, **setup.space.suggest(trial)}
    error: str | None = None
    result: TrialResult | None = None
    try:
        with get_heartbeat_thread(trial._trial_id, study._storage):
            result = _run_trial(trial, params, setup, tracker, grids)
    except Exception as err:  # recorded as a failed trial; the loop goes on
        error = f"{type(err).__name__}: {err}"
        trial.set_user_attr("error", error[:2000])
        study.tell(trial, state=TrialState.FAIL)
        convergence.update(trial.number, None)
        distance = None
        result = None
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
    return error, result


def _run_trial(
    trial: optuna.Trial,
    params: dict[str, ParamValue],
    setup: TrialSetup,
    tracker: Tracker,
    grids: Executor,
) -> TrialResult:
    seed = trial_scene_seed(setup.scene_seeds, setup.scene_seed, trial.number)
    if setup.scene_seeds != "common":  # common: search.scene_seed, already in the run's params
        trial.set_user_attr("scene_seed", seed)
    stage = trial_stage(trial.user_attrs)
    trial.set_user_attr(STAGE_ATTR, stage)
    with tracker.trial(trial.number, trial.params) as child:
        child.log_params({STAGE_ATTR: stage})
        child.set_tags({"gen_loop.stage": stage})
        if setup.scene_seeds != "common":
            child.log_params({"scene_seed": seed})
        # An exception here marks the child run FAILED (KILLED on Ctrl-C) and propagates.
        result = evaluate_params(
            setup.generator,
            setup.embedder,
            setup.scorer,
            params,
            setup.batch_size,
            seed,
        )
        child.log_metrics({"distance": result.distance, **result.timings})
        if setup.trial_images > 0:
            k = min(setup.trial_images, len(result.batch))
            job = grids.submit(_log_grid, child, result.batch.images[:k], result.batch.labels[:k])
            job.add_done_callback(partial(_report_grid_error, trial.number))
        for key, value in result.timings.items():
            trial.set_user_attr(key, value)
    return result


def trial_stage(user_attrs: Mapping[str, object]) -> str:
    """What proposed a trial: ``refine``, ``start``/``prior`` (enqueued points) or ``sampler``."""
    stage = user_attrs.get(STAGE_ATTR) or user_attrs.get("role") or "sampler"
    return str(stage)


def _refine_start(
    setup: TrialSetup, view: StudyView, running: _Running, study: optuna.Study
) -> FrozenTrial | None:
    """The study's best trial when this worker should switch to refining now, else None.

    Enqueued trials (priors, a dead worker's re-queued trial) are run first: one of them may
    be the best start.
    """
    refine = setup.refine
    if refine.method == "none" or running.refined or len(view.finished) < refine.after:
        return None
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return None
    done = [t for t in view.finished if t.state == TrialState.COMPLETE and t.value is not None]
    if not done:
        return None
    if not isinstance(setup.scorer, CentroidScorer) or setup.scorer.metric == "cosine":
        # auto: only where the metric allows it (lsq with another metric is a config error)
        log.info("search.refine: %r has no residual vector; not refining", setup.scorer)
        running.refined = True
        return None
    return min(done, key=lambda t: t.value)  # type: ignore[arg-type,return-value]


def _refine(
    best: FrozenTrial,
    study: optuna.Study,
    setup: TrialSetup,
    convergence: Convergence,
    tracker: Tracker,
    grids: Executor,
    mutex: StudyMutex,
    running: _Running,
    start: float,
) -> str | None:
    """Least squares from ``best``, every evaluation a trial of the study; return the error of
    a failed trial that ended it (None otherwise).

    Each evaluation enqueues its point (user attribute ``stage=refine``) and asks it under the
    study mutex, then runs it with :func:`_step` outside the mutex, exactly like a sampler
    trial. The stop rule and the budget are judged on the study before each evaluation; when
    they say stop, or a trial fails, the refinement ends (:class:`StopRefinement`) and the main
    loop takes over. A trial re-queued for a dead worker that is asked first is run as it is.
    """
    assert isinstance(setup.scorer, CentroidScorer)
    scorer = setup.scorer
    box = Box.of(setup.space.distributions, set(setup.space.conditions))
    failure: list[str] = []

    def evaluate(params: dict[str, ParamValue]) -> np.ndarray:
        token = uuid.uuid4().hex
        enqueued = False
        while True:
            with mutex.hold():
                fail_dead_trials(study)
                view = StudyView.of(study)
                shared = view.convergence(convergence)
                reason = shared.stop_reason(time.monotonic() - start)
                if reason is not None:
                    raise StopRefinement(reason)
                if view.asked >= convergence.n_trials:
                    raise StopRefinement("the trial budget is all asked")
                if not enqueued:
                    attrs = {STAGE_ATTR: "refine", "refine_id": token}
                    study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
                    enqueued = True
                running.trial = _ask(study)
            trial = running.trial
            error, result = _step(trial, study, setup, shared, tracker, grids)
            running.trial = None
            if trial.user_attrs.get("refine_id") != token:
                continue  # a re-queued trial came first; ours is still waiting
            if error is not None or result is None:
                failure.append(error or "no result")
                raise StopRefinement(f"trial {trial.number} failed")
            return scorer.residual(result.embeddings)

    start_distance = float(best.user_attrs.get("distance", float("nan")))
    print(
        f"refining trial {best.number} (distance {start_distance:.4g}) by least squares over "
        f"{list(box.names)}",
        flush=True,
    )
    why = refine_lsq(best.params, box, setup.refine.diff_step, evaluate)
    print(f"refinement ended: {why}", flush=True)
    return failure[0] if failure else None


def _log_grid(child: TrialRun, images: np.ndarray, labels: Sequence[np.ndarray]) -> None:
    """Draw and log a trial's sample grid (runs on the background thread)."""
    child.log_image(image_grid(images, ncols=min(len(images), 4), boxes=labels), "samples.png")


def _report_grid_error(number: int, job: Future[None]) -> None:
    error = job.exception()
    if error is not None:  # store failures are counted by the tracker; this is anything else
        log.warning(
            "trial %d: sample grid not logged: %s: %s", number, type(error).__name__, error
        )
