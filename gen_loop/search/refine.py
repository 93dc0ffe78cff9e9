"""Least-squares refinement of the search's best point (``search.refine``).

The centroid distances are the norm of a D-dimensional residual (the z-scored centroid shift,
:meth:`gen_loop.score.CentroidScorer.residual`). A scalar black-box sampler sees one number per
trial; a Gauss-Newton-type method sees all D components, so from a point a few times the noise
floor away it converges in a handful of Jacobians where TPE needs hundreds of trials
(experiments/recovery/RESULTS.md: TPE 50 + least squares 50 reached the floor on 4/4 draws,
TPE alone on 0/4 in 100 trials).

This module only drives scipy: the loop supplies ``evaluate(params) -> residual`` that runs each
point as a real trial of the study (gen_loop/loop/search_loop.py), and stops the refinement by
raising :class:`StopRefinement` from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution

from gen_loop.config.choices import RefineMethod
from gen_loop.generator.params import ParamValue

if TYPE_CHECKING:
    from gen_loop.search.space import SearchSpace

#: ``search.refine.method`` values.
REFINE_METHODS = tuple(m.value for m in RefineMethod)  # auto: gn where the scorer has a residual
#: The trial user attribute (and MLflow param) naming the stage that proposed a trial.
STAGE_ATTR = "stage"
#: The stage of the refinement's own trials.
REFINE_STAGE = "refine"


class StopRefinement(Exception):
    """Raised by the evaluation callback to end the refinement (stop rule, budget, failure).

    Attributes:
        reason: why, for the log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_continuous(dist: BaseDistribution) -> TypeGuard[FloatDistribution]:
    """A float distribution without a ``step``: what Gauss-Newton and vector_gp model."""
    return isinstance(dist, FloatDistribution) and dist.step is None


@dataclass(frozen=True)
class Box:
    """The refined parameters and their bounds, mapped to the unit cube.

    Only continuous floats (no ``step``) that are always searched are refined; a log-scale
    parameter is mapped on its log. Integers, categoricals and conditional parameters stay at
    the start point's values.
    """

    names: tuple[str, ...]
    low: np.ndarray  # the bounds, raw (log-scale ones too)
    high: np.ndarray
    log: np.ndarray  # which are mapped on their log

    @classmethod
    def of(cls, distributions: Mapping[str, BaseDistribution], conditional: set[str]) -> Box:
        """The refinable parameters of a search space."""
        dists = {
            name: dist
            for name, dist in distributions.items()
            if is_continuous(dist) and name not in conditional
        }
        log = np.array([d.log for d in dists.values()], dtype=np.bool_)
        low = np.array([d.low for d in dists.values()], dtype=np.float64)
        high = np.array([d.high for d in dists.values()], dtype=np.float64)
        names = list(dists)
        return cls(tuple(names), low, high, log)

    @classmethod
    def of_space(cls, space: SearchSpace) -> Box:
        """The refinable parameters of ``space``: its conditional ones left out."""
        return cls.of(space.distributions, set(space.conditions))

    def _mapped(self, x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=np.float64)
        out[self.log] = np.log(out[self.log])
        return out

    def to_unit(self, params: Mapping[str, ParamValue]) -> np.ndarray:
        """The refined parameters of ``params`` in [0, 1]."""
        x = np.array([float(params[n]) for n in self.names])
        x = np.clip(x, self.low, self.high)
        lo, hi = self._mapped(self.low), self._mapped(self.high)
        return np.clip((self._mapped(x) - lo) / (hi - lo), 0.0, 1.0)

    def from_unit(self, u: np.ndarray) -> dict[str, float]:
        """Parameter values of a point of the unit cube (clipped into the bounds)."""
        lo, hi = self._mapped(self.low), self._mapped(self.high)
        x = lo + np.clip(u, 0.0, 1.0) * (hi - lo)
        x[self.log] = np.exp(x[self.log])
        x = np.clip(x, self.low, self.high)  # exp(log(high)) may exceed high by an ulp
        return {n: float(v) for n, v in zip(self.names, x, strict=True)}


