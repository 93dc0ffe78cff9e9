"""What common random numbers buy near the floor (issue 4, part 3, complement to the loop runs).

Usage: .venv/bin/python experiments/noise_floor/crn_near_floor.py [--seeds 6]

Near the hidden parameters the search must tell the exact parameters from a small step away.
For each searched parameter, a step of 5 % and 10 % of its search range from the hidden value
(towards the middle of the range) is rendered from K scene seeds (32 images each, layer 14,
zscore_l2, the loop's 160-image target), as is the exact parameter set. Common random numbers:
the comparison d(step; s) > d(exact; s) on the *same* seed s; fresh scenes: d(step; s) vs
d(exact; s') on *different* seeds. Reports the fraction of comparisons that rank the exact
parameters first, and the distances over the floor. Writes results/crn_near_floor.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from gen_loop.search.convergence import trial_noise_floor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo

STEPS = (0.05, 0.10)
OUT = Path(__file__).resolve().parent / "results" / "crn_near_floor.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    demo = load_demo()  # the loop's 160-image target, layer 14, zscore_l2 (fitted)
    scorer, hidden, batch = demo.scorer, demo.hidden, demo.cfg.search.batch_size
    n_target = len(demo.target.images.images)
    nf = scorer.noise_floor(batch, 200, np.random.default_rng(0))
    floor = trial_noise_floor(nf.mean, nf.batch_size, n_target, batch, demo.cfg.score.metric)
    seeds = list(range(100, 100 + args.seeds))

    def dist(params: dict[str, float], seed: int) -> float:
        return scorer.score(demo.embed_at(params, batch, seed))

    exact = [dist(hidden, s) for s in seeds]
    rows = []
    for name, (lo, hi) in demo.ranges.items():
        for step in STEPS:
            sign = 1.0 if hidden[name] < (lo + hi) / 2 else -1.0
            params = {**hidden, name: hidden[name] + sign * step * (hi - lo)}
            moved = [dist(params, s) for s in seeds]
            common = np.mean([m > e for m, e in zip(moved, exact, strict=True)])
            pairs = [(i, j) for i, j in itertools.product(range(len(seeds)), repeat=2) if i != j]
            fresh = np.mean([moved[i] > exact[j] for i, j in pairs])
            rows.append(
                {
                    "param": name,
                    "step": step,
                    "moved_over_floor": float(np.mean(moved) / floor),
                    "common_correct": float(common),
                    "fresh_correct": float(fresh),
                    "moved": moved,
                }
            )
            print(
                f"{name:14s} step {step:.2f}: {np.mean(moved) / floor:5.2f}x floor, correct "
                f"common {common:.2f} fresh {fresh:.2f}"
            )
    out = {"floor": floor, "seeds": seeds, "exact": exact, "rows": rows}
    ratio = np.array(exact) / floor
    print(f"exact: {ratio.mean():.2f} +- {ratio.std():.2f} x floor {floor:.3f}")
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
