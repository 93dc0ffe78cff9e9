"""The noise floor as a function of trial batch size B and target size N (issue 4, part 1).

Usage: .venv/bin/python experiments/noise_floor/floor_study.py [--splits 50]

Renders a 640-image demo target (the hidden parameters of conf/target/demo.yaml, scene seed 777,
so its first 160 images are the loop's target) and a 640-image pool rendered with the same
hidden parameters from scene seed 0 (the loop's scene seed: its first B images are exactly what
a trial at the exact parameters renders), embeds both once with the loop's embedder (the base
YOLOv7-tiny, layers 14, 21 and 28 in one forward pass, imgsz 256; all built by
``experiments/_demo.py`` from conf/), and for B in {8..128}, N in {40..640}:

* target floor: the loop's scorer (``score.metric=<metric>``) fitted on ``target[:N]``, its
  ``noise_floor(B, splits, rng)`` (what the loop computes), with the zscore_l2 theory
  ``sqrt(1/B + 1/(N - B))``;
* exact-parameter floor: B images drawn at random from the pool (fresh scenes) scored against
  the scorer fitted on all N target images (as a trial is scored) -- the best any trial can
  score on average;
* common-seed value: the first B pool images (scene seed 0, what the loop renders).

Writes experiments/noise_floor/results/floor_study.json (embeddings cached in /tmp).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import build_demo_scorer, compose_run, load_demo

N_MAX = 640
BATCHES = (8, 16, 32, 64, 128)
TARGET_SIZES = (40, 80, 160, 320, 640)
#: Column ranges of each layer in the concatenated [14, 21, 28] embedding (128/256/512 channels).
LAYER_COLUMNS = {14: (0, 128), 21: (128, 384), 28: (384, 896)}
CACHE = Path("/tmp/gen_loop_noise_floor_embeddings.npz")
OUT = Path(__file__).parent / "results" / "floor_study.json"


def embeddings() -> tuple[np.ndarray, np.ndarray]:
    """(target, pool) embeddings at layers 14+21+28, shape (640, 896) each; cached."""
    if CACHE.exists():
        data = np.load(CACHE)
        return data["target"], data["pool"]
    t0 = time.perf_counter()
    # The loop's demo target at N_MAX images (scene seed target.demo.seed), embedded with it.
    demo = load_demo(["embedder.layers=[14,21,28]", f"target.demo.n={N_MAX}"])
    assert demo.target_embeddings is not None
    target = demo.target_embeddings
    pool = demo.embed_at(demo.hidden, N_MAX, demo.cfg.search.scene_seed)
    print(f"rendered and embedded 2 x {N_MAX} images in {time.perf_counter() - t0:.1f} s")
    np.savez(CACHE, target=target, pool=pool)
    return target, pool


def study(
    target: np.ndarray, pool: np.ndarray, metric: str, splits: int, seed: int
) -> list[dict[str, object]]:
    """One row per (B, N): target floor, exact-parameter floor, common-seed value."""
    rows: list[dict[str, object]] = []
    rng = np.random.default_rng(seed)
    cfg = compose_run([f"score.metric={metric}"])
    for n in TARGET_SIZES:
        scorer = build_demo_scorer(cfg).fit(target[:n])
        for b in BATCHES:
            floor = scorer.noise_floor(b, splits, rng)
            exact = [
                scorer.score(pool[rng.choice(len(pool), b, replace=False)]) for _ in range(splits)
            ]
            used = floor.batch_size
            rows.append(
                {
                    "B": b,
                    "N": n,
                    "B_used": used,
                    "floor_mean": floor.mean,
                    "floor_std": floor.std,
                    "floor_values": list(floor.values),
                    "theory_split": float(np.sqrt(1 / used + 1 / (n - used))),
                    "theory_trial": float(np.sqrt(1 / b + 1 / n)),
                    "exact_mean": float(np.mean(exact)),
                    "exact_std": float(np.std(exact, ddof=1)),
                    "exact_values": exact,
                    "common_seed": scorer.score(pool[:b]),
                }
            )
            print(
                f"{metric} N={n:4d} B={b:4d} (used {used:3d}): floor {floor.mean:.4f} "
                f"± {floor.std:.4f}, theory {rows[-1]['theory_split']:.4f}; exact params "
                f"{rows[-1]['exact_mean']:.4f} ± {rows[-1]['exact_std']:.4f}; "
                f"seed-0 batch {rows[-1]['common_seed']:.4f}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=50)
    args = parser.parse_args()
    target, pool = embeddings()
    result: dict[str, object] = {"splits": args.splits, "layers": {}}
    for layer, (lo, hi) in LAYER_COLUMNS.items():
        metrics = ("zscore_l2", "l2") if layer == 14 else ("zscore_l2",)
        result["layers"][str(layer)] = {  # type: ignore[index]
            m: study(target[:, lo:hi], pool[:, lo:hi], m, args.splits, seed=layer) for m in metrics
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
