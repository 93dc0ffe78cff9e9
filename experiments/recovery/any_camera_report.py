"""Tables and plots of any_camera.py's results (issue 11), written into ANY_CAMERA.md.

Usage: .venv/bin/python experiments/recovery/any_camera_report.py
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

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "any_camera"
DOC = HERE / "ANY_CAMERA.md"
PLOT = HERE / "any_camera_best_vs_trial.png"
ARMS = ("default", "tpe+lsq", "tpe", "random")
LABELS = {
    "default": "new default (vector_gp + Gauss-Newton)",
    "tpe+lsq": "old default (TPE, least squares after 50)",
    "tpe": "TPE alone",
    "random": "random",
}
IDENTIFIABLE = ("color_temp_k", "red_std_scale", "exposure_ev", "contrast", "fisheye")
MISMATCH_OFFSET = 100
UNSEARCHED = ("gamma", "saturation", "noise_std")


def load() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def trials_to_floor(r: dict[str, Any]) -> float:
    """A run's trials to 1.5x the floor; inf when it did not get there."""
    t = r["trials_to_1.5x"]
    return float("inf") if t is None else float(t)


def fmt_trials(x: float) -> str:
    """A trial count as the tables print it (">100": not reached in the budget)."""
    return ">100" if x == float("inf") else f"{x:.0f}"


def arm_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| arm | runs (cameras x seeds) | reached 1.5x floor | trials to 1.5x: median | worst "
        "| best/floor at stop: median [max] | identifiable params within 3 % / 5 % of range "
        "| vignetting error: median | trials run: median | s per trial: median |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        rs = [r for r in results if r["arm"] == arm and r["camera"] < MISMATCH_OFFSET]
        if not rs:
            continue
        cams, seeds = {r["camera"] for r in rs}, {r["seed"] for r in rs}
        trials = sorted(trials_to_floor(r) for r in rs)
        reached = sum(t != float("inf") for t in trials)
        ratios = [r["best_over_floor"] for r in rs]
        err = [max(r["recovery_error"][p] for p in IDENTIFIABLE) for r in rs]
        vig = [r["recovery_error"]["vignetting"] for r in rs]
        spt = [r["s_per_trial"] for r in rs if r.get("s_per_trial")]
        lines.append(
            f"| {LABELS[arm]} | {len(rs)} ({len(cams)} x {len(seeds)}) | {reached}/{len(rs)} "
            f"| {fmt_trials(statistics.median(trials))} | {fmt_trials(trials[-1])} "
            f"| {statistics.median(ratios):.2f} [{max(ratios):.2f}] "
            f"| {sum(e <= 0.03 for e in err)}/{len(rs)} / {sum(e <= 0.05 for e in err)}/{len(rs)} "
            f"| {statistics.median(vig):.3f} | {statistics.median(r['n_trials'] for r in rs):.0f} "
            f"| {statistics.median(spt):.2f} |"
        )
    return lines


def camera_table(results: list[dict[str, Any]]) -> list[str]:
    """Every run: trials to 1.5x floor (best/floor at the stop)."""
    by = {(r["arm"], r["camera"], r["seed"]): r for r in results}
    cams = sorted({r["camera"] for r in results if r["camera"] < MISMATCH_OFFSET})
    cols = [(a, s) for a in ARMS for s in sorted({r["seed"] for r in results if r["arm"] == a})]
    head = " | ".join(f"{a} s{s}" for a, s in cols)
    lines = [f"| camera | default/floor | {head} |", "|---" * (len(cols) + 2) + "|"]
    for c in cams:
        cells = []
        first = next(r for r in results if r["camera"] == c)
        for a, s in cols:
            r = by.get((a, c, s))
            cells.append(
                "-"
                if r is None
                else f"{fmt_trials(trials_to_floor(r))} ({r['best_over_floor']:.2f})"
            )
        lines.append(f"| {c} | {first['default_over_floor']:.1f} | " + " | ".join(cells) + " |")
    return lines


def error_table(results: list[dict[str, Any]]) -> list[str]:
    rs = [r for r in results if r["arm"] == "default" and r["camera"] < MISMATCH_OFFSET]
    params = list(rs[0]["recovery_error"]) if rs else []
    lines = [
        "| parameter | median | 90th percentile | max | within 3 % |",
        "|---|---|---|---|---|",
    ]
    for p in params:
        e = sorted(r["recovery_error"][p] for r in rs)
        p90 = e[min(len(e) - 1, int(0.9 * len(e)))]
        lines.append(
            f"| {p} | {statistics.median(e):.3f} | {p90:.3f} | {e[-1]:.3f} "
            f"| {sum(x <= 0.03 for x in e)}/{len(e)} |"
        )
    return lines


def mismatch_table(results: list[dict[str, Any]]) -> list[str]:
    rs = sorted((r for r in results if r["camera"] >= MISMATCH_OFFSET), key=lambda r: r["camera"])
    lines = [
        "| target | unsearched (hidden) | best/floor | stop | trials | last real gain "
        "| stop - gain | named | right |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rs:
        hidden = ", ".join(f"{k} {r['hidden_params'][k]:g}" for k in UNSEARCHED)
        suspects = r.get("unsearched_suspects") or []
        named = [s["name"] for s in suspects[:2] if s["share"] >= 0.1]
        right = sum(n in UNSEARCHED for n in named)
        stop = re.sub(r":.*", "", r["stop_reason"])
        gain = r["last_gain_trial"]
        shares = ", ".join(f"{s['name']} {s['share']:.0%}" for s in suspects[:3])
        lines.append(
            f"| {r['camera']} | {hidden} | {r['best_over_floor']:.1f} | {stop} | {r['n_trials']} "
            f"| {gain} | {r['n_trials'] - 1 - gain} | {shares} | {right}/2 |"
        )
    return lines


def plot(results: list[dict[str, Any]]) -> None:
    fig, axes = plt.subplots(1, len(ARMS), figsize=(4.2 * len(ARMS), 3.6), sharey=True)
    for ax, arm in zip(axes, ARMS, strict=True):
        for r in results:
            if r["arm"] == arm and r["camera"] < MISMATCH_OFFSET:
                ax.plot(range(1, len(r["curve_over_floor"]) + 1), r["curve_over_floor"], lw=0.7)
        ax.axhline(1.5, color="k", ls="--", lw=0.8)
        ax.set(yscale="log", xlabel="trial", title=LABELS[arm], xlim=(0, 100))
        ax.title.set_fontsize(9)
    axes[0].set_ylabel("best distance / noise floor")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    results = load()
    plot(results)
    body = [
        "<!-- tables:start -->",
        "",
        "Per arm (hidden cameras 0-20; mismatch targets excluded):",
        "",
        *arm_table(results),
        "",
        "Every run: trials to 1.5 x the floor (best / floor at the stop); '-' = not run:",
        "",
        *camera_table(results),
        "",
        "New default, recovery error |found - hidden| / range at the stop, every camera and seed:",
        "",
        *error_table(results),
        "",
        "Mismatch targets (new default, seed 0):",
        "",
        *mismatch_table(results),
        "",
        "<!-- tables:end -->",
    ]
    text = DOC.read_text() if DOC.exists() else "<!-- tables:start -->\n<!-- tables:end -->\n"
    start, end = text.index("<!-- tables:start -->"), text.index("<!-- tables:end -->")
    DOC.write_text(text[:start] + "\n".join(body) + text[end + len("<!-- tables:end -->") :])
    print("\n".join(body))


if __name__ == "__main__":
    main()
