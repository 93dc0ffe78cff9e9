"""When to stop searching: at the noise floor, on a plateau, or at a budget."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Convergence:
    """Tracks the best distance and says why the search should stop, if it should.

    The noise floor is the distance between two random halves of the target at the trial
    batch size: a generated batch cannot be told apart from the target below it, so searching
    further only fits sampling noise.

    Args:
        noise_floor: the target's own distance at the trial batch size.
        floor_factor: stop once ``best <= floor_factor * noise_floor``.
        patience: stop after this many trials without a relative improvement of at least
            ``min_rel_improvement`` over the best.
        min_rel_improvement: see ``patience``.
        n_trials: the trial budget.
        timeout_s: the time budget in seconds (None: none).
    """

    noise_floor: float
    floor_factor: float
    patience: int
    min_rel_improvement: float
    n_trials: int
    timeout_s: float | None = None
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

    def stop_reason(self, elapsed_s: float) -> str | None:
        """Why to stop now, or None to go on."""
        if self.best <= self.floor_factor * self.noise_floor:
            return (
                f"converged: best distance {self.best:.4g} <= {self.floor_factor:g} x noise "
                f"floor {self.noise_floor:.4g}"
            )
        if self.since_improvement >= self.patience:
            return (
                f"plateau: no {self.min_rel_improvement:.0%} improvement in {self.patience} trials"
            )
        if self.trials_seen >= self.n_trials:
            return f"budget: {self.n_trials} trials"
        if self.timeout_s is not None and elapsed_s >= self.timeout_s:
            return f"time budget: {self.timeout_s:g} s"
        return None
