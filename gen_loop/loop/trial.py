"""One trial: render a batch with the proposed parameters, embed it, score it, tell the study.

:func:`evaluate_params` is the measurement alone (experiments call it); :func:`run_trial`
runs an asked Optuna trial through it and tells the study and the loop's observer.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import TrialState

from gen_loop.config.choices import SceneSeeds
from gen_loop.config.schema import RefineConfig
from gen_loop.embedder.base import Embedder
from gen_loop.generator.base import Batch, Generator
from gen_loop.generator.params import ParamValue
from gen_loop.loop.analysis_stage import CENTROID_ATTR, stored_centroid
from gen_loop.loop.observer import LoopObserver, TrialEnd, TrialStart
from gen_loop.score.scorer import Scorer
from gen_loop.search.convergence import Convergence
from gen_loop.search.refine import STAGE_ATTR
from gen_loop.search.space import SearchSpace
from gen_loop.search.study import to_objective
from gen_loop.search.vector_sampler import RESIDUAL_ATTR, stored_residual
from gen_loop.search.workers import WORKER_ATTR, requeue, worker_id

#: ``search.scene_seeds``: ``common`` renders every trial from ``search.scene_seed`` (common
#: random numbers); ``fresh`` gives each trial its own scenes, derived from the trial number.
SCENE_SEED_MODES = tuple(m.value for m in SceneSeeds)

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrialSetup:
    """What every trial shares (``search.*`` and ``tracking.trial_images`` of the config)."""

    generator: Generator
    embedder: Embedder
    scorer: Scorer
    base_params: Mapping[str, ParamValue]
    space: SearchSpace
    batch_size: int
    scene_seed: int = 0
    max_consecutive_failures: int = 5
    scene_seeds: str = "common"  # search.scene_seeds: common | fresh (see trial_scene_seed)
    refine: RefineConfig = field(default_factory=RefineConfig)  # search.refine


@dataclass(frozen=True)
class TrialResult:
    """What a trial measured.

    Attributes:
        distance: the batch's distance to the target.
        batch: the rendered batch.
        embeddings: its embeddings.
        timings: seconds spent in generate, embed and score.
    """

    distance: float
    batch: Batch
    embeddings: np.ndarray
    timings: dict[str, float]


def trial_scene_seed(mode: str, scene_seed: int, trial_number: int) -> int:
    """The scene seed a trial renders from.

    Args:
        mode: ``common`` (every trial renders ``scene_seed``) or ``fresh`` (a seed derived from
            ``(scene_seed, trial_number)``: other scenes in every trial, reproducible).
        scene_seed: ``search.scene_seed``.
        trial_number: the Optuna trial number.

    Raises:
        ValueError: for an unknown ``mode`` (naming ``search.scene_seeds``).
    """
    if mode == "common":
        return scene_seed
    if mode == "fresh":
        # A third word keeps these apart from the per-image seeds SeedSequence([seed, i]).
        return int(np.random.SeedSequence([scene_seed, trial_number, 1]).generate_state(1)[0])
    raise ValueError(f"search.scene_seeds must be one of {SCENE_SEED_MODES}, got {mode!r}")


def evaluate_params(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    params: Mapping[str, ParamValue],
    n: int,
    seed: int,
) -> TrialResult:
    """Render ``n`` images from the scene seed ``seed`` with ``params`` and score them.

    By default every trial passes the same ``seed`` (common random numbers): only the camera
    differs between trials, so scene content does not drown the signal (see
    :func:`trial_scene_seed` and ``search.scene_seeds``).
    """
    t0 = time.perf_counter()
    batch = generator.generate(params, n, seed)
    t1 = time.perf_counter()
    embeddings = embedder.embed(batch.images)
    t2 = time.perf_counter()
    distance = scorer.score(embeddings)
    t3 = time.perf_counter()
    if not np.isfinite(distance):
        raise FloatingPointError(f"distance is {distance} (non-finite embeddings?)")
    timings = {"generate_s": t1 - t0, "embed_s": t2 - t1, "score_s": t3 - t2}
    return TrialResult(distance, batch, embeddings, timings)


def residual_at(setup: TrialSetup, params: Mapping[str, ParamValue]) -> np.ndarray:
    """The residual vector of ``params`` rendered from the run's scenes
    (``search.scene_seed``): a diagnosis render, not a trial of the study."""
    result = evaluate_params(
        setup.generator, setup.embedder, setup.scorer, params, setup.batch_size, setup.scene_seed
    )
    return np.asarray(setup.scorer.residual(result.embeddings), dtype=np.float64)


def ask(study: optuna.Study, space: SearchSpace | None = None) -> optuna.Trial:
    """Ask a trial and record which process runs it (so a resume can tell it died).

    With ``space``, the trial's parameters are suggested (and so stored) here, under the
    caller's study mutex: a worker asking next then sees this running trial's point, which the
    samplers use to propose elsewhere (vector_gp's believer, TPE's constant liar). Suggested
    only in :func:`run_trial`, a running trial has no parameters yet, and two workers' GP
    proposals landed on nearly the same point (experiments/workers/TRIALS_TO_FLOOR.md). A
    suggestion that fails here is left to :func:`run_trial`, which suggests again (Optuna
    returns stored values) and records the failure as the trial's.
    """
    with warnings.catch_warnings():  # heartbeats are recorded by run_trial, not study.optimize
        warnings.filterwarnings("ignore", "Heartbeat of storage")
        trial = study.ask()
    trial.set_user_attr(WORKER_ATTR, worker_id())
    if space is not None:
        try:
            space.suggest(trial)
        except Exception as err:  # run_trial meets it again and fails the trial
            log.debug(
                "suggesting trial %d at ask failed (%s); run_trial retries", trial.number, err
            )
    return trial


def run_trial(
    trial: optuna.Trial,
    study: optuna.Study,
    setup: TrialSetup,
    convergence: Convergence,
    observer: LoopObserver,
) -> tuple[str | None, TrialResult | None]:
    """Render, embed and score one asked trial, tell the study and the observer; return its
    error message if it failed (else None) and its result.

    On Ctrl-C the trial is failed and re-queued with its parameters, as a resume does for a
    trial whose worker was killed (:func:`~gen_loop.search.workers.requeue`): the next run
    retries it and it does not count against the budget. The interrupt goes on.
    """
    try:
        params = {**setup.base_params, **setup.space.suggest(trial)}
        seed = trial_scene_seed(setup.scene_seeds, setup.scene_seed, trial.number)
        fresh = setup.scene_seeds != "common"  # common: search.scene_seed, in the run's params
        if fresh:
            trial.set_user_attr("scene_seed", seed)
        stage = trial_stage(trial.user_attrs)
        trial.set_user_attr(STAGE_ATTR, stage)
        start = TrialStart(trial.number, trial.params, stage, seed if fresh else None)
        observer.on_trial_start(start)
        try:
            with get_heartbeat_thread(trial._trial_id, study._storage):
                result = evaluate_params(
                    setup.generator, setup.embedder, setup.scorer, params, setup.batch_size, seed
                )
            for key, value in result.timings.items():
                trial.set_user_attr(key, value)
        except Exception as err:  # recorded as a failed trial; the loop goes on
            error = f"{type(err).__name__}: {err}"
            trial.set_user_attr("error", error[:2000])
            study.tell(trial, state=TrialState.FAIL)
            convergence.update(trial.number, None)
            observer.on_trial_end(_ended(trial, convergence, error=error))
            return error, None
        trial.set_user_attr("distance", result.distance)
        trial.set_user_attr(CENTROID_ATTR, stored_centroid(result.embeddings))  # the route
        if setup.scorer.has_residual:  # search.sampler=vector_gp models it
            residual = setup.scorer.residual(result.embeddings)
            trial.set_user_attr(RESIDUAL_ATTR, stored_residual(residual))
        study.tell(trial, to_objective(result.distance))
    except KeyboardInterrupt:
        requeue(study, trial._trial_id)
        observer.on_trial_end(TrialEnd(trial.number, trial.params, interrupted=True))
        raise
    convergence.update(trial.number, result.distance)
    observer.on_trial_end(_ended(trial, convergence, result=result))
    return None, result


def _ended(
    trial: optuna.Trial,
    convergence: Convergence,
    result: TrialResult | None = None,
    error: str | None = None,
) -> TrialEnd:
    return TrialEnd(
        trial.number,
        trial.params,
        distance=result.distance if result else None,
        error=error,
        best=convergence.best,
        best_trial=convergence.best_trial,
        noise_floor=convergence.noise_floor,
        timings=result.timings if result else {},
        batch=result.batch if result else None,
    )


def trial_stage(user_attrs: Mapping[str, object]) -> str:
    """What proposed a trial: ``refine``, ``start``/``prior`` (enqueued points) or ``sampler``."""
    stage = user_attrs.get(STAGE_ATTR) or user_attrs.get("role") or "sampler"
    return str(stage)