def refine_gauss_newton(
    start: Mapping[str, ParamValue],
    start_residual: np.ndarray | None,
    box: Box,
    diff_step: float,
    evaluate: Callable[[dict[str, ParamValue]], np.ndarray],
    min_radius: float | None = None,
    evaluate_many: Callable[[list[dict[str, ParamValue]]], list[np.ndarray]] | None = None,
    regrow: bool = False,
    correct: bool = False,
) -> str:
    """Trust-region Gauss-Newton from ``start``, the Jacobian updated by Broyden's rule.

    One forward-difference Jacobian (one trial a refined parameter, step ``diff_step`` of each
    range) at the start; after that every step costs one trial: the bounded linear
    least-squares step within the trust region (:func:`scipy.optimize.lsq_linear`), then a
    rank-one Broyden update of the Jacobian from the step and the residual it measured, so the
    Jacobian follows the search without a new finite difference. The trust region (a box,
    in units of each range) doubles after a step the linear model predicted well and halves
    after a worse point; after two worse points in a row the Jacobian is measured afresh and
    (``regrow``) the two halvings are given back when a step has gained since the last fresh
    Jacobian (the stale Jacobian, not the trust region, made them worse; at a minimum nothing
    gains and the region shrinks on): without it a run that had to re-measure a few times
    crept on at a few percent of a range a step (experiments/recovery/BASINS.md, camera 16).
    Ends when the trust region is below ``min_radius`` (default ``diff_step / 4``) or
    ``evaluate`` stops it. From 1.5 distance units (8 x the floor) on a corner camera, this
    reached 1.35 x the floor in 9 trials where scipy's least squares needs about 7 a step
    (experiments/recovery/RESULTS.md).

    Args:
        start: the start point (all searched parameters; the non-refined ones are kept).
        start_residual: the residual measured at ``start`` (None: measured first, one trial).
        box: the refined parameters.
        diff_step: the finite-difference step, a fraction of each range.
        evaluate: runs the full parameter set as a trial and returns its residual vector;
            raises :class:`StopRefinement` to end the refinement.
        min_radius: the smallest trust region, a fraction of each range.
        evaluate_many: evaluates independent points together (the Jacobian's, which several
            workers can run at once) and returns their residuals in order; default: one
            ``evaluate`` after the other.
        regrow: give the trust region back its two halvings with a fresh Jacobian after a
            gain.
        correct: after a worse point, try its second-order correction once (one trial)
            before the trust region is halved: the step plus the bounded least-squares fix
            of the linear model's error there, ``J fix = -(r(x + step) - r - J step)``, which
            bends a step along a curved valley (the second-order correction of SQP methods);
            the loop's ``search.refine.correct``, on by default there. A corrected point that
            is worse too halves the region once, as the step alone would.

    Returns:
        Why the refinement ended.
    """
    from scipy.optimize import lsq_linear

    if not box.names:
        return "nothing to refine (no continuous, unconditional float parameter)"
    base = dict(start)
    floor_radius = diff_step / 4 if min_radius is None else min_radius

    def checked(vec: np.ndarray) -> np.ndarray:
        vec = np.asarray(vec, dtype=np.float64)
        if vec.size == 0 or not np.all(np.isfinite(vec)):
            raise StopRefinement("non-finite residual")
        return vec

    def fun(u: np.ndarray) -> np.ndarray:
        return checked(evaluate({**base, **box.from_unit(u)}))

    def fun_many(us: list[np.ndarray]) -> list[np.ndarray]:
        points = [{**base, **box.from_unit(u)} for u in us]
        if evaluate_many is None:
            return [checked(evaluate(p)) for p in points]
        return [checked(v) for v in evaluate_many(points)]

    try:
        x = box.to_unit(start)
        r = fun(x) if start_residual is None else np.asarray(start_residual, dtype=np.float64)
        jac = forward_jacobian(fun_many, x, r, diff_step)
        radius, worse, gained = 0.25, 0, True
        while radius >= floor_radius:
            low, high = np.maximum(-radius, -x), np.minimum(radius, 1.0 - x)
            step = lsq_linear(jac, -r, bounds=(low, high)).x
            if not np.any(step):
                return "Gauss-Newton: no step improves the linear model (a minimum)"
            predicted = float(np.sum((r + jac @ step) ** 2))
            r_new = fun(x + step)
            now, new = float(r @ r), float(r_new @ r_new)
            error = r_new - r - jac @ step  # the linear model's error at the step
            fix = None
            if correct and new >= now:
                fix = lsq_linear(jac, -error, bounds=(low - step, high - step)).x
            jac += np.outer(error, step) / float(step @ step)  # Broyden
            if fix is not None and np.any(fix):
                step = step + fix
                r_new = fun(x + step)
                new = float(r_new @ r_new)
                jac += np.outer(r_new - r - jac @ step, step) / float(step @ step)
            if new < now:
                gain = (now - new) / max(now - predicted, 1e-300)
                at_edge = float(np.max(np.abs(step))) >= 0.9 * radius
                if gain > 0.75 and at_edge:
                    radius = min(2.0 * radius, 1.0)
                elif gain < 0.25:
                    radius /= 2.0
                x, r, worse, gained = x + step, r_new, 0, True
            else:
                radius /= 2.0
                worse += 1
                if worse >= 2:
                    jac = forward_jacobian(fun_many, x, r, diff_step)
                    if regrow and gained:  # the Broyden Jacobian was to blame, not the region
                        radius = min(4.0 * radius, 1.0)
                    worse, gained = 0, False
    except StopRefinement as stop:
        return stop.reason
    return f"Gauss-Newton: trust region below {floor_radius:.3g} of the ranges (a minimum)"


