"""Issue 11: do two workers on one study reach the floor in no more trials than one worker?

Usage:
    .venv/bin/python experiments/workers/trials_to_floor.py
    .venv/bin/python experiments/workers/trials_to_floor.py --cameras 20,16 --seeds 0

For each hidden camera of the recovery benchmark (experiments/recovery/any_camera.py: its
``cameras()``, ``hidden_of()`` and ``target_seed()``) and each search seed, the default search
(``search=default``: vector_gp, then Gauss-Newton; stop at 1.5 x the noise floor) runs once
with one worker and once with two worker processes started together on one study, a SQLite
file shared by the workers (``search.storage=sqlite:///<run>/optuna.db``; the study mutex is a
file lock next to it, README "Many workers on one study"). Each worker is a plain
``python -m gen_loop run`` with fine-tuning and the run analysis off, a 32-sample selection
pool and no trial image grids, as the ``default`` arm of any_camera.py.

Read from the study after every worker has exited:

- ``completed_at_floor``: completed trials of the study when the first trial at or below
  1.5 x the trial noise floor completed (in completion order): the trials it took;
- ``completed_total``: every completed trial of the study at the end (with two workers, the
  other worker finishes the trial it was running after the stop fires);
- ``floor_trial``: the number of that first trial at the floor (None: not within the budget).

Results: ``experiments/workers/trials_to_floor/c<camera>_s<seed>_w<workers>.json`` (an
existing file is kept: the script resumes) and all of them in
``experiments/workers/trials_to_floor.json``, rewritten after every run; runs (git-ignored) in
``experiments/workers/runs/trials_to_floor/``. The end prints the table (markdown).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # gen_loop
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recovery"))  # any_camera, run
from _demo import gen_loop_command, gen_loop_env
from any_camera import DEMO, N_TRIALS, cameras, hidden_of, target_seed

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@dataclass(frozen=True)
class Paths:
    """Where one set of results lives: ``--out NAME`` keeps each code version's apart."""

    out: Path  # one JSON a run
    all: Path  # all of them
    runs: Path  # the run folders (git-ignored)

    @classmethod
    def named(cls, name: str) -> Paths:
        return cls(HERE / name, HERE / f"{name}.json", HERE / "runs" / name)


FLOOR_FACTOR = 1.5  # the default search.floor_factor
#: The demo camera, the four corners, three of the Latin-hypercube cameras.
CAMERAS = (DEMO, 16, 17, 18, 19, 0, 5, 9)
SEEDS = (0, 1)
WORKERS = (1, 2)


def worker_command(camera: int, seed: int, study: str, storage: str, run_dir: Path) -> list[str]:
    """One worker's ``gen_loop run`` on the shared study (the any_camera ``default`` arm)."""
    return gen_loop_command(
        "run",
        f"search.seed={seed}",
        f"search.n_trials={N_TRIALS}",
        f"search.storage={storage}",
        f"search.study_name={study}",
        "finetune.enabled=false",
        "analysis.enabled=false",
        "selection.pool_size=32",
        "tracking.trial_images=0",
        f"target.demo.seed={target_seed(camera)}",
        *[f"target.demo.params.{k}={v}" for k, v in hidden_of(camera).items()],
        f"tracking.uri=sqlite:///{run_dir / 'mlflow.db'}",
        f"hydra.run.dir={run_dir}",
    )


