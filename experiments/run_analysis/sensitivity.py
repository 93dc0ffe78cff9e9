"""How small a camera error do the run analysis' shift tests see?

The demo target (160 images, hidden camera of conf/target/demo.yaml) against batches rendered
from other scenes (seed 0 unless said) at: the hidden camera itself; a camera found by a
default run (``--found``); and the hidden camera with one parameter set to the found value.
Every row: the domain classifier's AUC and p, MMD's p, and the centroid distance over the
noise floor (the loop's own stop rule), as ``gen_loop.analysis.shift.two_sample_shift``
computes them for the run's report.

    python experiments/run_analysis/sensitivity.py [--n 64] [--permutations 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo

from _demo import load_demo

from gen_loop.analysis.shift import headline, two_sample_shift

#: The best camera of the default run on the demo (README, 2026-12-02: trial 26, 1.00x floor).
FOUND = {
    "color_temp_k": 4359.0,
    "red_std_scale": 0.7097,
    "exposure_ev": 0.3496,
    "contrast": 1.136,
    "vignetting": 0.3335,
    "fisheye": 0.5314,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="images per compared batch")
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--found", type=json.loads, default=FOUND, help="a camera as JSON")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("sensitivity.json"))
    args = parser.parse_args()
    demo = load_demo()
    assert demo.target_embeddings is not None
    target, hidden = demo.target_embeddings, demo.hidden
    ranges = demo.ranges
    cases: list[tuple[str, dict[str, float], int]] = [
        ("hidden camera, scene seed 0", hidden, 0),
        ("hidden camera, scene seed 5", hidden, 5),
        ("found camera", args.found, 0),
    ]
    for key, value in args.found.items():
        off = abs(value - hidden[key]) / (ranges[key][1] - ranges[key][0])
        cases.append(
            (f"hidden, but {key}={value:g} ({off:.1%} of range)", {**hidden, key: value}, 0)
        )
    rows = []
    print(f"{'batch':52s} | AUC   p      | MMD p  | centroid/floor | headline")
    for name, params, seed in cases:
        clock = time.perf_counter()
        emb = demo.embed_at(params, args.n, seed)
        r = two_sample_shift(emb, target, ("batch", "target"), n_permutations=args.permutations)
        rows.append(
            {
                "batch": name,
                "auc": r.auc,
                "auc_p": r.auc_p,
                "mmd_p": r.mmd_p,
                "floor_ratio": r.floor_ratio,
                "headline": headline(r),
                "seconds": time.perf_counter() - clock,
            }
        )
        print(
            f"{name:52s} | {r.auc:.3f} {r.auc_p:.3f} | {r.mmd_p:.3f}  | {r.floor_ratio:14.2f} "
            f"| {headline(r)}",
            flush=True,
        )
    args.out.write_text(json.dumps({"n": args.n, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
