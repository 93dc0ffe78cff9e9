"""When to stop searching: at the noise floor, on a plateau, or at a budget."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Metrics whose noise floor rescales analytically to another batch/reference size (below).
RESCALED_METRICS = ("zscore_l2", "l2", "cosine")


def _centroid_variance(batch: int, reference: int, metric: str) -> float:
    """Expected squared centroid distance of ``batch`` vs ``reference`` same-distribution samples,
    in units of the per-dimension variance.

    The difference of two sample means has variance ``1/B + 1/n`` per dimension. ``zscore_l2``
    also divides by the reference's own (ddof=0) std, whose inverse square averages about
    ``n / (n - 3)`` times the true one; that term matters for small references.
    """
    var = 1.0 / batch + 1.0 / reference
    if metric == "zscore_l2":
        var *= reference / max(reference - 3, 1)
    return var


def trial_noise_floor(
    floor_mean: float, floor_batch: int, target_size: int, batch_size: int, metric: str
) -> float:
    """The noise floor rescaled to how a trial is scored.

    :meth:`gen_loop.score.Scorer.noise_floor` scores ``floor_batch`` held-out target samples
    against a reference fitted on the other ``target_size - floor_batch``; a trial scores
    ``batch_size`` generated samples against a reference fitted on all ``target_size``. When the
    batch is a sizeable share of the target (or the floor had to use a smaller batch, for a
    target under ``batch_size + 2`` images), the raw floor is too high: measured on the demo
    target (experiments/noise_floor), batch 32 from a 40-image target had a floor of 0.48 while
    the exact parameters scored 0.25. The centroid distances scale as the square root of
    :func:`_centroid_variance` (cosine, quadratic in a small angle, linearly); other metrics are
    returned unchanged.

    Args:
        floor_mean: the measured floor (``NoiseFloor.mean``).
        floor_batch: the batch size it used (``NoiseFloor.batch_size``).
        target_size: the number of target embeddings the trial scorer is fitted on.
        batch_size: the trial batch size.
        metric: the scorer's metric (``score.metric``).
    """
    if metric not in RESCALED_METRICS:
        return floor_mean
    ratio = _centroid_variance(batch_size, target_size, metric) / _centroid_variance(
        floor_batch, target_size - floor_batch, metric
    )
    return floor_mean * (ratio if metric == "cosine" else math.sqrt(ratio))


@dataclass
class Convergence:
    """Tracks the best distance and says why the search should stop, if it should.

    The noise floor is the distance between two random halves of the target at the trial
    batch size: a generated batch cannot be told apart from the target below it, so searching
    further only fits sampling noise.

    Args:
        noise_floor: the target's own distance at the trial batch size, against the whole
            target (:func:`trial_noise_floor`).
        floor_factor: stop once ``best <= floor_factor * noise_floor``. One batch's distance
            near the floor is only known to about +-30 % (the features act like ~5 independent
            dimensions), so even the exact parameters need a factor of about 1.5 to pass 95 %
            of the time (experiments/noise_floor/RESULTS.md; the default is 1.5).
        patience: stop after this many trials without a relative improvement of at least
            ``min_rel_improvement`` over the best.
        min_rel_improvement: see ``patience``.
        n_trials: the trial budget.
        timeout_s: the time budget in seconds (None: none).
        stop_at_floor: whether to stop at the floor at all; False for a floor too uncertain
            to judge by (:mod:`gen_loop.search.floor_quality`): budget and plateau only.
    """

    noise_floor: float
    floor_factor: float
    patience: int
    min_rel_improvement: float
    n_trials: int
    timeout_s: float | None = None
    stop_at_floor: bool = True
    best: float = math.inf
    best_trial: int | None = None
    trials_seen: int = 0
    since_improvement: int = 0
    history: list[float] = field(default_factory=list)

    def update(self, trial_number: int, value: float | None) -> None:
        """Record a finished trial (``value`` None for a failed one)."""
        self.trials_seen += 1
        if value is None or not math.isfinite(value):
            self.since_improvement += 1
            return
        self.history.append(value)
        if value < self.best * (1.0 - self.min_rel_improvement) or self.best_trial is None:
            self.since_improvement = 0
        else:
            self.since_improvement += 1
        if value < self.best:
            self.best, self.best_trial = value, trial_number

    def stop_reason(self, elapsed_s: float, plateau: bool = True) -> str | None:
        """Why to stop now, or None to go on; ``plateau=False`` holds the plateau rule back
        (a refinement's first Jacobian is owed the step it was measured for)."""
        if self.stop_at_floor and self.best <= self.floor_factor * self.noise_floor:
            return (
                f"converged: best distance {self.best:.4g} <= {self.floor_factor:g} x noise "
                f"floor {self.noise_floor:.4g}"
            )
        if plateau and self.since_improvement >= self.patience:
            return (
                f"plateau: no {self.min_rel_improvement:.0%} improvement in {self.patience} trials"
            )
        if self.trials_seen >= self.n_trials:
            return f"budget: {self.n_trials} trials"
        if self.timeout_s is not None and elapsed_s >= self.timeout_s:
            return f"time budget: {self.timeout_s:g} s"
        return None
