"""Tables and plots of the noise-floor study from the JSON in results/ (no CPU-heavy work).

Usage: .venv/bin/python experiments/noise_floor/report.py  (prints Markdown, writes PNGs)
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from replay import TARGET_SIZE, best_of, load_runs, recovery_error, replay

from gen_loop.search.convergence import trial_noise_floor

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _theory(b: int, n: int) -> float:
    return float(np.sqrt((1 / b + 1 / n) * n / (n - 3)))


# --- part 1 -----------------------------------------------------------------------------------


def part1() -> None:
    data = json.loads((RESULTS / "floor_study.json").read_text())
    rows = data["layers"]["14"]["zscore_l2"]
    print("## 1. Noise floor vs batch size B and target size N (layer 14, zscore_l2)\n")
    print(
        "| N | B | B used | floor (split) | ± std | sqrt(1/B+1/(N-B)) | floor rescaled to trial "
        "| exact params, fresh scenes | ± std | exact / rescaled floor | seed-0 batch / rescaled |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        b, n, u = r["B"], r["N"], r["B_used"]
        resc = trial_noise_floor(r["floor_mean"], u, n, b, "zscore_l2")
        print(
            f"| {n} | {b} | {u} | {r['floor_mean']:.3f} | {r['floor_std']:.3f} "
            f"| {np.sqrt(1 / u + 1 / (n - u)):.3f} | {resc:.3f} | {r['exact_mean']:.3f} "
            f"| {r['exact_std']:.3f} | {r['exact_mean'] / resc:.2f} "
            f"| {r['common_seed'] / resc:.2f} |"
        )
    print()
    print("Exact parameters with fresh scenes, distance / rescaled floor, N >= 160, B <= 64:\n")
    print("| layer | metric | mean | std | q50 | q90 | q95 | P(<= 1.0) | P(<= 1.2) | P(<= 1.5) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for layer, metrics in data["layers"].items():
        for metric, rs in metrics.items():
            ratios = np.concatenate(
                [
                    np.array(r["exact_values"])
                    / trial_noise_floor(r["floor_mean"], r["B_used"], r["N"], r["B"], metric)
                    for r in rs
                    if r["N"] >= 160 and r["B"] <= 64
                ]
            )
            q = np.quantile(ratios, [0.5, 0.9, 0.95])
            print(
                f"| {layer} | {metric} | {ratios.mean():.2f} | {ratios.std():.2f} | {q[0]:.2f} "
                f"| {q[1]:.2f} | {q[2]:.2f} | {(ratios <= 1).mean():.2f} "
                f"| {(ratios <= 1.2).mean():.2f} | {(ratios <= 1.5).mean():.2f} |"
            )
    print()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    ax = axes[0]
    colours = plt.cm.viridis(np.linspace(0, 0.9, 5))
    for colour, n in zip(colours, (40, 80, 160, 320, 640), strict=True):
        rs = [r for r in rows if r["N"] == n]
        bs = [r["B"] for r in rs]
        ax.errorbar(
            bs,
            [r["floor_mean"] for r in rs],
            [r["floor_std"] for r in rs],
            color=colour,
            marker="o",
            capsize=3,
            label=f"target floor, N={n}",
        )
        ax.plot(bs, [r["exact_mean"] for r in rs], color=colour, ls=":", marker="x")
        ax.plot(
            bs,
            [_theory(b, n) for b in bs],
            color=colour,
            ls="--",
            lw=0.8,
        )
    ax.plot([], [], "k:", marker="x", label="exact params, fresh scenes (vs all N)")
    ax.plot([], [], "k--", lw=0.8, label="theory for a trial: sqrt((1/B+1/N) N/(N-3))")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size B",
        ylabel="zscore_l2 distance",
        title="Noise floor (layer 14): split floor vs what a trial scores",
    )
    ax.set_xticks([8, 16, 32, 64, 128], ["8", "16", "32", "64", "128"])
    ax.legend(fontsize=7)
    ax = axes[1]
    r32 = next(r for r in rows if r["N"] == 160 and r["B"] == 32)
    resc = trial_noise_floor(r32["floor_mean"], 32, 160, 32, "zscore_l2")
    bins = np.linspace(0, 2.5, 26)
    ax.hist(np.array(r32["floor_values"]) / resc, bins, alpha=0.6, label="target splits")
    ax.hist(np.array(r32["exact_values"]) / resc, bins, alpha=0.6, label="exact params, fresh")
    ax.axvline(r32["common_seed"] / resc, color="k", label="exact params, scene seed 0")
    for f in (1.0, 1.5):
        ax.axvline(f, color="r", ls="--", lw=0.8)
    ax.set(
        xlabel="distance / floor",
        ylabel="count",
        title="Spread at the loop's setting (N=160, B=32)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "floor_vs_batch.png", dpi=110)
    print("![noise floor](floor_vs_batch.png)\n")


# --- parts 2-4 --------------------------------------------------------------------------------


def _mean_err(run: dict[str, Any], params: dict[str, Any]) -> float:
    return statistics.mean(recovery_error(run, params).values())


def _rescore() -> dict[str, Any]:
    path = RESULTS / "rescore.json"
    return json.loads(path.read_text()) if path.exists() else {"runs": {}}


def _after_stop(run: dict[str, Any], stop_trial: int, best: float) -> tuple[int, int]:
    """Improvements after the stop: how many beat the running best by > 1 % and by > 10 %."""
    small = big = 0
    running = best
    for t in run["trials"][stop_trial:]:
        d = t["distance"]
        if d is None:
            continue
        small += d < running * 0.99
        big += d < running * 0.9
        running = min(running, d)
    return small, big


RULES: list[tuple[str, dict[str, Any]]] = [
    ("patience 30 (old default)", {"patience": 30}),
    ("patience 45", {"patience": 45}),
    ("patience 60", {"patience": 60}),
    ("patience 90", {"patience": 90}),
    ("patience 30, min_rel 0.05", {"patience": 30, "min_rel_improvement": 0.05}),
]


def part2(runs: dict[str, dict[str, Any]], rescore: dict[str, Any]) -> None:
    print("## 2. Where the stop rule stops (replayed on 200-trial histories, no early stop)\n")
    long = {k: v for k, v in runs.items() if k.startswith("common_l14_zscore")}
    print(
        "| run | trial floor | best at 100 (x floor) | best at 200 (x floor) | recovery error "
        "at 100 / 200 | true distance at 100 / 200 |"
    )
    print("|---|---|---|---|---|---|")
    for name, run in long.items():
        floor = replay(run).floor
        b100, p100 = best_of(run, 100)
        b200, p200 = best_of(run)
        true = rescore["runs"].get(name, {})
        t100 = true.get("100", {}).get("true", float("nan"))
        t200 = true.get("all", {}).get("true", float("nan"))
        print(
            f"| {name} | {floor:.3f} | {b100:.3f} ({b100 / floor:.1f}) | {b200:.3f} "
            f"({b200 / floor:.1f}) | {_mean_err(run, p100):.3f} / {_mean_err(run, p200):.3f} "
            f"| {t100:.3f} / {t200:.3f} |"
        )
    print()
    print(
        "Replayed rules (floor_factor 1.5; it never fires here). Cell: stop trial, best at stop "
        "(x floor), improvements after the stop > 1 % / > 10 %.\n"
    )
    print("| rule | " + " | ".join(long) + " |")
    print("|---" * (len(long) + 1) + "|")
    for label, kw in RULES:
        cells = []
        for run in long.values():
            stop = replay(run, floor_factor=1.5, **kw)
            small, big = _after_stop(run, stop.trial, stop.best)
            where = stop.trial if not stop.reason.startswith("budget") else f"none ({stop.trial})"
            cells.append(f"{where}: {stop.best / stop.floor:.1f}x, {small}/{big}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, run in long.items():
        stop = replay(run, floor_factor=1.5, patience=30)
        ds = [t["distance"] or np.nan for t in run["trials"]]
        (line,) = ax.plot(np.fmin.accumulate(ds) / stop.floor, label=name)
        if not stop.reason.startswith("budget"):
            ax.axvline(stop.trial, color=line.get_color(), ls=":", lw=1)
        new = replay(run)
        if not new.reason.startswith("budget"):
            ax.axvline(new.trial, color=line.get_color(), ls="--", lw=1)
    ax.set(
        yscale="log",
        xlabel="trial",
        ylabel="best distance / trial floor",
        title="Best so far (dotted: stop at patience 30; dashed: the new default)",
    )
    ax.axhline(1.5, color="k", lw=0.8, ls="--", label="floor_factor 1.5")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "convergence.png", dpi=110)
    print("![convergence](convergence.png)\n")


def _group(name: str) -> str:
    return re.sub(r"_s\d+$", "", name)


def comparison(
    title: str,
    runs: dict[str, dict[str, Any]],
    rescore: dict[str, Any],
    groups: list[str],
    seeds: tuple[int, ...] = (0, 1, 2),
) -> None:
    print(f"{title}\n")
    print(
        "| condition | seeds | search best (x its floor) | true distance at layer 14 "
        "(x floor 64) | mean recovery error | per seed: true / recovery error |"
    )
    print("|---|---|---|---|---|---|")
    floor64 = rescore.get("floor_mean", float("nan"))
    for group in groups:
        names = [n for n in runs if _group(n) == group and int(n.rsplit("_s", 1)[1]) in seeds]
        if not names:
            continue
        bests, trues, errs, cells = [], [], [], []
        for name in names:
            run = runs[name]
            best, params = best_of(run, 100)
            bests.append(best / replay(run).floor)
            key = "100" if len(run["trials"]) > 100 else "all"
            true = rescore["runs"].get(name, {}).get(key, {}).get("true", float("nan"))
            trues.append(true)
            errs.append(_mean_err(run, params))
            cells.append(f"{true:.3f} / {errs[-1]:.3f}")
        print(
            f"| {group} | {len(names)} | {statistics.mean(bests):.1f} "
            f"| {statistics.mean(trues):.3f} ({statistics.mean(trues) / floor64:.1f}) "
            f"| {statistics.mean(errs):.3f} | {'; '.join(cells)} |"
        )
    print()


def part3b() -> None:
    path = RESULTS / "crn_near_floor.json"
    if not path.exists():
        return
    data = json.loads(path.read_text())
    exact = np.array(data["exact"]) / data["floor"]
    print(
        f"### Near the floor (crn_near_floor.py, {len(data['seeds'])} scene seeds, batch 32; "
        f"exact parameters {exact.mean():.2f} +- {exact.std():.2f} x floor)\n"
    )
    print("| parameter | step (of range) | step batch / floor | ranked right: common | fresh |")
    print("|---|---|---|---|---|")
    for r in data["rows"]:
        print(
            f"| {r['param']} | {r['step']:.2f} | {r['moved_over_floor']:.2f} "
            f"| {r['common_correct']:.2f} | {r['fresh_correct']:.2f} |"
        )
    print()


def main() -> None:
    part1()
    runs = load_runs()
    rescore = _rescore()
    if rescore.get("exact"):
        print(
            f"Yardstick (parts 3-4): 64 images, scene seed 4242, layer 14 zscore_l2 vs the "
            f"160-image target; floor at 64 = {rescore['floor_mean']:.3f}, exact hidden "
            f"parameters = {rescore['exact']:.3f}.\n"
        )
    part2(runs, rescore)
    comparison(
        "## 3. Common vs fresh scene seeds (TPE, 100 trials)",
        runs,
        rescore,
        ["common_l14_zscore", "fresh_l14_zscore"],
    )
    part3b()
    comparison(
        "## 4. Layer x standardisation (TPE, 100 trials, common seeds, search seeds 0-2)",
        runs,
        rescore,
        [f"common_l{layer}_{m}" for layer in (14, 21, 28) for m in ("zscore", "l2")],
        seeds=(0, 1, 2),
    )
    print(f"(target size {TARGET_SIZE}; recovery error = mean |found - hidden| / range)")


if __name__ == "__main__":
    main()
