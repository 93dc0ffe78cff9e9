"""Render the mismatch targets: each camera of ``camera.CAMERAS`` filming its own world.

Usage::

    .venv/bin/python experiments/mismatch/make_targets.py [--n 160] [--oracle 64] [--size 256]

Writes, per camera, ``data/<camera>/target/`` (``--n`` images of scene seed 777, the demo
target's evaluation seed, with YOLO labels and ``data.yaml``: the client's images, whose labels
only the evaluation reads) and ``data/<camera>/oracle/`` (``--oracle`` labeled images of the same
camera from other scenes, seed 1: condition (e) of issue 14), and ``grid.png``, a few target
frames with their boxes. A loop run on a mismatch target::

    python -m gen_loop run target=folder \
        target.path=experiments/mismatch/data/cctv_fog/target/images \
        target.labels=experiments/mismatch/data/cctv_fog/target/data.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import cv2
import numpy as np
from camera import CAMERAS, IndependentCamera

from gen_loop.generator.base import DEFAULT_CLASS_NAMES, Batch, image_seeds
from gen_loop.generator.yolo_io import write_yolo_dataset

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"  # ignored by git: rendered in about a minute
TARGET_SEED, ORACLE_SEED = 777, 1


def film_batch(camera: IndependentCamera, n: int, seed: int, size: int) -> Batch:
    """``n`` frames of ``camera`` (image ``i`` from scene seed ``image_seeds(seed, n)[i]``)."""
    seeds = image_seeds(seed, n)
    images, labels = [], []
    for image_seed in seeds:
        image, boxes = camera.render(size, size, image_seed)
        images.append(image)
        labels.append(boxes)
    params = {k: v for k, v in dataclasses.asdict(camera).items() if not k.startswith("_")}
    return Batch(np.stack(images), tuple(labels), DEFAULT_CLASS_NAMES, params, seeds)


def grid(batch: Batch, k: int = 8) -> np.ndarray:
    """The first ``k`` frames side by side, boxes drawn (pedestrians green, vehicles red)."""
    tiles = []
    for image, boxes in zip(batch.images[:k], batch.labels[:k], strict=True):
        tile = image.copy()
        h, w = tile.shape[:2]
        for c, x, y, bw, bh in boxes:
            p0 = (int((x - bw / 2) * w), int((y - bh / 2) * h))
            p1 = (int((x + bw / 2) * w), int((y + bh / 2) * h))
            cv2.rectangle(tile, p0, p1, (0, 255, 0) if int(c) == 2 else (255, 0, 0), 1)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=160)
    parser.add_argument("--oracle", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    for name, camera in CAMERAS.items():
        root = DATA / name
        target = film_batch(camera, args.n, TARGET_SEED, args.size)
        write_yolo_dataset(target, root / "target", prefix=name)
        oracle = film_batch(camera, args.oracle, ORACLE_SEED, args.size)
        write_yolo_dataset(oracle, root / "oracle")
        cv2.imwrite(str(root / "grid.png"), grid(target)[..., ::-1])
        n_boxes = sum(len(b) for b in target.labels)
        print(f"{name}: {args.n} target frames ({n_boxes} boxes), {args.oracle} oracle -> {root}")


if __name__ == "__main__":
    main()
