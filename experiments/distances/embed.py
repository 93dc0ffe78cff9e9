"""Render and embed every batch the distance-sensitivity study scores (run once, then score.py).

Usage: .venv/bin/python experiments/distances/embed.py [--out experiments/distances/results]

With the loop's embedder (``conf/embedder/yolov7_tiny.yaml``: the base detector, layer 14,
imgsz 256) and the demo target of ``conf/target/demo.yaml`` (160 images, hidden parameters,
scene seed 777), both built by ``experiments/_demo.py`` as ``run`` builds them, this embeds:

- the target;
- the hidden parameters from scene seeds 0..7 (how far a perfect camera scores, scene to scene);
- for each of the 6 searched parameters (range from ``conf/search/tpe.yaml``), a sweep over its
  range in steps of 10 % of the range through the hidden value, the others at their hidden
  values, from scene seed 0 (the loop's common scene seed), plus the +-10 % points from scene
  seeds 1 and 2;
- a joint shift: every parameter moved by a fraction f of its range (one fixed sign pattern),
  f in 0..0.4, from scene seeds 0, 1, 2.

Every batch has 32 images (the trial batch size). Output: ``embeddings.npz`` (float32, one
array per batch) and ``batches.json`` (what each array is).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo

JOINT_SIGNS = {
    "color_temp_k": 1,
    "red_std_scale": 1,
    "exposure_ev": -1,
    "contrast": -1,
    "vignetting": -1,
    "fisheye": -1,
}  # every move up to f = 0.4 stays inside the search range
BATCH = 32


def plan(
    hidden: dict[str, float], ranges: dict[str, tuple[float, float]]
) -> list[dict[str, object]]:
    """Every batch to render: its kind, parameters, scene seed and labels."""
    out: list[dict[str, object]] = []
    for seed in range(8):
        out.append({"kind": "hidden", "seed": seed, "params": dict(hidden)})
    for name, (low, high) in ranges.items():
        span = high - low
        for k in range(-10, 11):
            value = hidden[name] + 0.1 * k * span
            if not low - 1e-9 <= value <= high + 1e-9:
                continue
            seeds = [0, 1, 2] if abs(k) == 1 else [0]
            for seed in seeds:
                out.append(
                    {
                        "kind": "sweep",
                        "param": name,
                        "step": k,
                        "value": value,
                        "seed": seed,
                        "params": {**hidden, name: value},
                    }
                )
    for f in (0.025, 0.05, 0.1, 0.2, 0.3, 0.4):
        params = {
            n: hidden[n] + JOINT_SIGNS[n] * f * (high - low) for n, (low, high) in ranges.items()
        }
        for seed in (0, 1, 2):
            out.append({"kind": "joint", "fraction": f, "seed": seed, "params": params})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    demo = load_demo()  # the loop's generator, embedder and demo target (embedded here)
    embedder = demo.embedder
    assert demo.target_embeddings is not None
    arrays = {"target": demo.target_embeddings.astype(np.float32)}
    batches = plan(demo.hidden, demo.ranges)  # type: ignore[arg-type]
    for i, b in enumerate(batches):
        params, seed = b["params"], b["seed"]
        assert isinstance(params, dict) and isinstance(seed, int)
        arrays[f"b{i}"] = demo.embed_at(params, BATCH, seed).astype(np.float32)
    np.savez_compressed(args.out / "embeddings.npz", **arrays)  # type: ignore[arg-type]
    meta = {"batches": batches, "embed_s": time.perf_counter() - clock, "dim": embedder.dim}
    (args.out / "batches.json").write_text(json.dumps(meta, indent=1))
    print(f"{len(batches)} batches + target embedded in {meta['embed_s']:.0f} s, D={embedder.dim}")


if __name__ == "__main__":
    main()
