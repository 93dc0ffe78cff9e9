"""``search.sampler=vector_gp``: Bayesian optimisation on the residual vector, not its norm.

The distance is the norm of a D-dimensional residual that every trial stores (user attribute
``residual``). A scalar sampler (TPE, GP) sees one number per trial; this one models all D
components (:class:`~gen_loop.search.residual_model.ResidualGP`) and proposes the point of
largest expected improvement of the *norm* under that model: Bayesian optimisation of a
composite function (Astudillo & Frazier, ICML 2019). The linear trend makes every proposal a
Gauss-Newton step of the whole range from the first trials on, without spending P + 1 trials a
Jacobian; the GP corrects it where trials have been run, so the search lands in the basin of
the target and finishes there in a handful of steps.

Only continuous, unconditional floats are modelled (the box of
:class:`~gen_loop.search.refine.Box`, log-scale ones on their log); integers, categoricals and
conditional parameters are proposed by TPE on the distance. The first ``n_startup_trials``
points are a scrambled Sobol design.

Several workers on one study: the design's points are asked in parallel, but a model-based
proposal waits for every running trial (:func:`proposal_waits`, which the loop asks before it
asks a trial): it is made with every earlier trial's result, as one worker makes it. Its random
candidates are drawn from ``(design_seed, trial number)`` and its likelihood search starts from
the previous proposal's fit, stored on that trial, so N workers propose exactly what one worker
would, trial for trial (``sequential=False``, ``search.parallel_proposals``: propose while
trials run, those added to the model at their predicted residual, "kriging believer").
A scorer without a residual vector (mmd, kid, prdc, frechet, cosine) gives the one-component
residual ``[distance]``: plain GP expected improvement on the distance.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState
from scipy.optimize import minimize

from gen_loop.search.basins import Basins, outside
from gen_loop.search.refine import Box, is_continuous
from gen_loop.search.residual_model import ResidualGP
from gen_loop.search.study import from_objective

log = logging.getLogger(__name__)

#: The trial user attribute holding the residual vector (a list of floats).
RESIDUAL_ATTR = "residual"
#: Monte-Carlo draws of the residual per candidate point, for the expected improvement.
MC_DRAWS = 64
#: Random candidates over the whole cube, and per local scale around each of the best trials.
GLOBAL_CANDIDATES = 512
LOCAL_CANDIDATES = 48
LOCAL_SCALES = (0.01, 0.03, 0.1, 0.3)
LOCAL_CENTRES = 4
#: A proposal this close (unit cube, Euclidean) to a finished or running trial's point is not
#: taken while a farther finalist is left: with common scenes the distance is a deterministic
#: function of the parameters, so a near-repeat teaches the model nothing (two workers'
#: studies had pairs 0.004 apart, experiments/workers/TRIALS_TO_FLOOR.md).
MIN_SEPARATION = 0.02
#: The trial user attribute holding the fit of the model that proposed it (length scales and
#: nugget): the next proposal's likelihood search starts there, whichever worker makes it.
FIT_ATTR = "gp_fit"


def residual_of(trial: FrozenTrial) -> list[float] | None:
    """A finished trial's residual vector: stored, or ``[distance]`` for a scorer without one."""
    stored = trial.user_attrs.get(RESIDUAL_ATTR)
    if stored is not None:
        return [float(v) for v in stored]
    if trial.value is None:
        return None
    return [from_objective(trial.value)]


def stored_residual(residual: np.ndarray) -> list[float]:
    """The residual as the trial stores it: 6 significant digits a component (JSON)."""
    return [float(f"{v:.6g}") for v in np.asarray(residual, dtype=np.float64)]


@dataclass(frozen=True)
class _History:
    """The finished trials the model is fitted on, and the points other workers are running."""

    x: np.ndarray  # (n, P) in the unit cube
    r: np.ndarray  # (n, D)
    pending: np.ndarray  # (k, P)
    last_fit: tuple[np.ndarray, float] | None = None  # the latest proposal's lengths, nugget
    left: np.ndarray | None = None  # (m, P) the left basins' trials (gen_loop/search/basins.py)
    radius: float = 0.0  # how far from them a proposal must be
    # (k, P) the sampler's trials (finished or running) since the latest basin was left
    since_left: np.ndarray | None = None

    def open(self, points: np.ndarray) -> np.ndarray:
        """Which ``points`` lie outside every left basin (all, when there is none)."""
        if self.left is None:
            return np.ones(len(points), dtype=np.bool_)
        return outside(points, self.left, self.radius)

    def proposable(self, points: np.ndarray) -> np.ndarray:
        """Which ``points`` a proposal may take: outside every left basin and, after one was
        left, also ``radius`` from the sampler's other trials since then, so the trials that
        look for the next basin look in different places rather than along one edge of the
        left one (all, when no basin was left)."""
        keep = self.open(points)
        if self.since_left is not None and len(self.since_left):
            keep &= outside(points, self.since_left, self.radius)
        return keep

    def allowed(self, points: np.ndarray) -> np.ndarray:
        """The ``points`` a proposal takes from: the proposable ones, else those outside
        every left basin, else all."""
        for keep in (self.proposable(points), self.open(points)):
            if keep.any():
                return keep
        return np.ones(len(points), dtype=np.bool_)

    @property
    def searched(self) -> np.ndarray:
        """The trials the proposal improves on: those outside the left basins (all, when
        none is outside)."""
        keep = self.open(self.x)
        return keep if keep.any() else np.ones(len(self.x), dtype=np.bool_)

    @property
    def best(self) -> float:
        """The incumbent of the expected improvement: the best trial outside the left basins."""
        return float(np.min(np.linalg.norm(self.r[self.searched], axis=1)))