def run_workers(camera: int, seed: int, n_workers: int, paths: Paths) -> dict[str, Any]:
    """Start ``n_workers`` workers on a new study at once; wait for all; read the study."""
    base = paths.runs / f"c{camera}_s{seed}_w{n_workers}"
    if base.exists():
        shutil.rmtree(base)  # a fresh study, not a resumed one
    base.mkdir(parents=True)
    study_name = f"c{camera}_s{seed}_w{n_workers}"
    storage = f"sqlite:///{base / 'optuna.db'}"
    dirs = [base / f"w{i}" for i in range(n_workers)]
    cmds = [worker_command(camera, seed, study_name, storage, d) for d in dirs]
    clock = time.perf_counter()
    procs = []
    for run_dir, cmd in zip(dirs, cmds, strict=True):
        run_dir.mkdir()
        log = (run_dir / "stdout.log").open("w")
        procs.append(
            subprocess.Popen(
                cmd, cwd=REPO, env=gen_loop_env(), stdout=log, stderr=subprocess.STDOUT
            )
        )
    codes = [proc.wait() for proc in procs]
    wall = time.perf_counter() - clock
    if any(codes):
        raise RuntimeError(
            f"camera {camera} seed {seed}, {n_workers} worker(s): exit codes {codes}; logs in "
            f"{base}/w*/stdout.log"
        )
    summaries = [json.loads((d / "summary.json").read_text()) for d in dirs]
    return {
        "camera": camera,
        "seed": seed,
        "workers": n_workers,
        "hidden_params": hidden_of(camera),
        "target_seed": target_seed(camera),
        **study_counts(storage, study_name, dirs[0]),
        "stop_reasons": [s["stop_reason"] for s in summaries],
        "finaliser": next(i for i, s in enumerate(summaries) if not s.get("finalised_by")),
        "wall_s": wall,
        "commands": [" ".join(c[1:]) for c in cmds],
    }


def trial_floor(run_dir: Path) -> float:
    """The noise floor the stop rule compares with: the worker's measured floor at the trial
    batch size (:func:`gen_loop.search.convergence.trial_noise_floor`, as the loop computes
    it from its ``summary.json`` and resolved ``config.yaml``)."""
    from omegaconf import OmegaConf

    from gen_loop.search.convergence import trial_noise_floor

    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = OmegaConf.load(run_dir / "config.yaml")
    floor = summary["noise_floor"]
    return trial_noise_floor(
        float(floor["mean"]),
        int(floor["batch_size"]),
        int(summary["target"]["n_images"]),
        int(cfg.search.batch_size),
        str(cfg.score.metric),
    )


def study_counts(storage: str, study_name: str, run_dir: Path) -> dict[str, Any]:
    """The trial counts of the finished study (see the module docstring)."""
    import optuna
    from optuna.trial import TrialState

    from gen_loop.search.study import from_objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    done = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE and t.value is not None),
        key=lambda t: t.datetime_complete,
    )
    floor = trial_floor(run_dir)
    first = next((t for t in done if from_objective(t.value) <= FLOOR_FACTOR * floor), None)
    at_floor = None if first is None else done.index(first) + 1
    # A point run twice (two workers refining from one start in step) counts once here.
    distinct_at_floor = None if first is None else len({_point(t) for t in done[:at_floor]})
    begin = min(t.datetime_start for t in trials if t.datetime_start)
    best = min(from_objective(t.value) for t in done)
    return {
        "trial_floor": floor,
        "floor_factor": FLOOR_FACTOR,
        "best_over_floor": best / floor,
        "reached_floor": first is not None,
        "floor_trial": None if first is None else first.number,
        "completed_at_floor": at_floor,
        "completed_total": len(done),
        "trials_total": len(trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "refine_trials": sum(t.user_attrs.get("stage") == "refine" for t in done),
        "duplicate_points": len(done) - len({_point(t) for t in done}),
        "distinct_at_floor": distinct_at_floor,
        "per_worker": _per_worker(done),
        "search_to_floor_s": None
        if first is None
        else (first.datetime_complete - begin).total_seconds(),
    }


def _point(trial: Any) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((k, round(float(v), 9)) for k, v in trial.params.items()))


def _per_worker(done: list[Any]) -> list[int]:
    """Completed trials by worker process, in order of each worker's first trial."""
    counts: dict[int, int] = {}
    for t in done:
        pid = int(t.user_attrs.get("worker", {}).get("pid", -1))
        counts[pid] = counts.get(pid, 0) + 1
    return list(counts.values())


def recount(paths: Paths) -> None:
    """Read the trial counts again from each result's kept study (after a change of
    :func:`study_counts`); a result whose run folder is gone is left as it is."""
    for path in sorted(paths.out.glob("c*_s*_w*.json")):
        result = json.loads(path.read_text())
        base = paths.runs / path.stem
        if (base / "optuna.db").exists():
            counts = study_counts(f"sqlite:///{base / 'optuna.db'}", path.stem, base / "w0")
            path.write_text(json.dumps({**result, **counts}, indent=1) + "\n")


def result_path(camera: int, seed: int, n_workers: int, paths: Paths) -> Path:
    return paths.out / f"c{camera}_s{seed}_w{n_workers}.json"


