"""BASINS.md's side-by-side tables: the default against one changed search, run by run.

Usage (after ``uncertainty.py --cameras 0-20 --seed S [--arm A] --out basins/<name>``):

    .venv/bin/python experiments/recovery/pair_report.py --out basins/ct_log --label log
    .venv/bin/python experiments/recovery/pair_report.py --out basins/regrow --label regrow

``basins/ct_log``: colour temperature on its log scale (``any_camera.ARMS["ct_log"]``);
``basins/regrow``: the default with ``search.refine.regrow`` (the default side: without it).
Writes ``<name>_trials.png``.

The default's records: ``basins/restart/`` for seeds 3 and 4 (today's code);
``uncertainty/c<camera>_s<seed>.json`` for seeds 1-2, made with the earlier proposal draws
(before they were keyed on the trial number). Seed 0's are the one-worker runs of
``experiments/workers/trials_to_floor_seq/`` (today's draws; ``--seed0 uncertainty`` takes the
earlier ones): they record trials, not parameter errors, so the error columns count only the
pairs that have both.
"""

from __future__ import annotations

import argparse
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
from any_camera import MISMATCH_OFFSET  # noqa: E402
from basins_report import _fmt, _load, _reached, largest_error, mismatch_table  # noqa: E402

WORKERS_SEQ = HERE.parents[0] / "workers" / "trials_to_floor_seq"


def _one_worker_records() -> dict[tuple[int, int], dict[str, Any]]:
    """experiments/workers' one-worker runs of the default as this script's records: trials
    to 1.5x the floor and trials run (no parameter errors)."""
    out = {}
    for path in sorted(WORKERS_SEQ.glob("c*_s*_w1.json")):
        rec = json.loads(path.read_text())
        reached = rec["completed_at_floor"] if rec["reached_floor"] else None
        out[(int(rec["camera"]), int(rec["seed"]))] = {
            "camera": rec["camera"],
            "seed": rec["seed"],
            "hidden_params": rec["hidden_params"],
            "trials_to_1.5x": reached,
            "n_trials": rec["trials_total"],
        }
    return out


def pairs(folder: Path, seed0: str = "workers") -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(the default's record, ``folder``'s record) for every camera and seed in both."""
    default = {k: v for k, v in _load(HERE / "uncertainty").items() if k[1] in (0, 1, 2)}
    if seed0 == "workers":
        default.update(_one_worker_records())
    default.update(_load(HERE / "basins" / "restart"))
    changed = _load(folder)
    keys = sorted(
        (k for k in changed if k in default and k[0] < MISMATCH_OFFSET), key=lambda k: k[::-1]
    )
    return [(default[k], changed[k]) for k in keys]


def mismatch_pairs(folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(today's default, ``folder``'s record) for the mismatch targets in ``folder``: the
    default's are ``basins/spread`` (made with the trials after a left basin kept apart)."""
    default, changed = _load(HERE / "basins" / "spread"), _load(folder)
    keys = sorted(k for k in changed if k in default and k[0] >= MISMATCH_OFFSET)
    return [(default[k], changed[k]) for k in keys]


def _error(r: dict[str, Any]) -> float | None:
    return largest_error(r) if "recovery_error" in r else None


def _within_share(runs: list[dict[str, Any]], limit: float) -> str:
    errors = [e for e in map(_error, runs) if e is not None]
    return f"{sum(e <= limit for e in errors)}/{len(errors)}" if errors else "n/a"


def seed_table(ps: list[tuple[dict[str, Any], dict[str, Any]]], label: str) -> list[str]:
    lines = [
        "| seed | search | runs | reached 1.5x | trials to 1.5x: median | worst "
        "| five identifiable within 3 % / 5 % | trials run: median |",
        "|---|---|---|---|---|---|---|---|",
    ]
    seeds = sorted({a["seed"] for a, _ in ps})
    for seed in [*seeds, None]:
        group = [(a, b) for a, b in ps if seed is None or a["seed"] == seed]
        for name, runs in (("default", [a for a, _ in group]), (label, [b for _, b in group])):
            t = sorted(_reached(r) for r in runs)
            lines.append(
                f"| {'all' if seed is None else seed} | {name} | {len(runs)} "
                f"| {sum(x != float('inf') for x in t)}/{len(runs)} "
                f"| {_fmt(statistics.median(t))} | {_fmt(t[-1])} "
                f"| {_within_share(runs, 0.03)} / {_within_share(runs, 0.05)} "
                f"| {statistics.median(r['n_trials'] for r in runs):.0f} |"
            )
    return lines


def camera_table(ps: list[tuple[dict[str, Any], dict[str, Any]]], label: str) -> list[str]:
    lines = [
        f"| camera | colour temperature (K) | seed | trials to 1.5x: default -> {label} "
        f"| largest identifiable error: default -> {label} |",
        "|---|---|---|---|---|",
    ]
    for a, b in sorted(ps, key=lambda p: (p[0]["camera"], p[0]["seed"])):
        lines.append(
            f"| {a['camera']} | {a['hidden_params']['color_temp_k']:.0f} | {a['seed']} "
            f"| {_fmt(_reached(a))} -> {_fmt(_reached(b))} "
            f"| {_pct(_error(a))} -> {_pct(_error(b))} |"
        )
    return lines


def _pct(e: float | None) -> str:
    return "n/a" if e is None else f"{100 * e:.1f} %"


def plot(ps: list[tuple[dict[str, Any], dict[str, Any]]], label: str, path: Path) -> None:
    """Trials to 1.5x the floor, ``label`` against the default, one point a run, coloured by
    the hidden colour temperature."""
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    cap = 105.0
    x = [min(_reached(a), cap) for a, _ in ps]
    y = [min(_reached(b), cap) for _, b in ps]
    kelvin = [a["hidden_params"]["color_temp_k"] for a, _ in ps]
    points = ax.scatter(x, y, c=kelvin, cmap="coolwarm_r", s=22)
    ax.plot([0, cap], [0, cap], color="k", lw=0.6)
    ax.set_xlabel("trials to 1.5x floor, default")
    ax.set_ylabel(f"... {label}")
    fig.colorbar(points, ax=ax, label="hidden colour temperature (K)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="records folder under experiments/recovery")
    parser.add_argument("--label", required=True, help="the changed search's name in the tables")
    parser.add_argument(
        "--seed0",
        choices=("workers", "uncertainty"),
        default="workers",
        help="the default's seed-0 records: today's draws (experiments/workers) or the earlier",
    )
    args = parser.parse_args()
    ps = pairs(HERE / args.out, args.seed0)
    print("\n".join(seed_table(ps, args.label)))
    print()
    print("\n".join(camera_table(ps, args.label)))
    mismatch = mismatch_pairs(HERE / args.out)
    if mismatch:
        print()
        print("\n".join(mismatch_table(mismatch, "default", args.label)))
    plot(ps, args.label, HERE / f"{Path(args.out).name}_trials.png")


if __name__ == "__main__":
    main()
