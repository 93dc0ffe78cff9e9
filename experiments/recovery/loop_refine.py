"""The recovery benchmark with the loop's own refinement stage (``search.refine.method=lsq``).

Usage: .venv/bin/python experiments/recovery/loop_refine.py --seed 0 [--after 50]
       .venv/bin/python experiments/recovery/loop_refine.py --table

One run is run.py's TPE run of draw ``--seed`` (same hidden parameters, target, overrides:
100 trials, early stop off) plus ``search.refine.method=lsq search.refine.after=<after>``, i.e.
what refine.py's "TPE 50 + least squares 50" arm did outside the loop, now done by
``python -m gen_loop run`` itself (every refinement evaluation a trial of the study, in MLflow).
Results go to ``experiments/recovery/loop_refine/tpe+lsq<after>_s<seed>.json`` (not to
results/, so report.py's tables are unchanged); ``--table`` prints the comparison with
refine.py's results. Run it under the shared CPU lock.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import optuna
from run import (
    FLOOR_MULTIPLES,
    RESULTS,
    RUNS,
    best_so_far,
    overrides,
    run_loop,
    trial_distances,
    trials_to_reach,
    write_result,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import gen_loop_command

OUT = Path(__file__).resolve().parent / "loop_refine"
IDENTIFIABLE = ("color_temp_k", "red_std_scale", "exposure_ev", "contrast", "fisheye")


def run_one(seed: int, after: int) -> dict[str, Any]:
    """One loop run with the refinement stage, reduced like run.py's results."""
    name = f"tpe+lsq{after}"
    run_dir = RUNS / f"{name}_s{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    extra = ["search.refine.method=lsq", f"search.refine.after={after}"]
    base = [o for o in overrides("tpe", seed, run_dir) if not o.startswith("search.refine.")]
    cmd = gen_loop_command("run", *base, *extra)
    summary, wall, stdout = run_loop(cmd, run_dir, f"{name} seed {seed}")
    distances = trial_distances(run_dir)
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    stages = [t.user_attrs.get("stage") for t in sorted(study.trials, key=lambda t: t.number)]
    floor = float(summary["noise_floor"]["mean"])
    curve = best_so_far(distances)
    return {
        "sampler": name,
        "seed": seed,
        "noise_floor": floor,
        "best_distance": summary["best_distance"],
        "best_over_floor": summary["best_distance"] / floor,
        "best_trial": summary["best_trial"],
        "best_stage": summary.get("best_stage"),
        "n_refine_trials": summary.get("n_refine_trials"),
        "best_params": summary["best_params"],
        "hidden_params": summary["target_hidden_params"],
        "recovery_error": summary["recovery_error"],
        "trials_to_floor": {f"{k:g}": trials_to_reach(curve, k * floor) for k in FLOOR_MULTIPLES},
        "distances": distances,
        "stages": stages,
        "refinement_log": [ln for ln in stdout.splitlines() if ln.startswith("refine")],
        "stop_reason": summary["stop_reason"],
        "search_s": summary["timings_s"].get("search_s"),
        "wall_s": wall,
        "command": " ".join(cmd[1:]),
    }


def _row(label: str, runs: list[dict[str, Any]]) -> str:
    def med(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        middle = statistics.median([v if v is not None else 10**9 for v in values])
        shown = ">100" if middle > 100 else f"{middle:g}"
        return f"{shown} ({len(known)}/{len(values)})"

    ratio = [r["best_over_floor"] for r in runs]
    errs = [max(r["recovery_error"][k] for k in IDENTIFIABLE) for r in runs]
    return (
        f"| {label} | {','.join(str(r['seed']) for r in runs)} | "
        f"{statistics.median(ratio):.2f} [{min(ratio):.2f}-{max(ratio):.2f}] | "
        f"{med([r['trials_to_floor']['1'] for r in runs])} | "
        f"{med([r['trials_to_floor']['1.5'] for r in runs])} | "
        f"{statistics.median(errs):.3f} / {max(errs):.3f} | "
        f"{sum(e <= 0.05 for e in errs)}/{len(runs)} |"
    )


def table() -> str:
    """Markdown: the in-loop runs next to refine.py's and plain TPE's, same draws."""
    lines = [
        "| arm | draws | best/floor @100 median [min-max] | trials to 1x floor (median; reached)"
        " | 1.5x | worst identifiable recovery error (median / max) | 5 identifiable within 5 % |",
        "|---|---|---|---|---|---|---|",
    ]
    arms: list[tuple[str, list[dict[str, Any]]]] = []
    for path in sorted(OUT.glob("tpe+lsq*_s*.json")):
        result = json.loads(path.read_text())
        label = f"in loop: {result['sampler']}"
        for arm_label, runs in arms:
            if arm_label == label:
                runs.append(result)
                break
        else:
            arms.append((label, [result]))
    for label, runs in arms:
        seeds = [r["seed"] for r in runs]
        lines.append(_row(label, runs))
        for ref in ("tpe50+lsq", "tpe"):
            found = [RESULTS / f"{ref}_s{s}.json" for s in seeds]
            ref_runs = [json.loads(p.read_text()) for p in found if p.exists()]
            if ref_runs:
                lines.append(_row(f"same draws: {ref} (results/)", ref_runs))
    draws = sorted({r["seed"] for _, runs in arms for r in runs})
    lines += (
        [
            "",
            "Per draw: best/floor after 100 trials (trials to 1x / 1.5x floor), worst error of the"
            " 5 identifiable parameters:",
            "",
            "| arm | " + " | ".join(f"draw {d}" for d in draws) + " |",
            "|---|" + "---|" * len(draws),
        ]
        if arms
        else []
    )
    for label, runs in arms:
        seeds = [r["seed"] for r in runs]
        refs = [(label, runs)]
        for ref in ("tpe50+lsq", "tpe"):
            found = [
                json.loads(p.read_text())
                for s in seeds
                if (p := RESULTS / f"{ref}_s{s}.json").exists()
            ]
            if len(found) == len(runs):
                refs.append((f"{ref} (results/)", found))
        for name, rs in refs:
            cell = {
                r["seed"]: f"{r['best_over_floor']:.2f} ({r['trials_to_floor']['1'] or '-'}/"
                f"{r['trials_to_floor']['1.5'] or '-'}), "
                f"{max(r['recovery_error'][k] for k in IDENTIFIABLE):.3f}"
                for r in rs
            }
            cells = [cell.get(d, "-") for d in draws]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--after", type=int, default=50)
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        print(table())
        return
    if args.seed is None:
        parser.error("--seed is required (or --table)")
    result = run_one(args.seed, args.after)
    write_result(
        result,
        OUT / f"{result['sampler']}_s{args.seed}.json",
        f"{result['sampler']} seed {args.seed}: best {result['best_over_floor']:.2f} x floor "
        f"(trial {result['best_trial']}, {result['best_stage']})",
    )


if __name__ == "__main__":
    main()
