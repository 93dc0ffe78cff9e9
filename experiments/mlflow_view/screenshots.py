"""What a new user sees in the MLflow UI after a smoke run: headless Chromium screenshots.

Usage: .venv/bin/python experiments/mlflow_view/screenshots.py [--work DIR] [--reuse]

Runs ``python -m gen_loop run debug=smoke`` in a fresh folder (``--reuse``: keep the run
already in ``--work``), serves its SQLite store with ``mlflow ui`` on a free port, and takes
screenshots with Debian's ``chromium`` in headless mode, each with a fresh profile (a browser
that has never opened MLflow, as a new user's):

- ``runs_table.png``: the link the run prints (classic view, the loop's shared view);
- ``runs_table_plain.png``: the same without ``viewStateShareKey`` (MLflow's own columns);
- ``parent_run.png``: the parent run's page (a tall window: the description is below);
- ``child_samples.png``: the best trial's child run, its sample grid artifact.

The PNGs land next to this script; the server is stopped at the end, however it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import gen_loop_command, gen_loop_env

HERE = Path(__file__).resolve().parent
RUN_DIR = "runs/smoke"


def smoke_run(work: Path, reuse: bool) -> dict:
    """The smoke run's summary (run now unless ``reuse`` and there is one)."""
    summary = work / RUN_DIR / "summary.json"
    if not (reuse and summary.is_file()):
        env = gen_loop_env(GEN_LOOP_CACHE=str(work / "cache"))
        cmd = gen_loop_command("run", "debug=smoke", f"hydra.run.dir={RUN_DIR}")
        clock = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"smoke run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        print(f"smoke run: {time.perf_counter() - clock:.0f} s")
        print("\n".join(proc.stdout.splitlines()[-3:]))
    return json.loads(summary.read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mlflow_ui(store: str, port: int, log: Path) -> Iterator[str]:
    """``mlflow ui`` on ``store`` until the block ends; yields its address."""
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow), "ui", "--backend-store-uri", store, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1"]
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"mlflow ui did not start: {log}") from None
                time.sleep(2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn workers
        try:
            proc.wait(timeout=10)  # `mlflow ui` itself may wait for a second signal
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def screenshot(url: str, path: Path, size: str = "1600,1000", tries: int = 3) -> None:
    """A headless Chromium screenshot of ``url`` with a fresh profile (a new user).

    Chromium sometimes never returns from a virtual-time screenshot of the UI (1 of ~10 on
    this machine, under load); such a try is killed after 90 s and made again.
    """
    for attempt in range(1, tries + 1):
        path.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="gen_loop_chromium_") as profile:
            cmd = [
                "chromium",
                "--headless",
                "--no-sandbox",  # root in a container
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                "--virtual-time-budget=8000",  # the UI renders after its API calls
                f"--screenshot={path}",
                url,
            ]
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the browser and its helpers
                proc.wait()
                print(f"{path.name}: try {attempt} hung, killed")
                continue
        if proc.returncode == 0 and path.is_file():
            print(f"{path.name}: {url}")
            return
    raise SystemExit(f"no screenshot of {url} after {tries} tries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="working folder of the run")
    parser.add_argument("--reuse", action="store_true", help="keep the run already in --work")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gen_loop_mlflow_view_"))
    work.mkdir(parents=True, exist_ok=True)
    summary = smoke_run(work.resolve(), args.reuse)
    info = summary["mlflow"]
    store, exp, parent = info["tracking_uri"], info["experiment_id"], info["run_id"]

    from mlflow import MlflowClient

    best = MlflowClient(store).get_run(parent).data.tags["gen_loop.best_trial_run_id"]
    with mlflow_ui(store, free_port(), work / "mlflow_ui.log") as base:
        table = f"{base}/#/experiments/{exp}/runs?workflowType=machine_learning"
        screenshot(f"{table}&viewStateShareKey=gen_loop", HERE / "runs_table.png")
        screenshot(table, HERE / "runs_table_plain.png")
        run = f"{base}/#/experiments/{exp}/runs"
        screenshot(
            f"{run}/{parent}?workflowType=machine_learning", HERE / "parent_run.png", "1600,2000"
        )
        screenshot(
            f"{run}/{best}/artifacts/samples.png?workflowType=machine_learning",
            HERE / "child_samples.png",
        )
    print(f"store: {store} (work folder {work})")


if __name__ == "__main__":
    main()
