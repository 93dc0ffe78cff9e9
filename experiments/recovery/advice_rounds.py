"""Issue 11, mismatch: does the run find what its space lacks when it follows its own advice?

Usage:

    .venv/bin/python experiments/recovery/advice_rounds.py --cameras 100-109 [--seed 0]
    .venv/bin/python experiments/recovery/advice_rounds.py --report

The mismatch targets of any_camera.py differ from their camera in gamma, saturation and sensor
noise, which the default space does not search. One round names at most two suspects, and the
second is often wrong (ANY_CAMERA.md: with sensor noise dominant, gamma and saturation explain
little beyond what the searched tone parameters mimic, so one linearisation cannot rank them).
ANY_CAMERA.md's conclusion was that naming the second reliably takes searching with the first
added and attributing again. ``search.advice_rounds=2`` does exactly that: after a plateau, the
run searches again in ``<run_dir>/advised`` with the named suspects added, from its best
camera, up to two more rounds. Here, per target: what each round named and added, how close it
got, and how many trials the rounds took in all. All three differences are generator
parameters, so a run that adds them all can reach the floor.

Each run is ``python -m gen_loop run search.advice_rounds=2`` on the target, at most 100 trials
a round, fine-tuning off, a 32-sample pool. Records: ``advice_rounds/c<camera>_s<seed>.json``
(an existing one is kept: the script resumes); runs (git-ignored) in
``runs/any_camera/advice_c<camera>_s<seed>``. ``--report`` prints the table of ANY_CAMERA.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from any_camera import (
    MISMATCH_OFFSET,
    UNSEARCHED,
    _camera_list,
    _last_gain,
    hidden_of,
    run_command,
)
from run import RUNS, best_so_far, run_loop, search_space, trial_distances, trials_to_reach

from gen_loop.search.attribution import named

HERE = Path(__file__).resolve().parent
OUT = HERE / "advice_rounds"
ROUNDS = 2


def rounds_of(run_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each round's folder and summary, the first round first."""
    found = []
    folder: Path | None = run_dir
    while folder is not None:
        summary = json.loads((folder / "summary.json").read_text())
        found.append((folder, summary))
        advised = summary.get("advised")
        folder = Path(advised["run_dir"]) if advised else None
    return found


def round_record(folder: Path, summary: dict[str, Any], hidden: dict[str, float]) -> dict:
    """One round: what it searched, how close it got, what it named and the trials it ran."""
    floor = float(summary["noise_floor"]["mean"])
    curve = best_so_far(trial_distances(folder, summary["study"]["name"]))
    suspects = summary.get("unsearched_suspects") or []
    searched = sorted(summary["best_params"])
    return {
        "added_so_far": [n for n in searched if n not in search_space()],  # the default's six
        "n_trials": summary["n_trials"],
        "best_over_floor": summary["best_distance"] / floor,
        "trials_to_1.5x": trials_to_reach(curve, 1.5 * floor),
        "last_gain_trial": _last_gain(curve),
        "stop_reason": summary["stop_reason"],
        "named": [(s["name"], round(float(s["share"]), 3)) for s in named(suspects)],
        "suspects": [(s["name"], round(float(s["share"]), 3)) for s in suspects[:4]],
        "added": (summary.get("advised") or {}).get("overrides", []),
        "errors_unsearched": {
            n: abs(float(summary["best_params"][n]) - hidden[n]) for n in searched if n in hidden
        },
        "recovery_error": summary.get("recovery_error"),
    }


def run_folder(camera: int, seed: int) -> Path:
    return RUNS / "any_camera" / f"advice_c{camera}_s{seed}"


def record_of(camera: int, seed: int, wall: float | None, command: str) -> dict[str, Any]:
    """The benchmark's record of a finished run (every round's summary written)."""
    hidden = hidden_of(camera)
    rounds = [round_record(f, s, hidden) for f, s in rounds_of(run_folder(camera, seed))]
    return {
        "camera": camera,
        "seed": seed,
        "hidden_unsearched": {n: hidden[n] for n in UNSEARCHED},
        "rounds": rounds,
        "trials": sum(r["n_trials"] for r in rounds),
        "wall_s": wall,
        "command": command,
    }


def command(camera: int, seed: int) -> list[str]:
    """The run's ``python -m gen_loop run`` command line."""
    return run_command((f"search.advice_rounds={ROUNDS}",), camera, seed, run_folder(camera, seed))


def run_one(camera: int, seed: int) -> dict[str, Any]:
    run_dir = run_folder(camera, seed)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = command(camera, seed)
    _, wall, _ = run_loop(cmd, run_dir, f"advice rounds camera {camera} seed {seed}")
    return record_of(camera, seed, wall, " ".join(cmd[1:]))


def report() -> None:
    records = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    records.sort(key=lambda r: (r["seed"], r["camera"]))
    print(
        "| target | hidden (gamma, saturation, noise) | round 1: best/floor, named | "
        "round 2 | round 3 | right ones searched at the end | wrong ones added | trials | "
        "best/floor at the end |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    two_right = 0
    for rec in records:
        cells = []
        for i in range(ROUNDS + 1):
            if i < len(rec["rounds"]):
                r = rec["rounds"][i]
                names = ", ".join(f"{n} {s:.0%}" for n, s in r["named"]) or "none"
                cells.append(f"{r['best_over_floor']:.2f}x in {r['n_trials']}; {names}")
            else:
                cells.append("-")
        last = rec["rounds"][-1]
        added = last["added_so_far"]  # each round searches the last one's space and more
        right = [n for n in added if n in UNSEARCHED]
        wrong = [n for n in added if n not in UNSEARCHED]
        two_right += len(right) >= 2
        h = rec["hidden_unsearched"]
        print(
            f"| {rec['camera']} | {h['gamma']}, {h['saturation']}, {h['noise_std']} | "
            + " | ".join(cells)
            + f" | {', '.join(right) or 'none'} ({len(right)}/3) | "
            f"{', '.join(wrong) or 'none'} | {rec['trials']} | "
            f"{last['best_over_floor']:.2f}x |"
        )
    print(
        f"\nAt least two of the three differences searched by the last round: {two_right}/"
        f"{len(records)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cameras", type=_camera_list, default=list(range(MISMATCH_OFFSET, MISMATCH_OFFSET + 10))
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report:
        report()
        return
    for camera in args.cameras:
        path = OUT / f"c{camera}_s{args.seed}.json"
        if path.exists():
            continue
        done = run_folder(camera, args.seed) / "stdout.log"  # run_loop's log: it finished
        if done.exists():  # the record of a finished run is made again without re-running it
            cmd = " ".join(command(camera, args.seed)[1:])
            record = record_of(camera, args.seed, None, cmd)
        else:
            record = run_one(camera, args.seed)
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
        rounds = "; ".join(
            f"{r['best_over_floor']:.2f}x in {r['n_trials']}, named {r['named']}"
            for r in record["rounds"]
        )
        print(f"camera {camera} seed {args.seed}: {rounds}", flush=True)


if __name__ == "__main__":
    main()
