"""Trials per hour with 1 and 2 workers on one study (PostgreSQL), on the smoke profile.

    python experiments/workers/bench.py --trials 24
    python experiments/workers/bench.py --trials 24 --override search.parallel_proposals=true

Starts a throw-away PostgreSQL server (as the tests do), runs ``python -m gen_loop run`` once
with one worker and once with two worker processes on a fresh study each, and prints the
search throughput measured from the study's own trial timestamps (first trial start to last
trial end), so start-up and the final fine-tune are not counted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gen_loop._env import offline_env
from gen_loop.search.storage import make_storage
from tests.pg_server import start_server


def run_workers(
    url: str, study: str, n_workers: int, n_trials: int, base: Path, overrides: list[str]
) -> float:
    """Run ``n_workers`` worker processes on a new study (Hydra ``overrides`` last); return
    its trials per hour."""
    env = {**offline_env(os.environ), "GEN_LOOP_CACHE": str(base / "cache")}
    procs = []
    for i in range(n_workers):
        cwd = base / f"{study}-w{i}"
        cwd.mkdir(parents=True)
        procs.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "gen_loop", "run", "debug=smoke"),
                    *(f"search.n_trials={n_trials}", "search.floor_factor=1e-6"),
                    *("finetune.enabled=false", f"search.storage={url}"),
                    *(f"search.study_name={study}", "hydra.run.dir=run"),
                    *overrides,
                ],
                cwd=cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    for proc in procs:
        assert proc.wait() == 0, f"a worker of {study} failed"
    trials = optuna.load_study(study_name=study, storage=make_storage(url, None, None)).trials
    begin = min(t.datetime_start for t in trials if t.datetime_start)
    end = max(t.datetime_complete for t in trials if t.datetime_complete)
    return len(trials) / (end - begin).total_seconds() * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument(
        "--override", action="append", default=[], help="a Hydra override for every worker"
    )
    args = parser.parse_args()
    server = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # A warm-up run fills the embedding cache so both runs start alike.
            run_workers(server.url, "warmup", 1, 2, Path(tmp), args.override)
            for n in (1, 2):
                clock = time.perf_counter()
                rate = run_workers(
                    server.url, f"bench{n}", n, args.trials, Path(tmp), args.override
                )
                wall = time.perf_counter() - clock
                print(
                    f"{n} worker(s): {rate:.0f} trials/hour ({args.trials} trials, {wall:.0f} s)"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
