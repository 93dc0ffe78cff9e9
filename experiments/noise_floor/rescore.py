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
from pathlib import Path
from typing import Any

import numpy as np
from floor_study import HIDDEN, TARGET_SEED
from replay import best_of, load_runs, replay

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop.embedder import YoloEmbedder, shipped_base_weights
from gen_loop.generator import ProceduralGenerator
from gen_loop.score import CentroidScorer
from gen_loop.search.convergence import trial_noise_floor

EVAL_SEED = 4242
EVAL_N = 64
OUT = Path(__file__).resolve().parent / "results" / "rescore.json"


def _key(params: dict[str, Any]) -> str:
    return json.dumps({k: round(float(v), 6) for k, v in sorted(params.items())})


def main() -> None:
    configure_offline(default_cache_dir())
    configure_ultralytics()
    gen = ProceduralGenerator(256, 256)
    embedder = YoloEmbedder("yolov7-tiny", shipped_base_weights(), [14], 256, "cpu")
    scorer = CentroidScorer("zscore_l2").fit(
        embedder.embed(gen.generate(HIDDEN, 160, TARGET_SEED).images)
    )
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    cache: dict[str, float] = old.get("cache", {})

    def true_distance(params: dict[str, Any]) -> float:
        key = _key(params)
        if key not in cache:
            batch = gen.generate({**HIDDEN, **params}, EVAL_N, EVAL_SEED)
            cache[key] = scorer.score(embedder.embed(batch.images))
        return cache[key]

    floor = scorer.noise_floor(EVAL_N, 50, np.random.default_rng(0))
    out: dict[str, Any] = {
        "eval_seed": EVAL_SEED,
        "eval_n": EVAL_N,
        "floor_mean": trial_noise_floor(floor.mean, floor.batch_size, 160, EVAL_N, "zscore_l2"),
        "floor_std": floor.std,
        "exact": true_distance(HIDDEN),
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
