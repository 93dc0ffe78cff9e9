"""How much of a trial is spent outside generate + embed, and on what.

Usage:
    .venv/bin/python experiments/throughput/trial_share.py --label before [--trials 30]
    .venv/bin/python experiments/throughput/trial_share.py --tabulate

Each measuring call makes two real loop runs in fresh folders (shared cache, so the demo
target is rendered and embedded once), with the default settings except
``search.n_trials=--trials`` and ``finetune.enabled=false``, MLflow and Optuna on SQLite:

1. ``python -m gen_loop run ...`` as a user runs it, in a subprocess. Its Optuna study gives
   each trial's start time (``datetime_start``, taken at ask) and the ``generate_s`` /
   ``embed_s`` user attributes the loop records: a trial's cycle is the time from its ask to
   the next trial's ask, and the share is ``1 - sum(generate + embed) / sum(cycle)`` over
   trials 1 .. N-2 (trial 0 warms caches up; the last has no next ask).
2. The same run in this process (``gen_loop.__main__.main``), with the functions the search
   loop calls wrapped in timers, for the breakdown of the rest: Optuna ask / tell / suggest /
   set_user_attr on SQLite, the sampler, the study read (``StudyView.of``) and convergence
   replay, ``fail_dead_trials``, the MLflow child run (create, params, metrics, image, end),
   the sample grid, the console line. Each timer records exclusive time (nested timed calls
   are subtracted), so the rows add up; ``unattributed`` is the cycle minus all rows.

Results go to ``experiments/throughput/results/trial_share_<label>.json``; ``--tabulate``
prints a Markdown table of every label side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from functools import wraps
from itertools import pairwise
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[2]
BACKGROUND = "background thread: "


def overrides(trials: int, run_dir: Path) -> list[str]:
    return [
        f"search.n_trials={trials}",
        "finetune.enabled=false",
        f"hydra.run.dir={run_dir}",
    ]


def read_study(db: Path) -> list[dict[str, Any]]:
    """Each trial's number, start/complete time and timing attributes, from optuna.db."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT trial_id, number, datetime_start, datetime_complete FROM trials ORDER BY number"
    ).fetchall()
    attrs: dict[int, dict[str, Any]] = defaultdict(dict)
    for trial_id, key, value in con.execute(
        "SELECT trial_id, key, value_json FROM trial_user_attributes"
    ):
        attrs[trial_id][key] = json.loads(value)
    con.close()
    return [
        {
            "number": number,
            "start": datetime.fromisoformat(start).timestamp(),
            "complete": datetime.fromisoformat(done).timestamp() if done else None,
            **{k: attrs[tid].get(k) for k in ("generate_s", "embed_s", "score_s")},
        }
        for tid, number, start, done in rows
    ]


