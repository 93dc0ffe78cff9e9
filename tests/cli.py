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


#: The demo target's parameters (conf/target/demo.yaml) at the generator's defaults.
DEFAULT_CAMERA = {
    "color_temp_k": 6500,
    "red_std_scale": 1,
    "exposure_ev": 0,
    "contrast": 1,
    "vignetting": 0,
    "fisheye": 0,
}


def one_difference(searched: str, **target: object) -> list[str]:
    """Overrides for a demo target that is the generator's default camera except for
    ``target`` (new keys, such as ``weather``, are added), with only ``searched`` searched."""
    camera = {**DEFAULT_CAMERA, **target}
    return [
        *(f"~search.space.{name}" for name in DEFAULT_CAMERA if name != searched),
        *(
            f"{'' if name in DEFAULT_CAMERA else '+'}target.demo.params.{name}={value}"
            for name, value in camera.items()
        ),
    ]
