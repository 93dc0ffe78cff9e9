"""Is the search well posed? One-parameter sweeps of the distance around the demo target.

Usage: .venv/bin/python experiments/landscape/landscape.py --layers 14 [--weights base|random]
       [--metric zscore_l2|l2|cosine]

Renders the demo target (160 images, its hidden parameters, seed 777), then for each searched
parameter sweeps its value with the other parameters held at their hidden values, rendering a
32-image batch from scene seed 0 each time (common random numbers, as in the loop), and prints
distance / noise floor. A well-posed layer gives a curve with its minimum (about 1x the floor)
at the hidden value and a monotone rise on both sides.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop.embedder import YoloEmbedder, shipped_base_weights
from gen_loop.generator import ProceduralGenerator
from gen_loop.score import CentroidScorer

CONF = Path(__file__).resolve().parents[2] / "conf"
HIDDEN: dict[str, float] = dict(OmegaConf.load(CONF / "target" / "demo.yaml").demo.params)
GRID = {
    "color_temp_k": [3500, 4300, 5500, 6500, 8400, 10000],
    "red_std_scale": [0.4, 0.7, 1.0, 1.4],
    "exposure_ev": [-1.0, 0.0, 0.4, 1.0, 1.5],
    "contrast": [0.6, 0.9, 1.15, 1.4],
    "vignetting": [0.0, 0.45, 0.8],
    "fisheye": [0.0, 0.3, 0.55, 0.9],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="14", help="comma-separated layer indices")
    parser.add_argument("--weights", default="base", choices=["base", "random"])
    parser.add_argument("--metric", default="zscore_l2", choices=["zscore_l2", "l2", "cosine"])
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    configure_offline(default_cache_dir())
    configure_ultralytics()
    layers = [int(x) for x in args.layers.split(",")]
    weights: Path | None = shipped_base_weights() if args.weights == "base" else None
    gen = ProceduralGenerator(256, 256)
    embedder = YoloEmbedder("yolov7-tiny", weights, layers, 256, "cpu")
    scorer = CentroidScorer(args.metric).fit(embedder.embed(gen.generate(HIDDEN, 160, 777).images))
    floor = scorer.noise_floor(args.batch, 10, np.random.default_rng(0)).mean

    def ratio(params: dict[str, float]) -> float:
        return scorer.score(embedder.embed(gen.generate(params, args.batch, 0).images)) / floor

    print(f"layers {layers}, weights {args.weights}, metric {args.metric}, floor {floor:.3f}")
    print(f"exact hidden parameters: {ratio(HIDDEN):.2f} x floor")
    print("| parameter | value: distance / floor |\n|---|---|")
    for name, values in GRID.items():
        cells = ", ".join(f"{v:g}: {ratio({**HIDDEN, name: float(v)}):.2f}" for v in values)
        print(f"| {name} (hidden {HIDDEN[name]:g}) | {cells} |")


if __name__ == "__main__":
    main()
