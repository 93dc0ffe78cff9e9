"""Extra arms: TPE for a first stage, then a local refinement around TPE's best.

Usage: .venv/bin/python experiments/recovery/refine.py --seed 0 [--method lsq|cmaes]
       [--stage1 50] [--diff-step 0.02] [--sigma0 0.1]

Needs ``run.py --sampler tpe --seed <seed>`` first. TPE's first ``--stage1`` trials are read
from that run's study (with one worker, TPE's proposal for trial n depends on trials < n only,
so they are exactly what a ``--stage1``-trial TPE run proposes). The rest of the 100-trial
budget goes to a local method started at the best of those trials:

- ``lsq``: scipy's bounded trust-region least squares on the z-scored centroid shift (the
  D-dimensional vector whose norm / sqrt(D) is the distance), forward-difference Jacobian with
  a step of ``--diff-step`` of each range; every evaluation, Jacobian columns included, counts
  as a trial;
- ``cmaes``: Optuna's CmaEsSampler on the log distance, ``sigma0`` a fraction of each range.

Trials are scored exactly as the loop scores them (same target, scorer, scene seed 0, batch
32; checked by re-scoring TPE's best trial; distances are judged against the loop run's own
noise floor) but driven here, outside the loop and without MLflow: gen_loop's code is
unchanged. The result JSON has the shape of run.py's, sampler ``tpe<stage1>+<method>``. Run it
under the shared CPU lock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from run import (
    FLOOR_MULTIPLES,
    N_TRIALS,
    RESULTS,
    RUNS,
    best_so_far,
    target_overrides,
    trial_distances,
    trials_to_reach,
    write_result,
)

from gen_loop.score.distances import feature_stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo

FLOOR_SPLITS = 20


def tpe_stage(seed: int, stage1: int) -> tuple[list[float | None], dict[str, float]]:
    """The first ``stage1`` distances of the TPE run and the parameters of their best."""
    run_dir = RUNS / f"tpe_s{seed}"
    distances = trial_distances(run_dir)[:stage1]
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    trials = sorted(study.trials, key=lambda t: t.number)[:stage1]
    best = min(
        (t for t in trials if "distance" in t.user_attrs), key=lambda t: t.user_attrs["distance"]
    )
    return distances, dict(best.params)


class _BudgetSpent(Exception):
    """The refinement used its evaluations."""


def refine_cmaes(
    start: dict[str, float],
    start_distance: float,
    dists: dict[str, optuna.distributions.FloatDistribution],
    budget: int,
    sigma0: float,
    seed: int,
    distance: Callable[[dict[str, float]], float],
) -> list[tuple[float, dict[str, float]]]:
    """Optuna's CMA-ES from ``start`` (sigma0 in units of each range), on the log distance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # x0/sigma0 are deprecated in favour of warm starts
        sampler = optuna.samplers.CmaEsSampler(x0=start, sigma0=sigma0, seed=seed)
    study = optuna.create_study(sampler=sampler)
    # TPE's best as a finished trial: CMA-ES learns the search space from it, no evaluation.
    study.add_trial(
        optuna.trial.create_trial(
            params=start, distributions=dists, value=math.log(start_distance)
        )
    )
    out = []
    for _ in range(budget):
        trial = study.ask(dists)
        d = distance(trial.params)
        study.tell(trial, math.log(d))
        out.append((d, dict(trial.params)))
    return out