def forward_jacobian(
    fun_many: Callable[[list[np.ndarray]], list[np.ndarray]],
    x: np.ndarray,
    r: np.ndarray,
    step: float,
) -> np.ndarray:
    """The forward-difference Jacobian at ``x`` (where the residual is ``r``), stepping
    inwards at an upper bound; its points are evaluated together by ``fun_many``."""
    steps = np.where(x + step <= 1.0, step, -step)
    moved = [x + h * np.eye(x.size)[i] for i, h in enumerate(steps)]
    columns = [(v - r) / h for v, h in zip(fun_many(moved), steps, strict=True)]
    return np.stack(columns, axis=1)


def refine_lsq(
    start: Mapping[str, ParamValue],
    box: Box,
    diff_step: float,
    evaluate: Callable[[dict[str, ParamValue]], np.ndarray],
) -> str:
    """Bounded least squares from ``start`` until it converges or ``evaluate`` stops it.

    scipy's trust-region reflective method (``trf``) on the unit cube, with a forward-difference
    Jacobian of step ``diff_step`` (a fraction of each range); every evaluation, Jacobian columns
    included, goes through ``evaluate`` (one trial each).

    Args:
        start: the start point (all searched parameters; the non-refined ones are kept).
        box: the refined parameters.
        diff_step: the Jacobian's step, a fraction of each range.
        evaluate: runs the full parameter set as a trial and returns its residual vector; raises
            :class:`StopRefinement` to end the refinement.

    Returns:
        Why the refinement ended (scipy's message, or the :class:`StopRefinement` reason).
    """
    from scipy.optimize import least_squares

    if not box.names:
        return "nothing to refine (no continuous, unconditional float parameter)"
    base = dict(start)

    def fun(u: np.ndarray) -> np.ndarray:
        vec = evaluate({**base, **box.from_unit(u)})
        if not np.all(np.isfinite(vec)):
            raise StopRefinement("non-finite residual")
        return vec

    try:
        result = least_squares(
            fun, box.to_unit(start), bounds=(0.0, 1.0), method="trf", diff_step=diff_step
        )
    except StopRefinement as stop:
        return stop.reason
    return f"least squares: {result.message} (cost {2 * result.cost:.4g} = distance^2)"
