"""ONNX vs torch embedding throughput, side by side in one process on the same CPU.

Usage:
    .venv/bin/python experiments/throughput/bench_onnx.py --imgsz 256 --n 64 --repeats 7 \
        --out experiments/throughput/results/onnx_cpu_256.json

The shipped base detector is exported to ONNX (legacy TorchScript exporter, fused, free batch
and size) into a temporary folder; ``YoloEmbedder`` and ``OnnxEmbedder`` then embed the same
rendered images at the same layer, batch size and pass size, in rounds whose order alternates
(torch first, then ONNX first, ...), so that other load on the machine hits both arms alike.
The median round gives img/s; the rows of the two arms are compared too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layer", type=int, default=14)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from gen_loop._env import configure_offline, configure_ultralytics

    configure_offline()
    configure_ultralytics()
    import onnx
    import torch

    from gen_loop.embedder import OnnxEmbedder, YoloEmbedder, build_model, shipped_base_weights
    from gen_loop.generator import ProceduralGenerator

    images = ProceduralGenerator(args.imgsz, args.imgsz).generate({}, args.n, seed=0).images
    weights = shipped_base_weights()
    net = build_model("yolov7-tiny", weights, seed=0).model.fuse(verbose=False).eval()
    path = Path(tempfile.mkdtemp()) / "base.onnx"
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, args.imgsz, args.imgsz),),
        str(path),
        dynamo=False,
        input_names=["images"],
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}},
        opset_version=17,
    )
    scope = f"/model.{args.layer}/"
    name = [n for n in onnx.load(str(path)).graph.node if n.name.startswith(scope)][-1].output[0]
    arms = {
        "torch": YoloEmbedder("yolov7-tiny", weights, [args.layer], args.imgsz, "cpu", args.batch),
        "onnx": OnnxEmbedder(path, [name], args.imgsz, "cpu", args.batch),
    }
    rows = {k: e.embed(images) for k, e in arms.items()}  # warm-up and agreement
    ref = rows["torch"]
    max_rel = float(np.abs(rows["onnx"] - ref).max() / np.abs(ref).max())
    seconds: dict[str, list[float]] = {k: [] for k in arms}
    for r in range(args.repeats):
        for k in list(arms) if r % 2 == 0 else list(arms)[::-1]:
            start = time.perf_counter()
            arms[k].embed(images)
            seconds[k].append(time.perf_counter() - start)
    ips = {k: args.n / statistics.median(s) for k, s in seconds.items()}
    ratios = [t / o for t, o in zip(seconds["torch"], seconds["onnx"], strict=True)]
    result = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "tensor": name,
        "torch_threads": torch.get_num_threads(),
        "pass_size": {k: e.pass_size for k, e in arms.items()},
        "seconds": seconds,
        "images_per_s": ips,
        "onnx/torch": ips["onnx"] / ips["torch"],
        "onnx/torch per round": ratios,
        "max_rel_diff": max_rel,
    }
    print(
        f"{args.n} images {args.imgsz}px layer {args.layer} ({name}), "
        f"{torch.get_num_threads()} threads, median of {args.repeats}: "
        f"torch {ips['torch']:.1f} img/s, onnx {ips['onnx']:.1f} img/s, "
        f"onnx/torch {ips['onnx'] / ips['torch']:.3f} (rounds {min(ratios):.2f}-"
        f"{max(ratios):.2f}); max rel diff {max_rel:.1e}"
    )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
