"""Procedural generator throughput (images/s) and where its time goes.

Usage: .venv/bin/python experiments/throughput/bench_generator.py [--size 256] [--n 64]
    [--repeats 5] [--out experiments/throughput/results/generator.json]

Renders ``--n`` images at ``--size`` px with the default camera and with the demo target's
hidden camera (conf/target/demo.yaml), as a trial does (one ``generate`` call, the trial's
common scene seed), ``--repeats`` times each, in turn; the median gives images/s. Then one
cProfile of each and the top functions by own time, to show the hot spots. A second call
with the same seed is timed separately (``repeat_call``): trials render the same scenes
every time (common random numbers), which a scene cache can exploit.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import compose_run, write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="image width and height, px")
    parser.add_argument("--n", type=int, default=64, help="images per generate call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per camera")
    parser.add_argument("--seed", type=int, default=0, help="scene seed")
    parser.add_argument("--top", type=int, default=12, help="profile rows to print")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    return parser.parse_args(argv)


def profile_top(fn: Any, top: int) -> list[dict[str, Any]]:
    """The ``top`` functions by own time in one call of ``fn``."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (file, line, name), (_cc, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({name})",
                "calls": calls,
                "own_s": tottime,
                "cum_s": cumtime,
            }
        )
    return sorted(rows, key=lambda r: -r["own_s"])[:top]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from gen_loop._env import configure_offline

    configure_offline()
    from gen_loop.generator import ProceduralGenerator

    cameras = {"default": {}, "demo": dict(compose_run().target.demo.params)}  # demo camera
    generator = ProceduralGenerator(args.size, args.size)
    for params in cameras.values():  # warm-up: imports, albumentations set-up
        generator.generate(params, 2, args.seed + 1)
    seconds: dict[str, list[float]] = {name: [] for name in cameras}
    for repeat in range(args.repeats):
        for name, params in cameras.items():
            # A new seed each round: a first render of these scenes, as a fresh trial's.
            fresh = ProceduralGenerator(args.size, args.size)
            start = time.perf_counter()
            fresh.generate(params, args.n, args.seed + 100 * (repeat + 1))
            seconds[name].append(time.perf_counter() - start)
    repeat_s: dict[str, list[float]] = {name: [] for name in cameras}
    for _ in range(args.repeats):
        for name, params in cameras.items():
            start = time.perf_counter()
            generator.generate(params, args.n, args.seed)
            repeat_s[name].append(time.perf_counter() - start)
    profiles = {
        name: profile_top(
            lambda p=params: ProceduralGenerator(args.size, args.size).generate(
                p, args.n, args.seed + 7
            ),
            args.top,
        )
        for name, params in cameras.items()
    }
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "seconds": seconds,
        "images_per_s": {k: args.n / statistics.median(v) for k, v in seconds.items()},
        "repeat_call_images_per_s": {
            k: args.n / statistics.median(v) for k, v in repeat_s.items()
        },
        "profile": profiles,
    }
    print(f"{args.n} images {args.size}px, median of {args.repeats}")
    for name in cameras:
        print(
            f"  {name:8s} first render {result['images_per_s'][name]:7.1f} img/s, "
            f"same seed again {result['repeat_call_images_per_s'][name]:7.1f} img/s"
        )
        for row in profiles[name]:
            print(
                f"      {row['own_s']:7.3f} s own {row['cum_s']:7.3f} s cum "
                f"{row['calls']:6d}x {row['function']}"
            )
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