class VectorGPSampler(optuna.samplers.BaseSampler):
    """Expected improvement of the distance under a GP model of the residual vector.

    Args:
        seed: seeds the TPE fallback (conditional and non-float parameters).
        n_startup_trials: trials (the enqueued start point included) before the model
            proposes; the ones before are a scrambled Sobol design. ``sequential``: asked
            trials (finished or running), else finished ones.
        design_seed: seeds that design and, with the trial number, each proposal's random
            candidates (default ``seed``). Optuna numbers a design's points in the study, so
            worker sessions given the same ``design_seed`` (the loop gives them
            ``search.seed``) continue one design instead of interleaving one each.
        sequential: model-based proposals are made with every earlier result (the loop
            waits, :func:`proposal_waits`); False (``search.parallel_proposals``): while
            other trials run, at their predicted residual.
    """

    def __init__(
        self,
        seed: int = 0,
        n_startup_trials: int = 10,
        design_seed: int | None = None,
        sequential: bool = True,
    ) -> None:
        self._n_startup = max(n_startup_trials, 2)
        design = seed if design_seed is None else design_seed
        self._design_seed = design
        self.sequential = sequential
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._startup = optuna.samplers.QMCSampler(
                qmc_type="sobol", scramble=True, seed=design
            )
            self._fallback = optuna.samplers.TPESampler(seed=seed, constant_liar=True)

    def reseed_rng(self) -> None:  # a proposal's draws are keyed by its trial number
        self._startup.reseed_rng()
        self._fallback.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {n: d for n, d in known_space(study, trial).items() if is_continuous(d)}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        box = Box.of(search_space, conditional=set())
        history = self._history(study, trial, box)
        if history is None:
            return self._startup.sample_relative(study, trial, search_space)
        model = ResidualGP.fit(history.x, history.r, history.last_fit)
        fit = [*map(float, model.lengths), float(model.nugget)]
        study._storage.set_trial_user_attr(trial._trial_id, FIT_ATTR, fit)
        model = model.believe(history.pending)
        rng = np.random.default_rng([self._design_seed, trial.number])
        point = propose(model, history, rng)
        return dict(box.from_unit(point))

    def waits(self, study: Study) -> bool:
        """Whether the next proposal must wait for the trials now running: it is model-based
        (the design is all asked) and ``sequential``. Enqueued trials are not proposed."""
        if not self.sequential:
            return False
        trials = study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        )
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if running == 0 or any(t.state == TrialState.WAITING for t in trials):
            return False
        done = sum(t.state == TrialState.COMPLETE and residual_of(t) is not None for t in trials)
        return done + running >= self._n_startup

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._fallback.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._fallback.after_trial(study, trial, state, values)

    def _history(self, study: Study, trial: FrozenTrial, box: Box) -> _History | None:
        """The modelled trials, or None while the Sobol start is still running."""
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        done = [
            (t, res)
            for t in trials
            if t.state == TrialState.COMPLETE
            and set(box.names) <= set(t.params)
            and (res := residual_of(t)) is not None
        ]
        others = [t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number]
        if len(done) + (len(others) if self.sequential else 0) < self._n_startup:
            return None
        dims = max({len(res) for _, res in done}, key=lambda d: sum(len(r) == d for _, r in done))
        done = [(t, res) for t, res in done if len(res) == dims]
        x = np.array([box.to_unit(t.params) for t, _ in done])
        r = np.array([res for _, res in done])
        pending = [box.to_unit(t.params) for t in others if set(box.names) <= set(t.params)]
        fits = [t for t in trials if len(t.user_attrs.get(FIT_ATTR) or ()) == len(box.names) + 1]
        last = max(fits, key=lambda t: t.number).user_attrs[FIT_ATTR] if fits else None
        last_fit = None if last is None else (np.asarray(last[:-1], dtype=np.float64), last[-1])
        basins = Basins.of(study)
        left = basins.points(trials, box) if basins.trials else None
        pending_x = np.array(pending).reshape(-1, len(box.names))
        since = [
            box.to_unit(t.params)
            for t in trials
            if basins.searched_after(t)
            and t.number != trial.number
            and set(box.names) <= set(t.params)
        ]
        since_left = np.array(since).reshape(-1, len(box.names)) if basins.trials else None
        return _History(x, r, pending_x, last_fit, left, basins.radius, since_left)


