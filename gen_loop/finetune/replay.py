"""Mix a share of source-camera images into the fine-tuning set, so the detector does not
forget the camera it was trained on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from gen_loop.errors import ConfigError
from gen_loop.generator.yolo_io import write_yolo_dataset
from gen_loop.target.images import list_images

if TYPE_CHECKING:
    from gen_loop.config.schema import FinetuneConfig
    from gen_loop.generator.base import Generator
    from gen_loop.generator.params import ParamValue
    from gen_loop.selection import Selection

log = logging.getLogger(__name__)


def replay_count(n_selected: int, fraction: float) -> int:
    """Source images to add so that they make up ``fraction`` of the training set."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"replay fraction {fraction} must be in [0, 1)")
    return round(n_selected * fraction / (1.0 - fraction))


def source_train_images(data_yaml: Path) -> tuple[list[Path], list[str]]:
    """The training images and class names of a YOLO ``data.yaml``."""
    data = yaml.safe_load(data_yaml.read_text())
    if not isinstance(data, dict) or "train" not in data or "names" not in data:
        raise ConfigError("finetune.replay_data", f"{data_yaml} needs 'train' and 'names'")
    root = Path(data.get("path") or data_yaml.parent)
    root = root if root.is_absolute() else (data_yaml.parent / root)
    entries = data["train"] if isinstance(data["train"], list) else [data["train"]]
    images: list[Path] = []
    for entry in entries:
        images += list_images(root / entry)
    names = data["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    return images, [str(n) for n in names]


def add_training_images(data_yaml: Path, image_list: Sequence[Path], name: str) -> None:
    """Add ``image_list`` (written to ``<name>.txt`` beside ``data_yaml``) to its train split.

    Ultralytics reads list files as training sources; their labels are found by its usual
    ``images/`` -> ``labels/`` rule.
    """
    listing = data_yaml.parent / f"{name}.txt"
    listing.write_text("".join(f"{p.resolve()}\n" for p in image_list))
    data = yaml.safe_load(data_yaml.read_text())
    train = data["train"] if isinstance(data["train"], list) else [data["train"]]
    data["train"] = [*train, listing.name]
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))


def sample_replay(images: Sequence[Path], n: int, seed: int) -> list[Path]:
    """``n`` of ``images`` drawn without replacement (all of them when there are fewer)."""
    if n >= len(images):
        if n > len(images):
            log.warning("replay wants %d source images, only %d exist", n, len(images))
        return list(images)
    chosen = np.random.default_rng(seed).choice(len(images), size=n, replace=False)
    return [images[i] for i in sorted(chosen)]


def add_replay(
    selection: Selection,
    generator: Generator,
    source_params: dict[str, ParamValue],
    cfg: FinetuneConfig,
    seed: int,
) -> int:
    """Mix ``cfg.replay_fraction`` of source-camera images into the selection's training set.

    The source images are the user's (``cfg.replay_data``) or rendered with the generator's
    current parameters from a seed of their own. Returns how many were added.
    """
    n_train = len(selection.batch) - selection.n_val
    n = replay_count(n_train, cfg.replay_fraction)
    if n == 0:
        return 0
    if cfg.replay_data is not None:
        images, names = source_train_images(Path(cfg.replay_data))
        if tuple(names) != tuple(generator.class_names):
            raise ConfigError(
                "finetune.replay_data",
                f"its classes {names} differ from the generator's {list(generator.class_names)}",
            )
        chosen = sample_replay(images, n, seed)
    else:
        batch = generator.generate(source_params, n, seed)
        replay_yaml = write_yolo_dataset(
            batch, selection.data_yaml.parent / "replay", prefix="src"
        )
        chosen = list_images(replay_yaml.parent / "images")
    add_training_images(selection.data_yaml, chosen, "replay")
    return len(chosen)
