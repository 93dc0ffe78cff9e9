"""How often does the shift verdict cry wolf? Random halves of one set, repeated.

Two sources of "same camera" pairs:
- synthetic Gaussian embeddings (anisotropic, 12-D, 20 vs 20), as in the test suite;
- random halves of the demo target's real embeddings (the shipped base detector, layer as
  configured), reusing the embedding cache.

Usage: .venv/bin/python experiments/analysis/null_rate.py [--repeats 200] [--demo-repeats 100]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from scipy.stats import kstest

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop.analysis.shift import two_sample_shift
from gen_loop.config import CONF_DIR, register_configs


def _rate(pairs: list[tuple[np.ndarray, np.ndarray]], n_perm: int) -> dict[str, float]:
    shifted, significant, p_auc, p_mmd, ratios = 0, 0, [], [], []
    for seed, (a, b) in enumerate(pairs):
        result = two_sample_shift(a, b, ("a", "b"), n_permutations=n_perm, seed=seed)
        shifted += result.shifted
        significant += min(result.auc_p or 1.0, result.mmd_p or 1.0) <= 0.025
        p_auc.append(result.auc_p)
        p_mmd.append(result.mmd_p)
        ratios.append(result.floor_ratio)
    return {
        "repeats": len(pairs),
        "shift_rate": shifted / len(pairs),
        "significant_rate": significant / len(pairs),
        "auc_p_uniform_ks_p": float(kstest(p_auc, "uniform").pvalue),
        "mmd_p_uniform_ks_p": float(kstest(p_mmd, "uniform").pvalue),
        "median_floor_ratio": float(np.median(ratios)),
    }


def _demo_embeddings() -> np.ndarray:
    from gen_loop.embedder.cache import cached_embeddings
    from gen_loop.loop.components import build_embedder, build_generator, resolve_weights
    from gen_loop.target.demo import demo_target
    from gen_loop.target.images import load_image_folder

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = OmegaConf.to_object(compose("analyze", overrides=["out_dir=/tmp/unused"]))
    cache = default_cache_dir()
    configure_offline(cache)
    configure_ultralytics()
    generator, _ = build_generator(cfg.generator)
    demo = cfg.target.demo
    made = demo_target(generator, demo.params, demo.n, demo.seed, cache)
    images = load_image_folder(made.images_dir, (generator.width, generator.height))
    weights = resolve_weights(cfg.embedder, cache)
    embedder = build_embedder(cfg.embedder, weights)
    return cached_embeddings(embedder, images.images, images.fingerprint, cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--demo-repeats", type=int, default=100)
    parser.add_argument("--permutations", type=int, default=99)
    args = parser.parse_args()
    rng = np.random.default_rng(20261125)
    clock = time.perf_counter()
    gauss = []
    for _ in range(args.repeats):
        x = rng.normal(size=(40, 12)) * rng.uniform(0.2, 3.0, size=12)
        gauss.append((x[:20], x[20:]))
    print("gaussian 20 vs 20:", _rate(gauss, args.permutations))
    emb = _demo_embeddings()
    half = len(emb) // 2
    demo = []
    for _ in range(args.demo_repeats):
        order = rng.permutation(len(emb))
        demo.append((emb[order[:half]], emb[order[half : 2 * half]]))
    print(f"demo target halves {half} vs {half}:", _rate(demo, args.permutations))
    print(f"{time.perf_counter() - clock:.0f} s; cache {default_cache_dir()}; {Path.cwd()}")


if __name__ == "__main__":
    main()
