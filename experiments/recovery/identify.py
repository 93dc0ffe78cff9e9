"""Which camera parameters can the embedding identify? A finite-difference Jacobian of the
z-scored mean embedding at each hidden draw.

Usage: .venv/bin/python experiments/recovery/identify.py [--seeds 0 1 2 3 4] [--step 0.05]

For draw ``i`` (the same hidden parameters and target as ``run.py --seed i``), the target is
embedded (layer 14, as the loop does) and the scorer fitted on it. The trial-side vector is
``z(p) = (mean_b f(x_b(p)) - mu_T) / sigma_T / sqrt(D)``, whose norm is the loop's distance,
with ``x_b(p)`` the 32 images of scene seed 0 rendered at parameters ``p``. Its Jacobian with
respect to each parameter in units of its search range comes from central differences with a
step of ``--step`` of the range (2 x 6 + 1 batches). Reported per draw:

- ``at_truth``: the distance at the exact hidden parameters, in noise floors (what a perfect
  search would see);
- ``sensitivity``: ``||J_j|| * 0.05 / floor``, the distance a 5 %-of-range move of parameter
  ``j`` alone adds, in noise floors (added in quadrature to the noise, so about 1 or more is
  needed to see a 5 % error);
- ``cosine``: the cosine between Jacobian columns (near +-1: the two parameters move the
  embedding the same way and trade off);
- ``singular``: singular values of ``J`` in the same units (5 % move / floor) and the parameter
  combination of the smallest one (the direction the embedding sees least);
- ``optimum_offset``: ``-pinv(J) z(truth)``, where the linearised distance has its minimum for
  this scene seed, as a fraction of each range: the error even a perfect optimiser makes;
- ``noise_spread``: the standard deviation over the 20 noise-floor splits of
  ``-pinv(J) z_split`` (z of a 32-image target subset against the rest): how far the sampling
  noise of a batch moves the minimum, per parameter, as a fraction of its range.

Results: ``experiments/recovery/results/identify_s<i>.json``. Run it under the shared CPU lock.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from run import TARGET_SEED_OFFSET, hidden_draw, target_overrides  # this folder's run.py

from gen_loop.score.distances import feature_stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import Demo, load_demo

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FLOOR_SPLITS = 20  # conf/score/centroid.yaml noise_floor_splits when these results were made
REPORT_STEP = 0.05  # sensitivities are given for a move of 5 % of the range


def z_vector(batch_emb: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The z-scored centroid shift whose norm is the zscore_l2 distance."""
    return (batch_emb.mean(axis=0) - mean) / scale / math.sqrt(batch_emb.shape[1])


def draw_demo(seed: int) -> Demo:
    """The loop's components for hidden draw ``seed`` (the target of ``run.py --seed``), its
    scorer fitted on the target."""
    return load_demo(target_overrides(hidden_draw(seed), TARGET_SEED_OFFSET + seed))


def analyse(seed: int, step: float, demo: Demo) -> dict:
    """The identifiability numbers of hidden draw ``seed`` (``demo = draw_demo(seed)``)."""
    space = demo.ranges
    hidden = hidden_draw(seed)
    batch, scene_seed = demo.cfg.search.batch_size, demo.cfg.search.scene_seed
    target = np.asarray(demo.target_embeddings, dtype=np.float64)
    scorer = demo.scorer
    floor = scorer.noise_floor(batch, FLOOR_SPLITS, np.random.default_rng(seed)).mean
    mean, scale = feature_stats(target)

    def embed_at(params: dict[str, float]) -> np.ndarray:
        return np.asarray(demo.embed_at(params, batch, scene_seed), dtype=np.float64)

    def z_at(params: dict[str, float]) -> np.ndarray:
        return z_vector(embed_at(params), mean, scale)

    truth_emb = embed_at(hidden)
    z0 = z_vector(truth_emb, mean, scale)
    at_truth = float(np.linalg.norm(z0))
    if not math.isclose(at_truth, scorer.score(truth_emb), rel_tol=1e-9):  # same maths as loop
        raise AssertionError(f"z-vector norm {at_truth} != scorer {scorer.score(truth_emb)}")
    names = list(space)
    cols = []
    for name in names:
        low, high = space[name]
        h = step * (high - low)
        plus = z_at({**hidden, name: hidden[name] + h})
        minus = z_at({**hidden, name: hidden[name] - h})
        cols.append((plus - minus) / (2 * step))  # per unit of range
    jac = np.stack(cols, axis=1)  # (D, P)
    norms = np.linalg.norm(jac, axis=0)
    cosine = (jac.T @ jac) / np.outer(norms, norms)
    _, sing, vt = np.linalg.svd(jac, full_matrices=False)
    pinv = np.linalg.pinv(jac)
    offset = -pinv @ z0
    residual = float(np.linalg.norm(z0 + jac @ offset))
    # Noise vectors of real target batches (the noise-floor splits) mapped to parameter shifts.
    rng = np.random.default_rng(seed)
    shifts = []
    for _ in range(FLOOR_SPLITS):
        order = rng.permutation(len(target))
        ref_mean, ref_scale = feature_stats(target[order[batch:]])
        shifts.append(-pinv @ z_vector(target[order[:batch]], ref_mean, ref_scale))
    spread = np.std(np.stack(shifts), axis=0, ddof=1)
    per = REPORT_STEP / floor
    return {
        "seed": seed,
        "hidden_params": hidden,
        "noise_floor": floor,
        "step": step,
        "at_truth_over_floor": at_truth / floor,
        "linear_min_over_floor": residual / floor,
        "sensitivity": {n: float(norms[i] * per) for i, n in enumerate(names)},
        "cosine": {
            a: {b: float(cosine[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)
        },
        "singular": [float(s * per) for s in sing],
        "weakest_direction": {n: float(vt[-1, i]) for i, n in enumerate(names)},
        "optimum_offset": {n: float(offset[i]) for i, n in enumerate(names)},
        "noise_spread": {n: float(spread[i]) for i, n in enumerate(names)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--step", type=float, default=0.05, help="fraction of each range")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        res: dict[str, Any] = analyse(seed, args.step, draw_demo(seed))
        (RESULTS / f"identify_s{seed}.json").write_text(json.dumps(res, indent=1) + "\n")
        sens = ", ".join(f"{k} {v:.2f}" for k, v in res["sensitivity"].items())
        off = ", ".join(f"{k} {v:+.3f}" for k, v in res["optimum_offset"].items())
        print(
            f"draw {seed}: truth {res['at_truth_over_floor']:.2f} x floor; 5% move / floor: "
            f"{sens}; singular {[round(s, 2) for s in res['singular']]}; optimum offset {off}",
            flush=True,
        )


if __name__ == "__main__":
    main()
