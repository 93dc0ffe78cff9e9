"""BASINS.md's tables: the default with and without leaving wrong basins (search.refine.restart).

Usage (after the runs of BASINS.md's commands):

    .venv/bin/python experiments/recovery/basins_report.py

Pairs, one hidden camera and search seed each, the same run but for the rule:
- seed 3: ``uncertainty/c<camera>_s3.json`` (the default before the rule, at 126ea0e) against
  ``basins/restart/c<camera>_s3.json``;
- other seeds and the mismatch targets: ``basins/no_restart/`` (``search.refine.restart.above=0``)
  against ``basins/restart/``, run side by side.
Until a basin is left the two runs of a pair are the same study, so a pair that never left a
basin must have the same curve: the report checks it.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from any_camera import MISMATCH_OFFSET, UNSEARCHED  # noqa: E402

IDENTIFIABLE = ("color_temp_k", "red_std_scale", "exposure_ev", "contrast", "fisheye")
AFTER = HERE / "basins" / "restart"
BEFORE = HERE / "basins" / "no_restart"
BEFORE_S3 = HERE / "uncertainty"


def _load(folder: Path) -> dict[tuple[int, int], dict[str, Any]]:
    out = {}
    for path in sorted(folder.glob("c*_s*.json")):
        rec = json.loads(path.read_text())
        out[(int(rec["camera"]), int(rec["seed"]))] = rec
    return out


def pairs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    after = _load(AFTER)
    before = _load(BEFORE)
    before.update({k: v for k, v in _load(BEFORE_S3).items() if k[1] == 3 and k in after})
    keys = sorted(after, key=lambda k: (k[1], k[0]))
    return [(before[k], after[k]) for k in keys if k in before]


def _reached(r: dict[str, Any]) -> float:
    t = r["trials_to_1.5x"]
    return float("inf") if t is None else float(t)


def _fmt(x: float) -> str:
    return ">100" if x == float("inf") else f"{x:.0f}"


def largest_error(r: dict[str, Any]) -> float:
    """The largest recovery error (share of the range) of the identifiable parameters."""
    return max(r["recovery_error"][p] for p in IDENTIFIABLE)


def _within(r: dict[str, Any]) -> bool:
    return largest_error(r) <= 0.03


def _left(r: dict[str, Any]) -> int:
    return len(r.get("left_basins") or [])


def same_study(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["curve_over_floor"] == b["curve_over_floor"]


def summary_table(ps: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    lines = [
        "| cameras | seed | arm | runs | reached 1.5x floor | trials to 1.5x: median | worst "
        "| five identifiable within 3 % | runs that left a basin | same study as the other arm |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = sorted({(r["camera"] >= MISMATCH_OFFSET, r["seed"]) for r, _ in ps})
    for mismatch, seed in groups:
        group = [(b, a) for b, a in ps if (b["camera"] >= MISMATCH_OFFSET) == mismatch]
        group = [(b, a) for b, a in group if b["seed"] == seed]
        same = sum(same_study(b, a) for b, a in group)
        for label, runs in (("without", [b for b, _ in group]), ("with", [a for _, a in group])):
            t = sorted(_reached(r) for r in runs)
            name = "mismatch 100-109" if mismatch else "0-20"
            lines.append(
                f"| {name} | {seed} | {label} | {len(runs)} | "
                f"{sum(x != float('inf') for x in t)}/{len(runs)} | {_fmt(statistics.median(t))} "
                f"| {_fmt(t[-1])} | {sum(map(_within, runs))}/{len(runs)} "
                f"| {sum(_left(r) > 0 for r in runs)} | {same}/{len(group)} |"
            )
    return lines


def changed_table(ps: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    """The pairs whose runs differ (a basin was left in the run with the rule)."""
    lines = [
        "| camera | seed | basins left | trials to 1.5x: without -> with | best/floor at the stop "
        "| trials run | largest identifiable error | stop (with) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b, a in ps:
        if same_study(b, a):
            continue
        err = [largest_error(r) for r in (b, a)]
        left = "; ".join(
            f"trial {x['best_trial']} ({x['distance'] / a['noise_floor']:.1f}x)"
            for x in a.get("left_basins") or []
        )
        lines.append(
            f"| {a['camera']} | {a['seed']} | {left or '-'} "
            f"| {_fmt(_reached(b))} -> {_fmt(_reached(a))} "
            f"| {b['best_over_floor']:.2f} -> {a['best_over_floor']:.2f} "
            f"| {b['n_trials']} -> {a['n_trials']} "
            f"| {100 * err[0]:.1f} % -> {100 * err[1]:.1f} % | {a['stop_reason'][:40]} |"
        )
    return lines


def _named(r: dict[str, Any]) -> list[str]:
    """The unsearched parameters the console names: the first two with a share >= 0.1."""
    return [s["name"] for s in (r.get("unsearched_suspects") or [])[:2] if s["share"] >= 0.1]


def mismatch_table(
    ps: list[tuple[dict[str, Any], dict[str, Any]]],
    before: str = "without",
    after: str = "with",
) -> list[str]:
    """One row per mismatch target of the pairs: ``before`` and ``after`` name the pair's two
    sides in the header."""
    ba = f"{before} -> {after}"
    lines = [
        f"| target | best/floor: {ba} | trials: {ba} | stop - last real gain: {ba} "
        f"| named: {ba} | right of 2: {ba} |",
        "|---|---|---|---|---|---|",
    ]
    total = [0, 0]
    for b, a in ps:
        if a["camera"] < MISMATCH_OFFSET:
            continue
        gap = [r["n_trials"] - 1 - r["last_gain_trial"] for r in (b, a)]
        named = [_named(r) for r in (b, a)]
        total = [total[0] + b["n_trials"], total[1] + a["n_trials"]]
        lines.append(
            f"| {a['camera']} | {b['best_over_floor']:.1f} -> {a['best_over_floor']:.1f} "
            f"| {b['n_trials']} -> {a['n_trials']} | {gap[0]} -> {gap[1]} "
            f"| {', '.join(named[0]) or '-'} -> {', '.join(named[1]) or '-'} "
            f"| {sum(n in UNSEARCHED for n in named[0])} -> "
            f"{sum(n in UNSEARCHED for n in named[1])} |"
        )
    lines.append(f"| all | | {total[0]} -> {total[1]} | | | |")
    return lines


def could_leave(r: dict[str, Any], above: float = 5.0, start: int = 16, stall: int = 8) -> bool:
    """Whether the rule's condition ever held on a run's best-so-far curve: the best above
    ``above`` x the floor with no 1 % gain over ``stall`` trials of the refinement (which
    starts at trial ``start``). With one worker every refinement trial is the refinement's
    own, so a run where this never holds is the same study with and without the rule."""
    c = r["curve_over_floor"]
    return any(
        c[t] > above and c[t] >= (1 - 0.01) * c[t - stall] for t in range(start + stall, len(c))
    )


def earlier_seeds() -> list[str]:
    """The default's records of seeds 0-2 (uncertainty/, before the rule): which could have
    left a basin."""
    recs = [
        r
        for r in _load(BEFORE_S3).values()
        if r["seed"] in (0, 1, 2) and r["camera"] < MISMATCH_OFFSET
    ]
    hit = [f"camera {r['camera']} seed {r['seed']}" for r in recs if could_leave(r)]
    return [
        f"Seeds 0-2 before the rule ({len(recs)} runs, uncertainty/): the rule's condition holds "
        f"in {len(hit)}" + (": " + ", ".join(hit) if hit else " (the same studies with it)")
    ]


def plot(ps: list[tuple[dict[str, Any], dict[str, Any]]], path: Path) -> None:
    changed = [(b, a) for b, a in ps if not same_study(b, a)]
    if not changed:
        return
    cols = min(4, len(changed))
    rows = -(-len(changed) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    for ax, (b, a) in zip(axes.flat, changed, strict=False):
        ax.semilogy(b["curve_over_floor"], label="without", color="tab:gray")
        ax.semilogy(a["curve_over_floor"], label="with", color="tab:blue")
        ax.axhline(1.5, color="k", lw=0.6, ls="--")
        ax.set_title(f"camera {a['camera']} seed {a['seed']}", fontsize=9)
        ax.set_xlabel("trial")
    for ax in list(axes.flat)[len(changed) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("best / floor")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ps = pairs()
    print("\n".join(summary_table(ps)))
    print()
    print("\n".join(changed_table(ps)))
    print()
    print("\n".join(mismatch_table(ps)))
    print()
    print("\n".join(earlier_seeds()))
    changed = [(b, a) for b, a in ps if not same_study(b, a)]
    print(
        f"Pairs that differ: {len(changed)}; could_leave holds in "
        f"{sum(could_leave(b) for b, _ in changed)} of their runs without the rule, and in "
        f"{sum(could_leave(b) for b, a in ps if same_study(b, a))} of the identical pairs."
    )
    plot(ps, HERE / "basins_best_vs_trial.png")


if __name__ == "__main__":
    main()
