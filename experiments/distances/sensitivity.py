"""Score the embedded batches of embed.py with every distance; tabulate and plot sensitivity.

Usage: .venv/bin/python experiments/distances/embed.py      # once: render + embed (~1-2 min)
       .venv/bin/python experiments/distances/sensitivity.py  # score, print tables, write PNGs

For each metric (fitted on the 160-image demo target, as the loop does):

- noise floor: the Scorer's own (32 held-out target samples against a fresh fit on the other
  128, 50 splits): mean and std;
- at hidden: the score of 32 images rendered with the exact hidden parameters, scene seeds 0..7,
  as a multiple of the floor (the floor should describe a perfect camera);
- SNR per parameter: (score at +-10 % of the range from the hidden value, mean of scene seeds
  0..2, minus the floor mean) / floor std, on the worse side;
- monotonicity: along the seed-0 sweep, the share of 10 %-steps away from the hidden value on
  which the score rises;
- the response to a joint shift of all 6 parameters by f of their ranges;
- time per score of a 32-sample batch, and per noise floor (50 splits).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt
import numpy as np

from gen_loop.score import (
    CentroidScorer,
    FrechetScorer,
    MMDScorer,
    PRDCScorer,
    Scorer,
)

METRICS: dict[str, Callable[[], Scorer]] = {
    "zscore_l2": CentroidScorer,
    "l2": lambda: CentroidScorer("l2"),
    "cosine": lambda: CentroidScorer("cosine"),
    "frechet": FrechetScorer,
    "frechet_s0": lambda: FrechetScorer(0.0),
    "mmd_rbf": MMDScorer,
    "kid_poly": lambda: MMDScorer("poly"),
    "prdc": PRDCScorer,
}
PARAMS = ("color_temp_k", "red_std_scale", "exposure_ev", "contrast", "vignetting", "fisheye")
SPLITS = 50


def _time(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def score_all(emb: dict[str, np.ndarray], batches: list[dict]) -> dict[str, dict]:
    """Per metric: floor, timings and the score of every batch."""
    target = emb["target"].astype(np.float64)
    out: dict[str, dict] = {}
    for name, make in METRICS.items():
        t0 = time.perf_counter()
        scorer = make().fit(target)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        floor = scorer.noise_floor(32, SPLITS, np.random.default_rng(0))
        floor_s = time.perf_counter() - t0
        scores = [scorer.score(emb[f"b{i}"].astype(np.float64)) for i in range(len(batches))]
        probe = emb["b0"].astype(np.float64)
        out[name] = {
            "floor_mean": floor.mean,
            "floor_std": floor.std,
            "floor_values": list(floor.values),
            "fit_s": fit_s,
            "floor_s": floor_s,
            "score_ms": 1e3 * _time(partial(scorer.score, probe), 20),
            "sample_ms": 1e3 * _time(partial(scorer.sample_distances, probe), 20),
            "scores": scores,
        }
        print(f"{name}: floor {floor.mean:.4g} +- {floor.std:.3g}, {floor_s:.2f} s", flush=True)
    return out


def _pick(batches: list[dict], scores: list[float], **match: object) -> list[float]:
    return [
        s
        for b, s in zip(batches, scores, strict=True)
        if all(b.get(k) == v for k, v in match.items())
    ]


def analyse(batches: list[dict], res: dict[str, dict]) -> dict[str, dict]:
    """Summary numbers per metric (see the module docstring)."""
    table: dict[str, dict] = {}
    for name, r in res.items():
        mean, std, sc = r["floor_mean"], r["floor_std"], r["scores"]
        hidden = _pick(batches, sc, kind="hidden")
        row: dict[str, object] = {
            "floor": (mean, std),
            "hidden_over_floor": (float(np.mean(hidden)) / mean, float(np.std(hidden)) / mean),
            "hidden_z": (float(np.mean(hidden)) - mean) / std,
            "score_ms": r["score_ms"],
            "floor_s": r["floor_s"],
        }
        snr, mono = {}, {}
        for p in PARAMS:
            sides = [
                float(np.mean(_pick(batches, sc, kind="sweep", param=p, step=k))) for k in (-1, 1)
            ]
            snr[p] = min((d - mean) / std for d in sides)
            up, steps = 0, 0
            for direction in (-1, 1):
                curve = [
                    _pick(batches, sc, kind="sweep", param=p, step=direction * k, seed=0)
                    for k in range(11)
                ]
                vals = [c[0] for c in curve if c]
                up += sum(b > a for a, b in itertools.pairwise(vals))
                steps += len(vals) - 1
            mono[p] = (up, steps)
        row["snr"] = snr
        row["monotone"] = mono
        row["joint_z"] = {
            f: (float(np.mean(_pick(batches, sc, kind="joint", fraction=f))) - mean) / std
            for f in (0.025, 0.05, 0.1, 0.2, 0.3, 0.4)
        }
        table[name] = row
    return table


def _header(columns: list[str]) -> str:
    return "| metric | " + " | ".join(columns) + " |\n" + "|---" * (len(columns) + 1) + "|"


def print_tables(table: dict[str, dict]) -> None:
    print(
        "\n| metric | floor mean ± std (B=32) | exact params / floor (8 scene seeds) | "
        "time per score (ms) | noise floor, 50 splits (s) |\n|---|---|---|---|---|"
    )
    for name, row in table.items():
        m, s = row["floor"]
        h, hs = row["hidden_over_floor"]
        print(
            f"| {name} | {m:.4g} ± {s:.2g} | {h:.2f} ± {hs:.2f} | {row['score_ms']:.2f} | "
            f"{row['floor_s']:.2f} |"
        )
    print(
        "\nSNR: (score at ±10 % of the range, worse side, mean of 3 scene seeds − floor mean) / "
        "floor std\n"
    )
    print(_header([*PARAMS, "min"]))
    for name, row in table.items():
        vals = [row["snr"][p] for p in PARAMS]
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {min(vals):.1f} |")
    print("\nMonotone steps (score rises on each 10 % step away from the hidden value, seed 0)\n")
    print(_header([*PARAMS, "total"]))
    for name, row in table.items():
        cells = [f"{u}/{n}" for u, n in (row["monotone"][p] for p in PARAMS)]
        up = sum(row["monotone"][p][0] for p in PARAMS)
        n = sum(row["monotone"][p][1] for p in PARAMS)
        print(f"| {name} | " + " | ".join(cells) + f" | {up}/{n} |")
    print(
        "\nJoint shift of all 6 parameters by f of their range: (score − floor mean) / floor std\n"
    )
    fs = (0.025, 0.05, 0.1, 0.2, 0.3, 0.4)
    print(_header([f"f={f:g}" for f in fs]))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row['joint_z'][f]:.1f}" for f in fs) + " |")


def plot(batches: list[dict], res: dict[str, dict], table: dict[str, dict], out: Path) -> None:
    shown = [m for m in res if m != "l2"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    hidden = {b["param"]: b["value"] for b in batches if b["kind"] == "sweep" and b["step"] == 0}
    for ax, p in zip(axes.flat, PARAMS, strict=True):
        for name in shown:
            r = res[name]
            pts = sorted(
                (b["value"], s)
                for b, s in zip(batches, r["scores"], strict=True)
                if b["kind"] == "sweep" and b["param"] == p and b["seed"] == 0
            )
            xs = [x for x, _ in pts]
            zs = [(s - r["floor_mean"]) / r["floor_std"] for _, s in pts]
            ax.plot(xs, zs, marker="o", ms=3, label=name)
        ax.axvline(hidden[p], color="k", ls=":", lw=1)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_yscale("symlog", linthresh=3)
        ax.set_title(f"{p} (hidden {hidden[p]:g})")
        ax.set_xlabel(p)
        ax.set_ylabel("(score − floor) / floor std")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(
        "Response of each distance to one parameter (others at hidden values), "
        "batch 32, scene seed 0, base detector layer 14"
    )
    fig.tight_layout()
    fig.savefig(out / "sweeps.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    fs = (0.0, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4)
    for name in shown:
        row = table[name]
        z0 = row["hidden_z"]
        ax.plot(fs, [z0] + [row["joint_z"][f] for f in fs[1:]], marker="o", label=name)
    ax.set_xscale("symlog", linthresh=0.025)
    ax.set_yscale("symlog", linthresh=3)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("joint shift f (fraction of each parameter's range)")
    ax.set_ylabel("(score − floor) / floor std, mean of 3 scene seeds")
    ax.set_title("Response to a growing shift of all 6 parameters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "joint_shift.png", dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    meta = json.loads((args.results / "batches.json").read_text())
    batches = meta["batches"]
    with np.load(args.results / "embeddings.npz") as data:
        emb = {k: data[k] for k in data.files}
    res = score_all(emb, batches)
    table = analyse(batches, res)
    (args.results / "scores.json").write_text(
        json.dumps({"scores": res, "table": table}, indent=1)
    )
    print_tables(table)
    plot(batches, res, table, Path(__file__).parent)


if __name__ == "__main__":
    main()
