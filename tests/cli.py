"""Running `python -m gen_loop` from tests: one environment for every command-line test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli_env(cache: Path) -> dict[str, str]:
    """This process's environment, offline and quiet, with its own gen_loop cache.

    A tracking URI or sweep run id of the caller is dropped, so a test never logs into the
    developer's MLflow store or nests under a sweep it is not part of.
    """
    env = dict(os.environ)
    env.update(
        GEN_LOOP_CACHE=str(cache),
        NO_ALBUMENTATIONS_UPDATE="1",
        YOLO_OFFLINE="1",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    for key in ("MLFLOW_TRACKING_URI", "GEN_LOOP_SWEEP_RUN_ID"):
        env.pop(key, None)
    return env


def run_cli(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m gen_loop ARGS`` in ``cwd`` with the cache at ``cwd/cache``."""
    return subprocess.run(
        [sys.executable, "-m", "gen_loop", *args],
        cwd=cwd,
        env=cli_env(cwd / "cache"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
