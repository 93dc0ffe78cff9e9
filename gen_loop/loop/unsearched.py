"""After a search that stopped above the floor: which unsearched parameters explain the rest."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from optuna.distributions import FloatDistribution, IntDistribution

from gen_loop.generator.params import ParamValue
from gen_loop.loop.summary import RunSummary
from gen_loop.loop.trial import TrialSetup, residual_at
from gen_loop.search.attribution import attribute, unsearched_choices, unsearched_numeric
from gen_loop.search.bounds import at_bounds

log = logging.getLogger(__name__)


def unsearched_suspects(
    summary: RunSummary, setup: TrialSetup, converged: bool
) -> list[dict[str, Any]] | None:
    """The unsearched parameters ranked by the share of the best trial's residual each one
    explains (:func:`gen_loop.search.attribution.attribute`: one batch render per searched and
    per unsearched parameter, and per other choice of an unsearched categorical one), or None
    when there is nothing to explain: the search converged, no trial completed, or the scorer
    has no residual vector."""
    if converged or summary.best_distance is None or not setup.scorer.has_residual:
        return None
    specs, searched_names = setup.generator.parameters, set(setup.space.distributions)
    candidates = unsearched_numeric(specs, searched_names, set(setup.space.fixed))
    choices = unsearched_choices(specs, searched_names, set(setup.space.fixed))
    if not candidates and not choices:
        return None
    params: dict[str, ParamValue] = dict(summary.all_params)

    def render(p: dict[str, ParamValue]) -> np.ndarray:
        return residual_at(setup, p)

    searched = {
        name: (float(dist.low), float(dist.high))
        for name, dist in setup.space.distributions.items()
        if isinstance(dist, FloatDistribution | IntDistribution) and name in params
    }
    try:
        suspects = attribute(render(params), params, candidates, searched, render, choices)
    except Exception as err:  # a diagnosis only: the run's results stand without it
        log.warning("could not attribute the remaining distance: %s: %s", type(err).__name__, err)
        return None
    return [s.to_dict() for s in suspects]


def range_bound_hits(
    summary: RunSummary, setup: TrialSetup, converged: bool
) -> list[dict[str, Any]] | None:
    """The searched parameters whose best value sits at a bound of its search range
    (:func:`gen_loop.search.bounds.at_bounds`), or None when the search converged or no trial
    completed: at the floor a value at a bound is the answer, not a hint."""
    if converged or summary.best_distance is None:
        return None
    hits = at_bounds(summary.best_params, setup.space.distributions, setup.generator.parameters)
    return [h.to_dict() for h in hits]
