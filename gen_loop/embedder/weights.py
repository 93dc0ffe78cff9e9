"""Resolve and build detector models: a shipped architecture, a YAML, or a checkpoint."""

from __future__ import annotations

import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_loop.errors import ConfigError, InputDataError
from gen_loop.target.images import file_sha256

if TYPE_CHECKING:
    from ultralytics import YOLO

SHIPPED_MODELS = {
    "yolov7-tiny": "yolov7-tiny.yaml",
    "yolov7-tiny-original": "yolov7-tiny-original.yaml",
    "yolov7": "yolov7.yaml",
}
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

    ``weights`` may be an ultralytics checkpoint or an original-YOLOv7 one (told apart by the
    classes its pickle names, not by its file name): the latter is read without running any of
    its code and mapped into the shipped layout of its cfg (see
    :mod:`gen_loop.embedder.original`), its head re-initialised with ``seed``; ``model`` is
    then ignored, as for any checkpoint. Random initialisation is seeded inside a forked torch
    RNG, so building a model never reseeds the caller's global generator.

    Raises:
        InputDataError: ``weights`` is missing.
        ConfigError: ``weights`` is no checkpoint ultralytics can load (empty, truncated,
            not a YOLO checkpoint, unreadable), or an original checkpoint that is refused or
            does not map, naming ``key``.
    """
    import torch
    from ultralytics import YOLO

    from gen_loop.embedder.layout import build_net, custom_rows
    from gen_loop.embedder.original import is_original_checkpoint, load_original

    if weights is not None:
        if not weights.is_file():
            raise InputDataError(
                f"weights file {weights} does not exist; give embedder.weights=PATH to a "
                "checkpoint, or run `python -m gen_loop train-base` to make the base model"
            )
        if is_original_checkpoint(weights):
            return _detector(load_original(weights, seed, key)[1], weights)
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
        if model in SHIPPED_MODELS and custom_rows(shipped_yaml(model)):
            return _detector(build_net(shipped_yaml(model)), Path(model_yaml(model)))
        return YOLO(model_yaml(model))


def shipped_yaml(model: str) -> dict[str, Any]:
    """A shipped architecture's model YAML as a dict (as ultralytics reads it)."""
    from ultralytics.nn.tasks import yaml_model_load

    return dict(yaml_model_load(model_yaml(model)))


def ultralytics_checkpoint(weights: Path, out_dir: Path, seed: int) -> Path:
    """``weights`` as a file ultralytics loads: itself, or for an original-YOLOv7 checkpoint
    its mapped model written to ``out_dir`` (head seeded by ``seed``; see ``build_model``)."""
    from gen_loop.embedder.original import is_original_checkpoint, load_original
    from gen_loop.embedder.original.convert import save_as_ultralytics

    if not is_original_checkpoint(weights):
        return weights
    _, net = load_original(weights, seed, "embedder.weights")
    return save_as_ultralytics(net, out_dir / f"{weights.stem}-ultralytics.pt", weights)


def _detector(net: Any, source: Path) -> YOLO:
    """A ``YOLO`` holding ``net`` as if loaded from a checkpoint (so its trainer transfers
    the weights), by way of a temporary file: ultralytics builds ``YOLO`` from files only."""
    from ultralytics import YOLO

    from gen_loop.embedder.original.convert import save_as_ultralytics

    with tempfile.TemporaryDirectory(prefix="gen_loop-model-") as tmp:
        return YOLO(str(save_as_ultralytics(net, Path(tmp) / "model.pt", source)))


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
