"""Run `python -m gen_loop run` as a new user gets it and record what it achieved.

Usage: .venv/bin/python experiments/default_run/run.py [--seeds 0 1 2] [extra overrides ...]

Each seed runs in a fresh working folder with an empty cache (so the demo target is rendered
and embedded on the way, as on first use), then the summaries are tabulated: wall time per
stage, best vs default distance vs noise floor, per-parameter recovery error, and the demo
target's mAP50 before/after fine-tuning. Prints a Markdown block for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import gen_loop_command


def run_once(seed: int, overrides: list[str]) -> tuple[dict[str, Any], float]:
    """One `run` in a fresh folder; returns its summary and wall time."""
    work = Path(tempfile.mkdtemp(prefix=f"gen_loop_default_{seed}_"))
    env = dict(os.environ, GEN_LOOP_CACHE=str(work / "cache"))  # as a user's shell has it
    cmd = gen_loop_command("run", f"search.seed={seed}", "hydra.run.dir=runs/default", *overrides)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads((work / "runs" / "default" / "summary.json").read_text()), wall


def table(rows: list[tuple[int, dict[str, Any], float]]) -> str:
    """Markdown tables of the runs."""
    out = [
        "| seed | wall s | trials | stop | default dist | best dist | floor | best/floor "
        "| selected | mAP50 before | mAP50 after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for seed, s, wall in rows:
        ev = s["evaluation"]
        out.append(
            f"| {seed} | {wall:.0f} | {s['n_trials']} | {s['stop_reason'].split(':')[0]} "
            f"| {s['default_distance']:.3f} | {s['best_distance']:.3f} "
            f"| {s['noise_floor']['mean']:.3f} "
            f"| {s['best_distance'] / s['noise_floor']['mean']:.2f} "
            f"| {s['selected_count']}/{s['pool_size']} | {ev['before']['map50']:.3f} "
            f"| {ev['after']['map50']:.3f} |"
        )
    names = list(rows[0][1]["recovery_error"])
    out += [
        "",
        "Recovery error |found - hidden| / search range:",
        "",
        "| seed | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for seed, s, _ in rows:
        out.append(
            f"| {seed} | " + " | ".join(f"{s['recovery_error'][n]:.3f}" for n in names) + " |"
        )
    stages = sorted({k for _, s, _ in rows for k in s["timings_s"]})
    out += [
        "",
        "Stage wall time (s, mean over seeds): "
        + ", ".join(
            f"{k} {mean(s['timings_s'].get(k, 0.0) for _, s, _ in rows):.1f}" for k in stages
        ),
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args, overrides = parser.parse_known_args()
    rows = []
    for seed in args.seeds:
        summary, wall = run_once(seed, overrides)
        rows.append((seed, summary, wall))
        print(f"seed {seed}: {wall:.0f} s, {summary['stop_reason']}", flush=True)
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}\ncommand: {' '.join(sys.argv)}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