def known_space(study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
    """The distributions that every complete trial and every other running one has: Optuna's
    intersection search space with the running trials too, so a worker that asks while the
    study's first trial still runs continues the design (Optuna's would be empty: the point
    would be drawn at random)."""
    space: dict[str, BaseDistribution] | None = None
    states = (TrialState.COMPLETE, TrialState.RUNNING)
    for other in study.get_trials(deepcopy=False, states=states):
        if other.number == trial.number or not other.distributions:
            continue
        if space is None:
            space = dict(other.distributions)
        else:
            space = {n: d for n, d in space.items() if other.distributions.get(n) == d}
    return dict(sorted((space or {}).items()))


def proposal_waits(study: Study) -> bool:
    """Whether the loop waits for the running trials before it asks the study's sampler for a
    trial (:meth:`VectorGPSampler.waits`; other samplers never wait)."""
    sampler = study.sampler
    return isinstance(sampler, VectorGPSampler) and sampler.waits(study)


def propose(model: ResidualGP, history: _History, rng: np.random.Generator) -> np.ndarray:
    """The candidate point of largest expected improvement of the distance.

    Candidates: a random global set, Gaussian clouds at several scales around the best trials,
    and the minimiser of the predicted distance (a Gauss-Newton step on the model); the best
    few are polished by L-BFGS-B on the expected improvement. After the search left a basin
    (:mod:`gen_loop.search.basins`), the improvement is over the best trial outside the left
    basins, the clouds are around those trials, a proposal also keeps the basins' radius from
    the sampler's other trials since the latest one was left (:meth:`_History.proposable`), and
    a point inside a left basin is taken only when no candidate is outside.
    """
    p = history.x.shape[1]
    draws = rng.standard_normal((MC_DRAWS, history.r.shape[1]))
    acquisition = _ExpectedImprovement(model, history.best, draws)
    searched = np.flatnonzero(history.searched)
    norms = np.linalg.norm(history.r[searched], axis=1)
    order = searched[np.argsort(norms)[:LOCAL_CENTRES]]
    clouds = [
        history.x[i] + scale * rng.standard_normal((LOCAL_CANDIDATES, p))
        for i in order
        for scale in LOCAL_SCALES
    ]
    exploit = _predicted_minimum(model, history.x[order])
    candidates = np.clip(np.vstack([rng.random((GLOBAL_CANDIDATES, p)), *clouds, exploit]), 0, 1)
    candidates = candidates[history.allowed(candidates)]
    scores = acquisition(candidates)
    top = candidates[np.argsort(-scores)[:3]]
    polished = [
        minimize(
            lambda u: -acquisition(u[np.newaxis])[0],
            u0,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * p,
            options={"maxiter": 30},
        ).x
        for u0 in top
    ]
    finalists = np.clip(np.vstack([top, *polished, exploit]), 0.0, 1.0)
    gains = acquisition(finalists)
    if float(np.max(gains)) <= 1e-12 * max(history.best, 1e-12) and history.proposable(exploit)[0]:
        # No improvement expected anywhere: take the predicted minimum (pure exploitation).
        return exploit[0]
    pool = np.vstack([finalists, candidates])
    pool_gains = np.concatenate([gains, scores])
    keep = history.allowed(pool)
    pool, pool_gains = pool[keep], pool_gains[keep]
    far = separated(pool, np.vstack([history.x, history.pending]))
    if far.any():
        pool, pool_gains = pool[far], pool_gains[far]
    return pool[int(np.argmax(pool_gains))]


def separated(points: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Which ``points`` lie at least :data:`MIN_SEPARATION` from every ``taken`` point."""
    return outside(points, taken, MIN_SEPARATION)


@dataclass(frozen=True)
class _ExpectedImprovement:
    """``E[max(0, best - |r(x)|)]`` for r(x) ~ the model's posterior, by Monte Carlo with fixed
    draws (a deterministic function of x, so it can be polished by a gradient method)."""

    model: ResidualGP
    best: float
    draws: np.ndarray  # (S, D) standard normal

    def __call__(self, points: np.ndarray) -> np.ndarray:
        mean, var = self.model.predict(points)
        scaled = self.draws * np.sqrt(self.model.scale2)  # (S, D)
        sq = (
            np.sum(mean * mean, axis=1)[:, np.newaxis]
            + 2.0 * np.sqrt(var)[:, np.newaxis] * (mean @ scaled.T)
            + var[:, np.newaxis] * np.sum(scaled * scaled, axis=1)[np.newaxis, :]
        )
        norms = np.sqrt(np.maximum(sq, 0.0))
        return np.mean(np.maximum(self.best - norms, 0.0), axis=1)


def _predicted_minimum(model: ResidualGP, starts: np.ndarray) -> np.ndarray:
    """The point of least predicted distance, by L-BFGS-B from each of ``starts``; (1, P)."""
    p = starts.shape[1]

    def norm2(u: np.ndarray) -> float:
        mean, _ = model.predict(u[np.newaxis])
        return float(np.sum(mean * mean))

    results = [
        minimize(norm2, u0, method="L-BFGS-B", bounds=[(0.0, 1.0)] * p, options={"maxiter": 50})
        for u0 in starts
    ]
    best = min(results, key=lambda res: res.fun)
    return np.clip(best.x, 0.0, 1.0)[np.newaxis]
