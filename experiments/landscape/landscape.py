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
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo

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
    layers = [int(x) for x in args.layers.split(",")]
    demo = load_demo(
        [
            f"embedder.layers=[{','.join(map(str, layers))}]",
            f"embedder.weights={args.weights}",
            f"score.metric={args.metric}",
        ]
    )
    scorer = demo.scorer  # fitted on the demo target
    hidden = demo.hidden
    floor = scorer.noise_floor(args.batch, 10, np.random.default_rng(0)).mean

    def ratio(params: dict[str, float]) -> float:
        return scorer.score(demo.embed_at(params, args.batch, 0)) / floor

    print(f"layers {layers}, weights {args.weights}, metric {args.metric}, floor {floor:.3f}")
    print(f"exact hidden parameters: {ratio(hidden):.2f} x floor")
    print("| parameter | value: distance / floor |\n|---|---|")
    for name, values in GRID.items():
        cells = ", ".join(f"{v:g}: {ratio({**hidden, name: float(v)}):.2f}" for v in values)
        print(f"| {name} (hidden {hidden[name]:g}) | {cells} |")


if __name__ == "__main__":
    main()
