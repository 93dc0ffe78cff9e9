"""Embedding throughput, side by side in one process: the loop's embedder vs ultralytics' own
``embed`` vs a bare forward of the same network stopped at the embedding layer.

Usage (CPU, the loop's settings):
    .venv/bin/python experiments/throughput/bench_embed.py --imgsz 256 --batch 32
    .venv/bin/python experiments/throughput/bench_embed.py --imgsz 640 --batch 32
GPU (one H100; refused when CUDA is absent):
    .venv/bin/python experiments/throughput/bench_embed.py --device cuda --half \
        --batch 64 --imgsz 640 --n 1024

The three paths get the same images (rendered once by the procedural generator at ``imgsz``,
so nobody resizes), the same batch size, the same layer, the same pooling (global mean, which
is ultralytics' ``adaptive_avg_pool2d(x, 1)``) and the same precision, and all return one
``(N, D)`` array on the host:

- ``loop``: ``YoloEmbedder.embed(uint8 NHWC numpy)`` as a trial calls it (preprocessing
  included), with ``batch_size=--batch``; on CPU it runs each batch in passes of at most
  8 images at 256 px (``CPU_PIXELS_PER_PASS``), the others run ``--batch`` images a pass.
- ``ultralytics``: ``YOLO(weights).embed(list of BGR uint8 arrays, embed=[layer])``, called once
  per batch (a list source is one batch to ultralytics); its letterbox, stacking, flip and
  normalisation included.
- ``bare``: the fused layers up to the embedding layer (ultralytics' routing, no hooks) on a
  float tensor already on the device in channels-last layout, under ``inference_mode``, plus
  the mean pool. Its preprocessing is *excluded* from its img/s and timed separately
  (``bare_preprocess``: uint8 numpy -> device float tensor, the loop's own conversion).
- ``bare_nchw``: the same as ``bare`` in the default (NCHW) layout, to show what
  channels-last buys on this device.

Timing: one warm-up pass of every path, then ``--repeats`` rounds; each round times every path
once over all ``--n`` images, in turn (in a shuffled order), so that a change in machine load
hits all paths alike. The median round gives img/s (the best round is recorded too). Torch
threads are set as the loop sets them (``configure_ultralytics``: every core). Writes a JSON
file (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import build_demo_embedder, compose_run, write_json

LAYER = 14  # the loop's default embedding layer (conf/embedder/yolov7_tiny.yaml)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--half", action="store_true", help="half precision (CUDA only)")
    parser.add_argument("--imgsz", type=int, default=256, help="image size (square), pixels")
    parser.add_argument("--batch", type=int, default=32, help="images per forward pass")
    parser.add_argument("--n", type=int, default=128, help="images per timed pass")
    parser.add_argument("--repeats", type=int, default=11, help="timed rounds (median taken)")
    parser.add_argument("--layer", type=int, default=LAYER, help="embedding layer index")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error(
                f"--device {args.device}: CUDA is not available on this machine "
                "(run the GPU command on a machine with a GPU, or use --device cpu)"
            )
    elif args.half:
        parser.error("--half needs --device cuda (half precision is slow or unsupported on CPU)")
    return args


def pass_size(embedder: Any) -> int:
    """Images per forward pass of the loop's embedder (older versions: its batch size)."""
    return int(getattr(embedder, "pass_size", embedder.batch_size))


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_paths(
    args: argparse.Namespace, images: np.ndarray
) -> tuple[dict[str, Callable[[], np.ndarray]], Callable[[], object], Any]:
    """The timed callables (each embeds all images, returns (N, D) float32 on the host),
    the bare path's preprocessing (timed on its own) and the torch device."""
    import torch

    from gen_loop.embedder.weights import build_model

    # The loop's embedder as `run` builds it (conf/embedder/yolov7_tiny.yaml, base weights).
    cfg = compose_run(
        [
            f"embedder.layers=[{args.layer}]",
            f"embedder.imgsz={args.imgsz}",
            f"embedder.device={args.device}",
            f"embedder.batch_size={args.batch}",
            f"embedder.half={str(args.half).lower()}",
        ]
    )
    embedder, weights = build_demo_embedder(cfg)
    if weights is None:
        raise SystemExit("bench_embed.py needs a checkpoint: embedder.weights is random")
    device = embedder.device  # type: ignore[attr-defined]
    dtype = torch.float16 if args.half else torch.float32
    batches = [images[i : i + args.batch] for i in range(0, len(images), args.batch)]

    # (a) ultralytics' own embed, its own YOLO object (its predictor fuses the model).
    yolo = build_model("yolov7-tiny", weights, seed=0)
    bgr_batches = [[np.ascontiguousarray(im[..., ::-1]) for im in b] for b in batches]
    ul_device = "cpu" if device.type == "cpu" else f"cuda:{device.index or 0}"

    def ultralytics_embed() -> np.ndarray:
        out = []
        for b in bgr_batches:
            vectors = yolo.embed(
                b,
                embed=[args.layer],
                imgsz=args.imgsz,
                device=ul_device,
                half=args.half,
                batch=args.batch,
                verbose=False,
            )
            out.append(torch.stack(vectors).float().cpu())
        return torch.cat(out).numpy()

    # (b) the bare forward: separately built, fused copies of the same network.
    def layers(layout: torch.memory_format) -> tuple[list[Any], set[int]]:
        net = build_model("yolov7-tiny", weights, seed=0).model.fuse(verbose=False).eval()
        net = net.to(device, dtype=dtype, memory_format=layout)
        return list(net.model)[: args.layer + 1], {int(i) for i in net.save}

    def to_device(batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).to(dtype).div_(255.0)
        return x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def preprocess_all() -> list[torch.Tensor]:
        out = [to_device(b) for b in batches]
        synchronize(device)
        return out

    with torch.inference_mode():
        cl_inputs = preprocess_all()
        nchw_inputs = [x.contiguous() for x in cl_inputs]

    def bare(inputs: list[torch.Tensor], layout: torch.memory_format) -> Callable[[], np.ndarray]:
        modules, save = layers(layout)

        @torch.inference_mode()
        def forward(x: Any) -> torch.Tensor:
            outputs: list[torch.Tensor | None] = []
            for m in modules:
                if m.f != -1:
                    x = (
                        outputs[m.f]
                        if isinstance(m.f, int)
                        else [x if j == -1 else outputs[j] for j in m.f]
                    )
                x = m(x)
                outputs.append(x if m.i in save else None)
            return x.float().mean(dim=(2, 3))

        def run() -> np.ndarray:
            return torch.cat([forward(x) for x in inputs]).cpu().numpy()

        return run

    print(f"loop embedder: {args.batch}-image batches in passes of {pass_size(embedder)} images")
    paths = {
        "loop": lambda: embedder.embed(images),
        "ultralytics": ultralytics_embed,
        "bare": bare(cl_inputs, torch.channels_last),
        "bare_nchw": bare(nchw_inputs, torch.contiguous_format),
    }
    paths["_embedder"] = embedder  # type: ignore[assignment]  # for its pass size
    return paths, preprocess_all, device


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from gen_loop._env import configure_offline, configure_ultralytics

    configure_offline()
    configure_ultralytics()
    import torch

    from gen_loop.generator import ProceduralGenerator

    clock = time.perf_counter()
    images = ProceduralGenerator(args.imgsz, args.imgsz).generate({}, args.n, seed=0).images
    render_s = time.perf_counter() - clock
    paths, preprocess_all, device = build_paths(args, images)
    loop_pass = pass_size(paths.pop("_embedder"))

    outputs = {name: fn() for name, fn in paths.items()}  # warm-up, and the agreement check
    preprocess_all()
    reference = outputs["bare"]
    scale = float(np.abs(reference).max())
    agreement = {
        name: float(np.abs(out - reference).max() / scale) for name, out in outputs.items()
    }

    seconds: dict[str, list[float]] = {name: [] for name in [*paths, "bare_preprocess"]}
    order = [*paths.items(), ("bare_preprocess", preprocess_all)]
    rng = random.Random(0)
    for _ in range(args.repeats):
        rng.shuffle(order)  # no path always runs first (or right after another)
        for name, fn in order:
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            seconds[name].append(time.perf_counter() - start)

    median = {name: statistics.median(s) for name, s in seconds.items()}
    ips = {name: args.n / s for name, s in median.items()}
    best = {name: args.n / min(s) for name, s in seconds.items()}
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "loop_pass_size": loop_pass,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "render_s": render_s,
        "seconds": seconds,
        "images_per_s": ips,
        "best_images_per_s": best,
        "max_rel_diff_vs_bare": agreement,
        "ratios": {
            "loop/bare": ips["loop"] / ips["bare"],
            "loop/ultralytics": ips["loop"] / ips["ultralytics"],
            "bare_nchw/bare": ips["bare_nchw"] / ips["bare"],
        },
        "best_ratios": {
            "loop/bare": best["loop"] / best["bare"],
            "loop/ultralytics": best["loop"] / best["ultralytics"],
        },
    }
    print(
        f"{args.n} images {args.imgsz}px, batch {args.batch}, layer {args.layer}, "
        f"{device} {'fp16' if args.half else 'fp32'}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}"
    )
    for name, value in ips.items():
        print(
            f"  {name:16s} {value:9.1f} img/s (best round {best[name]:9.1f})   "
            f"max rel diff vs bare {agreement.get(name, 0):.1e}"
        )
    for name, value in result["ratios"].items():
        print(f"  {name:18s} {value:.3f}")
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
