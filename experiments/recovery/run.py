"""Search efficiency and parameter recovery: one (sampler, seed) run of the loop on a target
made by the generator with hidden parameters, reduced to a small JSON of results.

Usage:
    .venv/bin/python experiments/recovery/run.py --sampler tpe --seed 0
    .venv/bin/python experiments/recovery/run.py --print-draws

Seed ``i`` fixes hidden draw ``i`` (each searched parameter uniform in the central 60 % of its
range of conf/search/tpe.yaml, from ``numpy.random.default_rng(DRAW_RNG_OFFSET + i)``), the demo
target's scene seed (``TARGET_SEED_OFFSET + i``, apart from the search's scene seed 0 and the
selection pool's seed 1) and the sampler's seed ``search.seed=i``; every sampler meets the same
five targets. The loop runs as a user runs it (``python -m gen_loop run``) with the early stop
switched off (patience 1000, floor factor ~0) so every run has its full 100-trial history,
fine-tuning off, a 32-sample selection pool and no trial image grids (CPU). The run goes to
``experiments/recovery/runs/<sampler>_s<seed>/`` (git-ignored); the results (best-so-far curve,
trials to k x noise floor, per-parameter recovery error) go to
``experiments/recovery/results/<sampler>_s<seed>.json``. Run it under the shared CPU lock.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import compose_run, gen_loop_command, run_gen_loop

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNS = HERE / "runs"
RESULTS = HERE / "results"
SAMPLERS = ("tpe", "random", "qmc", "gp")
N_TRIALS = 100
DRAW_RNG_OFFSET = 20261126
TARGET_SEED_OFFSET = 1000
CENTRAL = (0.2, 0.8)  # hidden values are drawn in this fraction of each range
FLOOR_MULTIPLES = (1.0, 1.5, 2.0, 3.0)


@functools.cache
def search_space() -> dict[str, tuple[float, float]]:
    """The searched parameters and their ranges, from the composed config (``search=tpe``,
    conf/search/tpe.yaml, in file order)."""
    space = compose_run(["search=tpe"]).search.space
    return {str(k): (float(v.low), float(v.high)) for k, v in space.items()}  # type: ignore[arg-type]


def hidden_draw(seed: int) -> dict[str, float]:
    """The hidden camera parameters of draw ``seed`` (rounded to 4 significant digits)."""
    rng = np.random.default_rng(DRAW_RNG_OFFSET + seed)
    draw = {}
    for name, (low, high) in search_space().items():
        u = rng.uniform(*CENTRAL)
        draw[name] = float(f"{low + u * (high - low):.4g}")
    return draw


def target_overrides(hidden: dict[str, float], target_seed: int) -> list[str]:
    """The Hydra overrides that make the demo target of hidden parameters ``hidden``."""
    return [
        f"target.demo.seed={target_seed}",
        *[f"target.demo.params.{k}={v}" for k, v in hidden.items()],
    ]


def overrides(sampler: str, seed: int, run_dir: Path) -> list[str]:
    """The Hydra overrides of one benchmark run."""
    return [
        f"search={sampler}",
        f"search.seed={seed}",
        f"search.n_trials={N_TRIALS}",
        "search.patience=1000",  # no plateau stop: every run keeps its full history
        "search.floor_factor=1e-9",  # no convergence stop either (must be > 0)
        "finetune.enabled=false",
        "selection.pool_size=32",
        "tracking.trial_images=0",
        "search.refine.method=none",  # the sampler alone (loop_refine.py runs the refinement)
        f"tracking.uri=sqlite:///{run_dir / 'mlflow.db'}",
        *target_overrides(hidden_draw(seed), TARGET_SEED_OFFSET + seed),
        f"hydra.run.dir={run_dir}",
    ]


def best_so_far(distances: list[float | None]) -> list[float]:
    """Running minimum of the trial distances (a failed trial, None, keeps the best)."""
    out, best = [], math.inf
    for d in distances:
        if d is not None:
            best = min(best, d)
        out.append(best)
    return out


def trials_to_reach(curve: list[float], level: float) -> int | None:
    """Trials (counting the start trial 0) until the best distance is <= ``level``; None if
    never within the budget."""
    for i, value in enumerate(curve):
        if value <= level:
            return i + 1
    return None


def trial_distances(run_dir: Path, study_name: str = "gen_loop") -> list[float | None]:
    """Each trial's distance in trial order, from the run's Optuna study (None: failed); an
    advised round's study is named after the first's (``gen_loop-advised``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{run_dir / 'optuna.db'}")
    trials = sorted(study.trials, key=lambda t: t.number)
    return [
        float(t.user_attrs["distance"])
        if t.state == optuna.trial.TrialState.COMPLETE and "distance" in t.user_attrs
        else None
        for t in trials
    ]


def run_loop(cmd: list[str], run_dir: Path, label: str) -> tuple[dict[str, Any], float, str]:
    """Run ``cmd`` (a ``gen_loop run`` into ``run_dir``) from the repository, its output kept
    in ``run_dir/stdout.log``; its summary, wall time and stdout, or exit naming ``label``."""
    return run_gen_loop(cmd, run_dir, cwd=REPO, label=label, keep_log=True)


def write_result(result: dict[str, Any], out: Path, headline: str) -> None:
    """Write one arm's ``result`` to ``out`` and print ``headline``, the trials it took to
    reach 1/1.5/2/3 x the noise floor and its wall time on one line."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    to = result["trials_to_floor"]
    print(
        f"{headline}, trials to 1/1.5/2/3 x floor {to['1']}/{to['1.5']}/{to['2']}/{to['3']}, "
        f"{result['wall_s']:.0f} s -> {out.relative_to(REPO)}",
        flush=True,
    )


def run_one(sampler: str, seed: int) -> dict[str, Any]:
    """Run the loop once and reduce it to the benchmark's results."""
    run_dir = RUNS / f"{sampler}_s{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh study, not a resumed one
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = gen_loop_command("run", *overrides(sampler, seed, run_dir))
    summary, wall, _ = run_loop(cmd, run_dir, f"{sampler} seed {seed}")
    distances = trial_distances(run_dir)
    curve = best_so_far(distances)
    floor = float(summary["noise_floor"]["mean"])
    return {
        "sampler": sampler,
        "seed": seed,
        "hidden_params": summary["target_hidden_params"],
        "target_seed": TARGET_SEED_OFFSET + seed,
        "noise_floor": floor,
        "noise_floor_std": float(summary["noise_floor"]["std"]),
        "default_distance": summary["default_distance"],
        "best_distance": summary["best_distance"],
        "best_over_floor": summary["best_distance"] / floor,
        "best_trial": summary["best_trial"],
        "best_params": summary["best_params"],
        "recovery_error": summary["recovery_error"],
        "trials_to_floor": {f"{k:g}": trials_to_reach(curve, k * floor) for k in FLOOR_MULTIPLES},
        "distances": distances,
        "n_trials": summary["n_trials"],
        "n_failed": summary["n_failed"],
        "stop_reason": summary["stop_reason"],
        "search_s": summary["timings_s"].get("search_s"),
        "wall_s": wall,
        "command": " ".join(cmd[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", choices=SAMPLERS)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--print-draws", type=int, metavar="N", nargs="?", const=5)
    args = parser.parse_args()
    if args.print_draws:
        for seed in range(args.print_draws):
            print(seed, hidden_draw(seed))
        return
    if args.sampler is None or args.seed is None:
        parser.error("--sampler and --seed are required (or --print-draws)")
    result = run_one(args.sampler, args.seed)
    write_result(
        result,
        RESULTS / f"{args.sampler}_s{args.seed}.json",
        f"{args.sampler} seed {args.seed}: best {result['best_distance']:.3f} = "
        f"{result['best_over_floor']:.2f} x floor {result['noise_floor']:.3f}",
    )


if __name__ == "__main__":
    main()