def share_from_study(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Cycle time and the share outside generate + embed, trials 1 .. N-2."""
    rows = []
    for cur, nxt in pairwise(trials[1:]):
        cycle = nxt["start"] - cur["start"]
        inside = cur["generate_s"] + cur["embed_s"]
        rows.append({"number": cur["number"], "cycle_s": cycle, "gen_embed_s": inside})
    total = sum(r["cycle_s"] for r in rows)
    inside = sum(r["gen_embed_s"] for r in rows)
    return {
        "n": len(rows),
        "cycle_s_median": statistics.median(r["cycle_s"] for r in rows),
        "cycle_s_mean": total / len(rows),
        "generate_s_mean": statistics.mean(t["generate_s"] for t in trials[1:-1]),
        "embed_s_mean": statistics.mean(t["embed_s"] for t in trials[1:-1]),
        "score_s_mean": statistics.mean(t["score_s"] for t in trials[1:-1]),
        "outside_share": 1.0 - inside / total,
        "per_trial": rows,
    }


def optuna_wal(run_dir: Path) -> None:
    """Pre-create the run's optuna.db in SQLite WAL mode (what ``--optuna-wal`` measures)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(run_dir / "optuna.db")) as con:
        assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"


def plain_run(trials: int, work: Path, env: dict[str, str], wal: bool) -> dict[str, Any]:
    """``python -m gen_loop run`` in a subprocess; the share from its study."""
    run_dir = work / "plain"
    if wal:
        optuna_wal(run_dir)
    cmd = [sys.executable, "-m", "gen_loop", "run", *overrides(trials, run_dir)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "wall_s": wall,
        "search_s": summary["timings_s"].get("search_s"),
        "best_distance": summary["best_distance"],
        "study": share_from_study(read_study(run_dir / "optuna.db")),
    }


class Timers:
    """Exclusive wall time per label over wrapped calls (nested timed calls subtracted)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()  # per thread: time in timed children, per open call
        self.active = False  # only calls inside search() count
        self.search_s = 0.0

    def wrap(self, owner: Any, name: str, label: str | Callable[..., str]) -> None:
        original = getattr(owner, name)
        timers = self

        @wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not timers.active:
                return original(*args, **kwargs)
            key = label(*args, **kwargs) if callable(label) else label
            if threading.current_thread() is not threading.main_thread():
                key = f"{BACKGROUND}{key}"  # overlaps the next trial: not part of the cycle
            stack = timers._local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                children = stack.pop()
                timers.total[key] += spent - children
                timers.calls[key] += 1
                if stack:
                    stack[-1] += spent

        setattr(owner, name, timed)


def _module(name: str) -> Any:
    """The module ``name`` of the code measured, or None (layouts differ between copies)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def instrument(timers: Timers) -> None:
    """Wrap what the search loop calls (imports the loop's modules).

    Works on the layouts of the copies compared: the search loop with or without observers
    (``gen_loop/loop/mlflow_observer.py``), MLflow in ``tracking/mlflow_tracker.py`` or split,
    trial runs written synchronously or queued for the tracker's background writer
    (``tracking/_writer.py``, whose time shows as background rows).
    """
    import optuna

    from gen_loop.embedder.yolo import YoloEmbedder
    from gen_loop.generator.procedural import ProceduralGenerator
    from gen_loop.loop import search_loop, session
    from gen_loop.score import CentroidScorer
    from gen_loop.search.convergence import Convergence
    from gen_loop.search.space import SearchSpace
    from gen_loop.search.workers import StudyView

    original_search = search_loop.search

    @wraps(original_search)
    def search(*args: Any, **kwargs: Any) -> Any:
        timers.active = True
        start = time.perf_counter()
        try:
            return original_search(*args, **kwargs)
        finally:
            timers.search_s += time.perf_counter() - start
            timers.active = False

    session.search = search  # type: ignore[assignment]  # session imports it by name

    def w(owner: Any, name: str, label: str | Callable[..., str]) -> None:
        if owner is not None and hasattr(owner, name):
            timers.wrap(owner, name, label)

    w(ProceduralGenerator, "generate", "generate")
    w(YoloEmbedder, "embed", "embed")
    w(CentroidScorer, "score", "score")
    w(optuna.Study, "ask", "optuna ask (storage)")
    w(optuna.Study, "tell", "optuna tell (storage)")
    w(SearchSpace, "suggest", "optuna suggest (param writes)")
    w(optuna.Trial, "set_user_attr", "optuna set_user_attr")
    for sampler in (optuna.samplers.TPESampler, optuna.samplers.RandomSampler):
        for method in ("infer_relative_search_space", "sample_relative", "sample_independent"):
            w(sampler, method, "sampler")
        for method in ("before_trial", "after_trial"):
            w(sampler, method, "sampler")
    workers = _module("gen_loop.search.workers")
    for owner in (search_loop, workers):
        w(owner, "fail_dead_trials", "fail_dead_trials (study read)")
    w(StudyView, "of", "StudyView.of (study read)")
    w(StudyView, "convergence", "convergence replay")
    w(Convergence, "stop_reason", "convergence replay")
    w(Convergence, "update", "convergence replay")

    # MLflow: the observer's trial events hold the child run's calls (exclusive time: the
    # calls timed below are subtracted); the writer thread's jobs show as background rows.
    observer = _module("gen_loop.loop.mlflow_observer")
    if observer is not None:
        w(observer.MlflowObserver, "on_trial_start", "mlflow child: open (create, params, tags)")
        w(observer.MlflowObserver, "on_trial_end", "mlflow child: metrics, grid job, end")
    logger = _module("gen_loop.tracking._run_logger") or _module(
        "gen_loop.tracking.mlflow_tracker"
    )
    trial_run = _module("gen_loop.tracking.trial_run") or logger
    tracker = _module("gen_loop.tracking.tracker") or logger
    writer = _module("gen_loop.tracking._writer")
    w(tracker.Tracker, "_create_trial_run", "mlflow create child run")
    w(trial_run.TrialRun, "log_params", "mlflow child log_params")
    w(
        logger._RunLogger,
        "log_metrics",
        lambda s, *_, **__: (
            f"mlflow {'child' if isinstance(s, trial_run.TrialRun) else 'parent'} log_metrics"
        ),
    )
    w(logger._RunLogger, "log_image", "mlflow child log_image (PNG encode + copy)")
    w(trial_run.TrialRun, "_terminate", "mlflow end child run")
    if writer is not None:
        w(writer.Writer, "_put", "mlflow child: queue a write")
        w(writer.Writer, "_execute", lambda s, run, what, *_, **__: f"mlflow writer: {what}")

    # The loop's other calls (where each copy has them).
    trial = _module("gen_loop.loop.trial")
    console = _module("gen_loop.loop.console")
    for owner in (search_loop, observer):
        w(owner, "image_grid", "sample grid (draw)")
    for owner in (search_loop, console):
        w(owner, "trial_line", "console line")
    for owner in (search_loop, trial):
        w(owner, "get_heartbeat_thread", "heartbeat")


def instrumented_run(trials: int, work: Path, wal: bool) -> dict[str, Any]:
    """The same run in this process, with the search loop's calls timed."""
    timers = Timers()
    instrument(timers)
    from gen_loop.__main__ import main

    run_dir = work / "instrumented"
    if wal:
        optuna_wal(run_dir)
    old_cwd = os.getcwd()
    os.chdir(work)
    try:
        main(["run", *overrides(trials, run_dir)])
    finally:
        os.chdir(old_cwd)
    study = share_from_study(read_study(run_dir / "optuna.db"))
    n = study["n"] + 2
    # Totals over the whole search() call (every trial, the stop check after the last).
    per_trial = {k: v / n for k, v in timers.total.items()}
    cycle = timers.search_s / n
    attributed = sum(v for k, v in per_trial.items() if not k.startswith(BACKGROUND))
    outside = 1.0 - (per_trial.get("generate", 0.0) + per_trial.get("embed", 0.0)) / cycle
    return {
        "n_trials": n,
        "cycle_s_mean": cycle,
        "search_s": timers.search_s,
        "outside_share": outside,
        "per_trial_s": dict(sorted(per_trial.items(), key=lambda kv: -kv[1])),
        "calls": dict(timers.calls),
        "unattributed_s": cycle - attributed,
        "study": study,
    }


def measure(label: str, trials: int, cache: Path, code: Path, wal: bool) -> None:
    sys.path.insert(0, str(code))  # before gen_loop is imported
    env = dict(os.environ, GEN_LOOP_CACHE=str(cache), PYTHONPATH=str(code))
    os.environ["GEN_LOOP_CACHE"] = str(cache)
    work = Path(tempfile.mkdtemp(prefix=f"gen_loop_share_{label}_"))
    plain = plain_run(trials, work, env, wal)
    print(
        f"plain run: {plain['wall_s']:.1f} s wall, search {plain['search_s']:.1f} s, "
        f"cycle {plain['study']['cycle_s_mean']:.3f} s, outside generate+embed "
        f"{100 * plain['study']['outside_share']:.1f}%",
        flush=True,
    )
    inst = instrumented_run(trials, work, wal)
    import gen_loop

    assert Path(gen_loop.__file__).is_relative_to(code), gen_loop.__file__
    print(f"instrumented: cycle {inst['cycle_s_mean']:.3f} s")
    for key, value in inst["per_trial_s"].items():
        print(f"  {1000 * value:8.1f} ms  {key}")
    print(f"  {1000 * inst['unattributed_s']:8.1f} ms  unattributed")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"trial_share_{label}.json"
    out.write_text(
        json.dumps(
            {"label": label, "trials": trials, "plain": plain, "instrumented": inst}, indent=2
        )
    )
    print(f"wrote {out}")


def label_order(run: dict[str, Any]) -> tuple[int, str]:
    """Runs in the order of their labels' number prefix (``10_x`` after ``9_y``)."""
    head = run["label"].split("_", 1)[0]
    return (int(head) if head.isdigit() else 0, run["label"])


def tabulate(labels: list[str] | None = None) -> str:
    """Markdown: the plain runs' share, then the instrumented breakdown, labels side by side
    (all labels, or those given)."""
    runs = [json.loads(p.read_text()) for p in RESULTS.glob("trial_share_*.json")]
    runs = sorted((r for r in runs if labels is None or r["label"] in labels), key=label_order)
    if not runs:
        raise SystemExit(f"no results in {RESULTS}")
    head = "| | " + " | ".join(r["label"] for r in runs) + " |"
    sep = "|---" * (len(runs) + 1) + "|"
    lines = [head, sep]

    def row(name: str, fn: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"| {name} | " + " | ".join(fn(r) for r in runs) + " |")

    row(
        "plain run: trial cycle, ms (mean)",
        lambda r: f"{1000 * r['plain']['study']['cycle_s_mean']:.0f}",
    )
    row(
        "plain run: generate, ms", lambda r: f"{1000 * r['plain']['study']['generate_s_mean']:.0f}"
    )
    row("plain run: embed, ms", lambda r: f"{1000 * r['plain']['study']['embed_s_mean']:.0f}")
    row(
        "**plain run: share outside generate+embed**",
        lambda r: f"**{100 * r['plain']['study']['outside_share']:.1f}%**",
    )
    row(
        "instrumented: trial cycle, ms",
        lambda r: f"{1000 * r['instrumented']['cycle_s_mean']:.0f}",
    )
    keys: list[str] = []
    for r in runs:
        keys += [k for k in r["instrumented"]["per_trial_s"] if k not in keys]
    for key in keys:
        row(
            f"&nbsp;&nbsp;{key}, ms",
            lambda r, k=key: f"{1000 * r['instrumented']['per_trial_s'].get(k, 0.0):.1f}",
        )
    row(
        "&nbsp;&nbsp;unattributed, ms",
        lambda r: f"{1000 * r['instrumented']['unattributed_s']:.1f}",
    )
    row(
        "instrumented: share outside generate+embed",
        lambda r: f"{100 * r['instrumented']['outside_share']:.1f}%",
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="before", help="name of this measurement")
    parser.add_argument("--trials", type=int, default=30, help="search.n_trials")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "gen_loop_share_cache"
    )
    parser.add_argument(
        "--code",
        type=Path,
        default=REPO,
        help="folder holding the gen_loop package and conf/ to measure (e.g. an older copy)",
    )
    parser.add_argument(
        "--optuna-wal",
        action="store_true",
        help="put each run's optuna.db in SQLite WAL mode first (not what the loop does)",
    )
    parser.add_argument("--tabulate", action="store_true", help="print the table and exit")
    args = parser.parse_args()
    if args.tabulate:
        print(tabulate())
        return
    measure(args.label, args.trials, args.cache, args.code.resolve(), args.optuna_wal)


if __name__ == "__main__":
    main()
