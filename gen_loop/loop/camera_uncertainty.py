"""After the search: how tightly the distance pins down each parameter of the best camera."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna

from gen_loop.loop.polish_stage import MeasuredJacobian, measure_jacobian, residual_of_best
from gen_loop.loop.summary import RunSummary
from gen_loop.loop.trial import TrialSetup
from gen_loop.score import Scorer
from gen_loop.search.refine import Box
from gen_loop.search.uncertainty import estimate

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
    measured: MeasuredJacobian | None = None,
) -> list[dict[str, Any]] | None:
    """One standard deviation per searched continuous parameter at the best trial
    (:func:`gen_loop.search.uncertainty.estimate`), on the Jacobian the polish measured
    (``measured``; at the best before the polish step) or, without one, on a Jacobian
    measured at the best now (one batch render a parameter, not trials). None when the
    scorer has no residual vector, no trial completed or nothing is continuous."""
    if per_image is None or summary.best_trial is None or summary.best_distance is None:
        return None
    box = Box.of_space(setup.space)
    if not box.names:
        return None
    best = study.trials[summary.best_trial]
    try:
        if measured is None or measured.box.names != box.names:
            measured = measure_jacobian(setup, best, box)
        # the best's residual: the Jacobian's own unless the polish trial took over
        same = measured.trial == best.number
        found = estimate(
            box,
            {**setup.base_params, **best.params},
            measured.matrix,
            measured.residual if same else residual_of_best(setup, best),
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
