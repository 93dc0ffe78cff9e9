"""Train the base detector: the "source camera" model, trained on default-parameter images."""

from __future__ import annotations

import logging
from pathlib import Path

from gen_loop.finetune.train import train_detector
from gen_loop.generator.base import Generator
from gen_loop.generator.yolo_io import write_yolo_dataset

log = logging.getLogger(__name__)


def train_base(
    generator: Generator,
    out_dir: Path,
    n_train: int,
    n_val: int,
    seed: int,
    model: str,
    epochs: int,
    imgsz: int,
    batch: int,
    device: str,
    data_yaml: Path | None = None,
) -> Path:
    """Train the base detector and return its ``best.pt``.

    Args:
        generator: renders the source data with its default parameters (the source camera),
            unless ``data_yaml`` names the user's own labeled source dataset.
        out_dir: run folder; the dataset goes to ``out_dir/source_data``.
        n_train: generated training images.
        n_val: generated validation images (a different seed).
        seed: seed of the source data and of training.
        model: the architecture to train (shipped name or ultralytics YAML).
        epochs: training epochs.
        imgsz: training image size.
        batch: batch size.
        device: torch device.
        data_yaml: a user's YOLO dataset to train on instead of generated data.
    """
    if data_yaml is None:
        defaults = generator.default_params()
        train = generator.generate(defaults, n_train, seed)
        val = generator.generate(defaults, n_val, seed + 1)
        data_yaml = write_yolo_dataset(train, out_dir / "source_data", val=val)
        log.info("wrote %d + %d source images to %s", n_train, n_val, data_yaml.parent)
    return train_detector(
        data_yaml, out_dir / "train", model, None, epochs, imgsz, batch, device, seed
    )
