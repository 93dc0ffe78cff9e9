"""How uncertain the noise floor of a small target is (issue 12, item 11).

Usage: .venv/bin/python experiments/noise_floor/small_targets.py PX BATCH

For three 160-image demo-camera targets (scene seeds 777-779, the hidden colour temperature and
red std of conf/target/demo.yaml, the shipped base YOLOv7-tiny, layer 14, PX pixels), fits the
centroid zscore_l2 scorer on the first N images for N in 4..160 and prints the floor's batch and
its relative spread (std / mean of 200 splits) at trial batch BATCH. The numbers behind
``gen_loop/search/floor_quality.py`` (``MAX_FLOOR_REL_STD``, ``MIN_FLOOR_REFERENCE``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop.embedder import YoloEmbedder
from gen_loop.embedder.weights import shipped_base_weights
from gen_loop.generator import ProceduralGenerator
from gen_loop.score import CentroidScorer

SIZES = (4, 6, 8, 10, 12, 16, 24, 48, 160)


def main(px: int, batch: int) -> None:
    configure_offline(Path(default_cache_dir()))
    configure_ultralytics()
    embedder = YoloEmbedder("yolov7-tiny", shipped_base_weights(), [14], px, device="cpu")
    generator = ProceduralGenerator(px, px)
    params = {**generator.default_params(), "color_temp_k": 4300.0, "red_std_scale": 0.7}
    for seed in (777, 778, 779):
        target = embedder.embed(generator.generate(params, max(SIZES), seed).images)
        row = []
        for n in SIZES:
            floor = (
                CentroidScorer().fit(target[:n]).noise_floor(batch, 200, np.random.default_rng(0))
            )
            row.append(f"N={n}: batch {floor.batch_size} ±{floor.std / floor.mean:.2f}")
        print(f"seed {seed}: " + ", ".join(row), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
