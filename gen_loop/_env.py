"""Keep ultralytics, albumentations and MLflow offline and out of the caller's way.

Called once by each command before heavy imports (see ../shared/OFFLINE.md for why each
setting is there). Nothing here runs at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_ENV_DEFAULTS = {
    "YOLO_OFFLINE": "1",  # no online checks at ultralytics import
    "NO_ALBUMENTATIONS_UPDATE": "1",  # no PyPI version check at albumentations import
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "YOLO_VERBOSE": "False",
}
_ULTRALYTICS_INTEGRATIONS_OFF = (
    "mlflow",  # its callback autologs into and then ends the caller's active run
    "sync",
    "wandb",
    "tensorboard",
    "clearml",
    "comet",
    "dvc",
    "raytune",
    "neptune",
    "hub",
)


def default_cache_dir() -> Path:
    """Where gen_loop caches the demo target, embeddings and trained weights."""
    root = os.environ.get("GEN_LOOP_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root) / "gen_loop" if root else Path.home() / ".cache" / "gen_loop"


def offline_env(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (an environment) with the offline/quiet defaults where it does not set them:
    the environment of a ``gen_loop`` subprocess."""
    return {**_ENV_DEFAULTS, **base}


def set_env_defaults() -> None:
    """Offline/quiet environment variables, unless the user set them; call before importing
    ultralytics, albumentations or mlflow (they read them at import time)."""
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def configure_offline(cache_dir: Path | None = None) -> None:
    """Set the environment so no library reaches the network or touches the MLflow run.

    Environment variables already set by the user win. Ultralytics gets a private settings
    folder under the cache (unless ``YOLO_CONFIG_DIR`` is set) so its settings can be switched
    off without editing the user's own, with a font file in place so that plotting never tries
    to download Arial.ttf.
    """
    set_env_defaults()
    config_dir = Path(
        os.environ.setdefault(
            "YOLO_CONFIG_DIR", str((cache_dir or default_cache_dir()) / "ultralytics")
        )
    )
    font_dir = config_dir / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    font = font_dir / "Arial.ttf"
    if not font.exists():
        import matplotlib

        dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        font.write_bytes(dejavu.read_bytes())


def configure_ultralytics(threads: int | None = None) -> None:
    """Switch off ultralytics' integrations and use every core for torch.

    Ultralytics sets torch to ``cpu_count - 1`` threads (1 on a 2-core machine), which halves
    CPU throughput; its MLflow integration ends the caller's active run.
    """
    import torch
    from ultralytics import settings
    from ultralytics.utils import torch_utils

    off = {key: False for key in _ULTRALYTICS_INTEGRATIONS_OFF if key in settings}
    if any(settings.get(key) for key in off):
        settings.update(off)
    n = threads or os.cpu_count() or 1
    torch_utils.NUM_THREADS = n
    torch.set_num_threads(n)
