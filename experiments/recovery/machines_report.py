"""The same runs on two machines: how far apart do the same command's results fall?

Usage (two record folders of ``uncertainty.py`` made with the same arm and code, on two
machines or in two sessions):

    .venv/bin/python experiments/recovery/machines_report.py \
        --a basins/correct --b basins/s17 --labels "sessions 15-16" "session 17" \
        --plot s17_machines

For every camera and seed in both: whether the two runs started from the same numbers (the
distance of trial 0, the simulator's own camera, bit for bit), the first trial whose best
distance differs by more than 0.1 %, and the trials each took to 1.5x the floor. Prints the
markdown tables of BASINS.md ("Runs are not reproducible across machines") and writes
``<plot>.png`` (trials on one machine against the other). A record's ``environment`` (since
session 17) names its machine and package versions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from any_camera import MISMATCH_OFFSET  # noqa: E402
from basins_report import _fmt, _load, largest_error  # noqa: E402
from basins_report import _reached as _trials  # noqa: E402

#: Two best-so-far curves count as apart from the first trial that differs by this much.
APART = 1e-3


def trial0_distance(r: dict[str, Any]) -> float:
    """The distance of trial 0 (the simulator's camera), from the record's curve."""
    return float(r["curve_over_floor"][0]) * float(r["noise_floor"])


def apart_at(a: dict[str, Any], b: dict[str, Any]) -> int | None:
    """The first trial whose best distances differ by more than :data:`APART` (relative), or
    None when the shorter run never does."""
    ca = [c * a["noise_floor"] for c in a["curve_over_floor"]]
    cb = [c * b["noise_floor"] for c in b["curve_over_floor"]]
    for i, (x, y) in enumerate(zip(ca, cb, strict=False)):
        if abs(x - y) > APART * abs(y):
            return i
    return None


def seed_table(ps: list[tuple[dict[str, Any], dict[str, Any]]], labels: list[str]) -> list[str]:
    """Per seed and machine: runs, reached, median and worst trials to 1.5x, their sum and
    all five identifiable parameters within 3 %."""
    lines = [
        "| seed | machine | runs | reached 1.5x | trials to 1.5x: median | worst | sum "
        "| five identifiable within 3 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    seeds = sorted({a["seed"] for a, _ in ps})
    for seed in [*seeds, "all"]:
        chosen = [p for p in ps if seed == "all" or p[0]["seed"] == seed]
        for side, label in enumerate(labels):
            runs = [p[side] for p in chosen]
            trials = [_trials(r) for r in runs]
            reached = sum(t != float("inf") for t in trials)
            within = sum(largest_error(r) <= 0.03 for r in runs)
            total = sum(t for t in trials if t != float("inf"))
            lines.append(
                f"| {seed} | {label} | {len(runs)} | {reached}/{len(runs)} | "
                f"{_fmt(statistics.median(trials))} | {_fmt(max(trials))} | {total:.0f} | "
                f"{within}/{len(runs)} |"
            )
    return lines


def numerics_lines(ps: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    """How the two machines' numbers compare: trial 0, where the runs part, how often the
    trial counts agree."""
    same0 = sum(trial0_distance(a) == trial0_distance(b) for a, b in ps)
    rel0 = [abs(trial0_distance(a) / trial0_distance(b) - 1) for a, b in ps]
    apart = [apart_at(a, b) for a, b in ps]
    never = sum(x is None for x in apart)
    parted = sorted(x for x in apart if x is not None)
    diffs = [_trials(b) - _trials(a) for a, b in ps]
    finite = [d for d in diffs if abs(d) != float("inf")]
    equal = sum(d == 0 for d in finite)
    close = sum(abs(d) <= 2 for d in finite)
    lines = [
        f"- pairs: {len(ps)}; trial 0's distance identical bit for bit in {same0}; its median "
        f"relative difference {statistics.median(rel0):.1e} (largest {max(rel0):.1e}).",
        f"- best-so-far curves within {APART:.1%} of each other to the end of the shorter run "
        f"in {never}/{len(ps)}; the others part at trial "
        + (
            f"{parted[0]}-{parted[-1]} (median {statistics.median(parted):.0f})."
            if parted
            else "-"
        ),
        f"- trials to 1.5x the floor: the same in {equal}/{len(ps)}, within 2 in {close}/"
        f"{len(ps)}; differences (second - first) from {min(finite):+.0f} to {max(finite):+.0f}.",
    ]
    return lines


def differing_table(
    ps: list[tuple[dict[str, Any], dict[str, Any]]], labels: list[str], least: int = 5
) -> list[str]:
    """The pairs whose trials to 1.5x differ by at least ``least``."""
    lines = [
        f"| camera | seed | trials to 1.5x: {labels[0]} | {labels[1]} | curves part at trial |",
        "|---|---|---|---|---|",
    ]
    for a, b in ps:
        if abs(_trials(a) - _trials(b)) >= least:
            at = apart_at(a, b)
            lines.append(
                f"| {a['camera']} | {a['seed']} | {_fmt(_trials(a))} | {_fmt(_trials(b))} | "
                f"{'-' if at is None else at} |"
            )
    return lines


def plot(ps: list[tuple[dict[str, Any], dict[str, Any]]], labels: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    cap = 105.0
    xs = [min(_trials(a), cap) for a, _ in ps]
    ys = [min(_trials(b), cap) for _, b in ps]
    ax.scatter(xs, ys, s=18, alpha=0.7)
    ax.plot([0, cap], [0, cap], color="grey", lw=0.8)
    ax.axhline(60, color="red", lw=0.6, ls="--")
    ax.axvline(60, color="red", lw=0.6, ls="--")
    for (a, _), x, y in zip(ps, xs, ys, strict=True):
        if abs(x - y) >= 10:
            ax.annotate(f"c{a['camera']} s{a['seed']}", (x, y), fontsize=7)
    ax.set_xlabel(f"trials to 1.5x the floor: {labels[0]}")
    ax.set_ylabel(f"trials to 1.5x the floor: {labels[1]}")
    ax.set_title("the same command on two machines (dashed: the goal, 60)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--a",
        required=True,
        nargs="+",
        help="records folder(s) under experiments/recovery; a later one's record of a camera "
        "and seed replaces an earlier one's",
    )
    parser.add_argument("--b", required=True, help="records folder under experiments/recovery")
    parser.add_argument("--labels", nargs=2, default=["first", "second"])
    parser.add_argument("--plot", help="write <PLOT>.png beside this script")
    args = parser.parse_args()
    first = {k: v for folder in args.a for k, v in _load(HERE / folder).items()}
    second = _load(HERE / args.b)
    keys = sorted(
        (k for k in first if k in second and k[0] < MISMATCH_OFFSET), key=lambda k: k[::-1]
    )
    ps = [(first[k], second[k]) for k in keys]
    if not ps:
        sys.exit(f"no camera and seed is in both {args.a} and {args.b}")
    print("\n".join(seed_table(ps, args.labels)))
    print()
    print("\n".join(numerics_lines(ps)))
    print()
    print("\n".join(differing_table(ps, args.labels)))
    if args.plot:
        plot(ps, args.labels, HERE / f"{args.plot}.png")


if __name__ == "__main__":
    main()
