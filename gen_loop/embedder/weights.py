"""Resolve and build detector models: a shipped architecture, a YAML, or a checkpoint."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from gen_loop.errors import ConfigError, InputDataError
from gen_loop.target.images import file_sha256

if TYPE_CHECKING:
    from ultralytics import YOLO

SHIPPED_MODELS = {"yolov7-tiny": "yolov7-tiny.yaml"}
BASE_WEIGHTS_NAME = "yolov7-tiny-base.pt"


def model_yaml(model: str) -> str:
    """The path of an architecture: a shipped name (``yolov7-tiny``) or any ultralytics YAML."""
    if model in SHIPPED_MODELS:
        return str(resources.files("gen_loop.embedder") / "models" / SHIPPED_MODELS[model])
    return model


def shipped_base_weights() -> Path:
    """The base detector shipped with the package (see ``python -m gen_loop train-base``)."""
    return Path(str(resources.files("gen_loop.embedder") / "weights" / BASE_WEIGHTS_NAME))


def build_model(
    model: str, weights: Path | None, seed: int, key: str = "embedder.weights"
) -> YOLO:
    """An ultralytics model from ``weights`` if given, else ``model`` randomly initialised.

    Random initialisation is seeded inside a forked torch RNG, so building a model never
    reseeds the caller's global generator.

    Raises:
        InputDataError: ``weights`` is missing.
        ConfigError: ``weights`` is no checkpoint ultralytics can load (empty, truncated,
            not a YOLO checkpoint, unreadable), naming ``key``.
    """
    import torch
    from ultralytics import YOLO

    if weights is not None:
        if not weights.is_file():
            raise InputDataError(
                f"weights file {weights} does not exist; give embedder.weights=PATH to a "
                "checkpoint, or run `python -m gen_loop train-base` to make the base model"
            )
        try:
            return YOLO(str(weights))
        except Exception as err:  # ultralytics' own message recommends online commands
            raise ConfigError(
                key,
                f"{weights} is not a loadable YOLO checkpoint ({_root_cause(err)}); give a .pt "
                "saved by ultralytics (such as `python -m gen_loop train-base` makes), base or "
                "random",
            ) from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return YOLO(model_yaml(model))


def _root_cause(err: BaseException) -> str:
    """The innermost cause of ``err`` as ``Type: its first sentence`` (without ultralytics'
    ``ERROR ❌`` prefix and its advice to run an online model)."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = re.sub(r"^ERROR\W*", "", str(err).strip())
    first = re.split(r"(?<=\.)\s|\n", text, maxsplit=1)[0] if text else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def file_digest(path: Path) -> str:
    """sha256 of a file's contents, hex (for cache keys and run fingerprints)."""
    return file_sha256(path).hex()