def collect(paths: Paths) -> list[dict[str, Any]]:
    """Every result so far, written together to ``paths.all``."""
    results = [json.loads(p.read_text()) for p in sorted(paths.out.glob("c*_s*_w*.json"))]
    results.sort(key=lambda r: (r["camera"], r["seed"], r["workers"]))
    paths.all.write_text(json.dumps(results, indent=1) + "\n")
    return results


def table(results: list[dict[str, Any]]) -> str:
    """The per-run table and the medians over the (camera, seed) pairs both arms ran."""
    by = {(r["camera"], r["seed"], r["workers"]): r for r in results}
    pairs = sorted({(c, s) for c, s, w in by if (c, s, 1) in by and (c, s, 2) in by})
    lines = [
        "| camera | seed | 1 worker: at floor / total | 2 workers: at floor / total | "
        "2 workers: per worker, repeated points | 2 - 1 at floor | wall 1 / 2 (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, s in pairs:
        one, two = by[(c, s, 1)], by[(c, s, 2)]
        diff = (
            two["completed_at_floor"] - one["completed_at_floor"]
            if one["reached_floor"] and two["reached_floor"]
            else None
        )
        lines.append(
            f"| {c}{' (demo)' if c == DEMO else ''} | {s} | {_cell(one)} | {_cell(two)} | "
            f"{'+'.join(map(str, two['per_worker']))}, {two['duplicate_points']} | "
            f"{'n/a' if diff is None else f'{diff:+d}'} | "
            f"{one['wall_s']:.0f} / {two['wall_s']:.0f} |"
        )
    for w in WORKERS:
        arm = [by[(c, s, w)] for c, s in pairs]
        if not arm:
            continue
        reached = [r["completed_at_floor"] for r in arm if r["reached_floor"]]
        lines.append(
            f"\n{w} worker(s): floor reached in {len(reached)}/{len(arm)}; median trials at "
            f"floor {_median(reached)} (distinct points "
            f"{_median([r['distinct_at_floor'] for r in arm if r['reached_floor']])}), "
            "median completed in all "
            f"{_median([r['completed_total'] for r in arm])}, median wall "
            f"{_median([r['wall_s'] for r in arm])} s"
        )
    return "\n".join(lines)


def _cell(r: dict[str, Any]) -> str:
    at = r["completed_at_floor"] if r["reached_floor"] else "not reached"
    return f"{at} / {r['completed_total']}"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "n/a"


def _int_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=_int_list, default=list(CAMERAS), help="e.g. 20,16-19")
    parser.add_argument("--seeds", type=_int_list, default=list(SEEDS))
    parser.add_argument("--table", action="store_true", help="only print the table so far")
    parser.add_argument(
        "--recount", action="store_true", help="recount the kept studies (runs/) of every result"
    )
    parser.add_argument(
        "--out",
        default="trials_to_floor",
        help="results' name: trials_to_floor (per-worker refinement, commit 0e124f1), "
        "trials_to_floor_shared (one refinement shared by the workers)",
    )
    parser.add_argument("--workers", type=_int_list, default=list(WORKERS))
    args = parser.parse_args()
    paths = Paths.named(args.out)
    paths.out.mkdir(parents=True, exist_ok=True)
    assert len(cameras()) > max(args.cameras)
    if args.recount:
        recount(paths)
    for seed in () if args.table or args.recount else args.seeds:
        for camera in args.cameras:
            for n in args.workers:  # the arms of a pair back to back: a cut run leaves pairs
                path = result_path(camera, seed, n, paths)
                if path.exists():
                    continue
                try:
                    result = run_workers(camera, seed, n, paths)
                except RuntimeError as err:  # recorded in the output; the next pair runs
                    print(f"FAILED: {err}", flush=True)
                    continue
                path.write_text(json.dumps(result, indent=1) + "\n")
                collect(paths)
                print(
                    f"camera {camera:2d} seed {seed} {n} worker(s): floor at "
                    f"{result['completed_at_floor']} completed trials (trial "
                    f"{result['floor_trial']}), {result['completed_total']} in all "
                    f"{result['per_worker']}, {result['duplicate_points']} repeated points, "
                    f"{result['wall_s']:.0f} s",
                    flush=True,
                )
    print(table(collect(paths)))


if __name__ == "__main__":
    main()
