"""Write the selected samples as the fine-tuning dataset, with a manifest of each one's seed
and distance."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen_loop.config.schema import SelectionConfig
from gen_loop.generator.base import Batch
from gen_loop.generator.params import ParamValue
from gen_loop.generator.yolo_io import write_yolo_dataset


@dataclass(frozen=True)
class Selection:
    """The selected samples.

    Attributes:
        batch: the selected images and labels, closest first.
        distances: their distances to the target centroid.
        threshold: the distance threshold that was applied.
        pool_size: how many samples were rendered.
        data_yaml: the YOLO dataset written from them.
        manifest: a JSON file listing each selected sample, its seed and distance.
        n_val: how many of them (the closest) form the validation split.
    """

    batch: Batch
    distances: np.ndarray
    threshold: float
    pool_size: int
    data_yaml: Path
    manifest: Path
    n_val: int


def write_selection(
    pool: Batch,
    chosen: np.ndarray,
    distances: np.ndarray,
    threshold: float,
    cfg: SelectionConfig,
    val_fraction: float,
    out_dir: Path,
    camera: np.ndarray | None = None,
    cameras: Sequence[Mapping[str, ParamValue]] = (),
) -> Selection:
    """Write ``pool[chosen]`` as the fine-tuning dataset and its manifest.

    ``camera[i]`` (optional) is the index in ``cameras`` of the parameters that rendered
    ``pool[i]``; both go to the manifest.

    The first ``val_fraction`` of ``chosen`` (the closest, when ``chosen`` is ordered by
    distance) form the validation split, the rest the training split.
    """
    selected = pool.subset(chosen)
    n_val = round(len(selected) * val_fraction) if len(selected) >= 5 else 0
    train = selected.subset(np.arange(n_val, len(selected)))
    val = selected.subset(np.arange(n_val)) if n_val else None
    data_yaml = write_yolo_dataset(train, out_dir, val=val, prefix="sel")
    manifest = out_dir / "manifest.json"
    rows = [
        {
            "rank": r,
            "pool_index": int(i),
            "seed": int(pool.seeds[i]),
            "distance": float(distances[i]),
            "split": "val" if r < n_val else "train",
        }
        | ({} if camera is None else {"camera": int(camera[i])})
        for r, i in enumerate(chosen)
    ]
    manifest.write_text(
        json.dumps(
            {
                "params": pool.params,
                "threshold": threshold,
                "method": cfg.method,
                "pool_size": cfg.pool_size,
                "pool_seed": cfg.pool_seed,
                "samples": rows,
                **({"cameras": [dict(c) for c in cameras]} if cameras else {}),
            },
            indent=2,
        )
    )
    return Selection(selected, distances[chosen], threshold, len(pool), data_yaml, manifest, n_val)