def refine_lsq(
    start: dict[str, float],
    dists: dict[str, optuna.distributions.FloatDistribution],
    budget: int,
    diff_step: float,
    residual: Callable[[dict[str, float]], tuple[float, np.ndarray]],
) -> list[tuple[float, dict[str, float]]]:
    """Bounded least squares (scipy trust-region reflective, forward-difference Jacobian) on
    the z-scored centroid shift whose norm is the distance, in [0, 1]-scaled parameters.

    The distance is the norm of a D-dimensional residual, so a Gauss-Newton-type method sees
    all D components where a black-box sampler sees one number. Every evaluation, Jacobian
    columns included, counts against ``budget``.
    """
    from scipy.optimize import least_squares

    names = list(dists)
    low = np.array([dists[n].low for n in names])
    span = np.array([dists[n].high for n in names]) - low
    out: list[tuple[float, dict[str, float]]] = []

    def fun(u: np.ndarray) -> np.ndarray:
        if len(out) >= budget:
            raise _BudgetSpent
        values = low + np.clip(u, 0.0, 1.0) * span
        params = {n: float(v) for n, v in zip(names, values, strict=True)}
        d, vec = residual(params)
        out.append((d, params))
        return vec

    u0 = np.clip((np.array([start[n] for n in names]) - low) / span, 0.0, 1.0)
    with contextlib.suppress(_BudgetSpent):  # stop at the budget, keep what was evaluated
        least_squares(fun, u0, bounds=(0.0, 1.0), method="trf", diff_step=diff_step, x_scale=1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--stage1", type=int, default=50)
    parser.add_argument("--method", choices=["cmaes", "lsq"], default="cmaes")
    parser.add_argument("--sigma0", type=float, default=0.1, help="cmaes: fraction of range")
    parser.add_argument("--diff-step", type=float, default=0.02, help="lsq: fraction of range")
    args = parser.parse_args()
    clock = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tpe = json.loads((RESULTS / f"tpe_s{args.seed}.json").read_text())
    hidden = tpe["hidden_params"]
    # The loop run's components: its target (scorer fitted on it), space, batch, scene seed.
    demo = load_demo(target_overrides(hidden, tpe["target_seed"]))
    dists = {
        k: optuna.distributions.FloatDistribution(low, high)
        for k, (low, high) in demo.ranges.items()
    }
    batch_size, scene_seed = demo.cfg.search.batch_size, demo.cfg.search.scene_seed
    target = demo.target_embeddings
    scorer = demo.scorer
    own_floor = scorer.noise_floor(batch_size, FLOOR_SPLITS, np.random.default_rng(args.seed)).mean
    floor = tpe["noise_floor"]  # the loop's floor: the arms are judged against the same yardstick

    def embed(params: dict[str, float]) -> np.ndarray:
        return np.asarray(demo.embed_at(params, batch_size, scene_seed), dtype=np.float64)

    def distance(params: dict[str, float]) -> float:
        return scorer.score(embed(params))

    def residual(mean: np.ndarray, scale: np.ndarray) -> Callable[[dict[str, float]], Any]:
        def z(params: dict[str, float]) -> tuple[float, np.ndarray]:
            emb = embed(params)
            vec = (emb.mean(axis=0) - mean) / scale / math.sqrt(emb.shape[1])
            d = scorer.score(emb)
            if not math.isclose(float(np.linalg.norm(vec)), d, rel_tol=1e-9):
                raise AssertionError("residual norm is not the scorer's distance")
            return d, vec

        return z

    stage1, start = tpe_stage(args.seed, args.stage1)
    check = distance(start)
    stored = min(d for d in stage1 if d is not None)
    if not math.isclose(check, stored, rel_tol=1e-3):
        raise SystemExit(f"not the loop's scoring: TPE best re-scored {check} vs {stored}")
    budget = N_TRIALS - len(stage1)
    if args.method == "cmaes":
        stage2 = refine_cmaes(start, stored, dists, budget, args.sigma0, args.seed, distance)
    else:
        mean, scale = feature_stats(np.asarray(target, dtype=np.float64))
        stage2 = refine_lsq(start, dists, budget, args.diff_step, residual(mean, scale))
    best, best_params = min(((d, p) for d, p in stage2), key=lambda dp: dp[0])
    if best > stored:
        best, best_params = stored, start
    stage2_d: list[float | None] = [d for d, _ in stage2]
    distances = stage1 + stage2_d
    curve = best_so_far(distances)
    name = f"tpe{args.stage1}+{args.method}"
    found = {**start, **best_params}
    result: dict[str, Any] = {
        "sampler": name,
        "seed": args.seed,
        "hidden_params": hidden,
        "target_seed": tpe["target_seed"],
        "noise_floor": floor,
        "noise_floor_std": tpe["noise_floor_std"],
        "default_distance": tpe["default_distance"],
        "best_distance": best,
        "best_over_floor": best / floor,
        "best_trial": distances.index(best),
        "best_params": found,
        "recovery_error": {
            k: abs(found[k] - hidden[k]) / (d.high - d.low) for k, d in dists.items()
        },
        "trials_to_floor": {f"{k:g}": trials_to_reach(curve, k * floor) for k in FLOOR_MULTIPLES},
        "distances": distances,
        "n_trials": len(distances),
        "n_failed": 0,
        "stop_reason": f"budget: {N_TRIALS} trials",
        "search_s": None,
        "wall_s": time.perf_counter() - clock,
        "rescore_check": {
            "tpe_best_stored": stored,
            "tpe_best_rescored": check,
            "loop_floor": floor,
            "floor_recomputed_here": own_floor,
        },
        "command": f"experiments/recovery/refine.py --seed {args.seed} --stage1 {args.stage1} "
        f"--method {args.method} --sigma0 {args.sigma0} --diff-step {args.diff_step}",
    }
    write_result(
        result,
        RESULTS / f"{name}_s{args.seed}.json",
        f"{name} seed {args.seed}: best {best / floor:.2f} x floor "
        f"(stage 1: {stored / floor:.2f})",
    )


if __name__ == "__main__":
    main()
