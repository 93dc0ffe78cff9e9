"""Replay the loop's stop rule offline on a recorded trial history (no CPU-heavy work).

Used by rescore.py and report.py; the run JSONs come from run_loop.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_loop.config.schema import SearchConfig
from gen_loop.search.convergence import Convergence, trial_noise_floor

RUNS = Path(__file__).resolve().parent / "results" / "loop_runs"
TARGET_SIZE = 160  # conf/target/demo.yaml demo.n: the loop's target in every run


@dataclass(frozen=True)
class Stop:
    """Where the stop rule would have stopped a history."""

    trial: int  # trials run when it stops (the number of the last one + 1)
    reason: str
    best: float
    best_params: dict[str, Any]
    floor: float  # the trial floor the rule compared with


def load_runs() -> dict[str, dict[str, Any]]:
    """Every recorded run, by name."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))}


def trial_floor(run: dict[str, Any]) -> float:
    """The floor the loop's convergence uses for this run."""
    nf = run["noise_floor"]
    metric = next(
        (o.split("=", 1)[1] for o in run["overrides"] if o.startswith("score.metric=")),
        "zscore_l2",
    )
    return trial_noise_floor(nf["mean"], nf["batch_size"], TARGET_SIZE, nf["batch_size"], metric)


def replay(
    run: dict[str, Any],
    floor_factor: float | None = None,
    patience: int | None = None,
    min_rel_improvement: float | None = None,
    upto: int | None = None,
) -> Stop:
    """Feed the run's trials in order to the stop rule (defaults: the shipped SearchConfig) and
    return where it stops, or the end of the history (``upto`` trials) with reason ``budget``."""
    defaults = SearchConfig()
    trials = run["trials"][:upto] if upto else run["trials"]
    floor = trial_floor(run)
    conv = Convergence(
        noise_floor=floor,
        floor_factor=defaults.floor_factor if floor_factor is None else floor_factor,
        patience=defaults.patience if patience is None else patience,
        min_rel_improvement=(
            defaults.min_rel_improvement if min_rel_improvement is None else min_rel_improvement
        ),
        n_trials=len(trials),
    )
    best_params: dict[str, Any] = {}
    reason = "budget"
    for t in trials:
        before = conv.best
        conv.update(t["number"], t["distance"])
        if conv.best < before:
            best_params = t["params"]
        why = conv.stop_reason(0.0)
        if why is not None:
            reason = why
            break
    return Stop(conv.trials_seen, reason, conv.best, best_params, floor)


def best_of(run: dict[str, Any], upto: int | None = None) -> tuple[float, dict[str, Any]]:
    """Best distance and its parameters among the first ``upto`` trials."""
    trials = [t for t in (run["trials"][:upto] if upto else run["trials"]) if t["distance"]]
    best = min(trials, key=lambda t: t["distance"])
    return best["distance"], best["params"]


def recovery_error(run: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
    """|found - hidden| / search range, per searched parameter."""
    space, hidden = run["space"], run["hidden_params"]
    return {k: abs(params[k] - hidden[k]) / (space[k]["high"] - space[k]["low"]) for k in hidden}
