"""Write a :class:`Batch` as a YOLO-format dataset folder and read one back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from gen_loop._imageio import write_image_rgb
from gen_loop.generator.base import Batch


def write_yolo_dataset(
    batch: Batch, out: Path, val: Batch | None = None, prefix: str = "img"
) -> Path:
    """Write ``images/``, ``labels/``, ``data.yaml`` and ``params.json`` under ``out``.

    Args:
        batch: the images to write (the ``train`` split).
        out: the dataset folder; created if missing.
        val: an optional validation split; without one, ``val`` points at the training images.
        prefix: file name prefix of the images.

    Returns:
        The path of ``data.yaml``.
    """
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": batch} if val is None else {"train": batch, "val": val}
    for split, part in splits.items():
        sub = "" if val is None else f"/{split}"
        _write_split(part, out / f"images{sub}", out / f"labels{sub}", prefix)
    train_dir = "images" if val is None else "images/train"
    data = {
        "path": str(out.resolve()),
        "train": train_dir,
        "val": train_dir if val is None else "images/val",
        "names": dict(enumerate(batch.class_names)),
    }
    data_yaml = out / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    (out / "params.json").write_text(
        json.dumps({"params": batch.params, "seeds": list(batch.seeds)}, indent=2)
    )
    return data_yaml


def _write_split(batch: Batch, image_dir: Path, label_dir: Path, prefix: str) -> None:
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(len(batch) - 1)))
    for i, (image, labels) in enumerate(zip(batch.images, batch.labels, strict=True)):
        stem = f"{prefix}_{i:0{width}d}"
        write_image_rgb(image_dir / f"{stem}.png", image)
        lines = [f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, x, y, w, h in labels]
        (label_dir / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def read_yolo_labels(label_files: Sequence[Path]) -> list[np.ndarray]:
    """Read YOLO label files into ``(k, 5)`` float32 arrays (a missing file means no objects)."""
    labels = []
    for path in label_files:
        text = path.read_text() if path.exists() else ""
        rows = [line.split() for line in text.splitlines() if line.strip()]
        labels.append(np.array(rows, np.float32).reshape(-1, 5))
    return labels
