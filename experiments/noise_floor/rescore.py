"""True distance of each run's chosen parameters on a fixed evaluation batch (parts 2-4).

Usage: .venv/bin/python experiments/noise_floor/rescore.py

For every run in results/loop_runs/: the best parameters after 100 trials, after all trials,
and where the default stop rule would have stopped (replay.py), each rendered as a 64-image
batch from scene seed 4242 (a seed no search uses) and scored at layer 14, zscore_l2, base
weights, imgsz 256 against the loop's demo target (160 images, seed 777): a common yardstick
whatever layer or metric the run searched with. Also scores the exact hidden parameters on the
same batch and the target's floor at batch 64. Writes results/rescore.json (cached per
parameter set; reruns add new runs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from replay import best_of, load_runs, replay

from gen_loop.search.convergence import trial_noise_floor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo

EVAL_SEED = 4242
EVAL_N = 64
OUT = Path(__file__).resolve().parent / "results" / "rescore.json"


def _key(params: dict[str, Any]) -> str:
    return json.dumps({k: round(float(v), 6) for k, v in sorted(params.items())})


def main() -> None:
    # The yardstick, pinned whatever the defaults become: the loop's 160-image target, base
    # weights, layer 14, zscore_l2 (fitted).
    demo = load_demo(["embedder.weights=base", "embedder.layers=[14]", "score.metric=zscore_l2"])
    scorer, hidden = demo.scorer, demo.hidden
    n_target = len(demo.target.images.images)
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    cache: dict[str, float] = old.get("cache", {})

    def true_distance(params: dict[str, Any]) -> float:
        key = _key(params)
        if key not in cache:
            cache[key] = scorer.score(demo.embed_at({**hidden, **params}, EVAL_N, EVAL_SEED))
        return cache[key]

    floor = scorer.noise_floor(EVAL_N, 50, np.random.default_rng(0))
    out: dict[str, Any] = {
        "eval_seed": EVAL_SEED,
        "eval_n": EVAL_N,
        "floor_mean": trial_noise_floor(
            floor.mean, floor.batch_size, n_target, EVAL_N, "zscore_l2"
        ),
        "floor_std": floor.std,
        "exact": true_distance(hidden),
        "runs": {},
    }
    for name, run in load_runs().items():
        stop = replay(run)
        rows = {"stop": (stop.best, stop.best_params), "all": best_of(run)}
        if len(run["trials"]) > 100:
            rows["100"] = best_of(run, 100)
        out["runs"][name] = {
            which: {"search_best": best, "params": params, "true": true_distance(params)}
            for which, (best, params) in rows.items()
        }
        print(name, {k: round(v["true"], 3) for k, v in out["runs"][name].items()})
    out["cache"] = cache
    OUT.write_text(json.dumps(out, indent=1))
    print(f"exact parameters: {out['exact']:.4f}, floor at {EVAL_N}: {out['floor_mean']:.4f}")


if __name__ == "__main__":
    main()
