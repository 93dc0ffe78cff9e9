"""After the search: how tightly the distance pins down each parameter of the best camera."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna

from gen_loop.generator.params import ParamValue
from gen_loop.loop.summary import RunSummary
from gen_loop.loop.trial import TrialSetup, evaluate_params
from gen_loop.score import Scorer
from gen_loop.search.refine import Box, forward_jacobian
from gen_loop.search.uncertainty import estimate
from gen_loop.search.vector_sampler import RESIDUAL_ATTR

log = logging.getLogger(__name__)


def per_image_residuals(scorer: Scorer, target_embeddings: np.ndarray) -> np.ndarray | None:
    """Each target image's own residual (the image alone as a batch), or None for a scorer
    without a residual vector."""
    if not scorer.has_residual:
        return None
    rows = [scorer.residual(target_embeddings[i : i + 1]) for i in range(len(target_embeddings))]
    return np.array(rows)


def camera_uncertainty(
    study: optuna.Study,
    summary: RunSummary,
    setup: TrialSetup,
    per_image: np.ndarray | None,
) -> list[dict[str, Any]] | None:
    """One standard deviation per searched continuous parameter at the best trial
    (:func:`gen_loop.search.uncertainty.estimate`), from a forward-difference Jacobian there:
    one batch render a parameter (``search.refine.diff_step``, the scenes of every trial;
    not trials of the study). None when the scorer has no residual vector, no trial completed
    or nothing is continuous."""
    if per_image is None or summary.best_trial is None or summary.best_distance is None:
        return None
    box = Box.of(setup.space.distributions, set(setup.space.conditions))
    if not box.names:
        return None
    best: dict[str, ParamValue] = dict(summary.all_params)

    def residual_at(params: dict[str, ParamValue]) -> np.ndarray:
        result = evaluate_params(
            setup.generator,
            setup.embedder,
            setup.scorer,
            params,
            setup.batch_size,
            setup.scene_seed,
        )
        return np.asarray(setup.scorer.residual(result.embeddings), dtype=np.float64)

    def at_units(points: list[np.ndarray]) -> list[np.ndarray]:
        return [residual_at({**best, **box.from_unit(u)}) for u in points]

    try:
        stored = study.trials[summary.best_trial].user_attrs.get(RESIDUAL_ATTR)
        # A stored residual is at the trial's own scenes: the run's scenes unless each trial
        # renders fresh ones, then the best is rendered again at the run's.
        if stored is None or setup.scene_seeds != "common":
            r0 = residual_at(best)
        else:
            r0 = np.asarray(stored, dtype=np.float64)
        jacobian = forward_jacobian(at_units, box.to_unit(best), r0, setup.refine.diff_step)
        found = estimate(
            box,
            best,
            jacobian,
            r0,
            per_image,
            setup.batch_size,
            summary.best_distance,
            summary.noise_floor.mean,
        )
    except Exception as err:  # a diagnosis only: the run's results stand without it
        log.warning(
            "could not estimate the parameters' uncertainty: %s: %s", type(err).__name__, err
        )
        return None
    return [u.to_dict() for u in found]
