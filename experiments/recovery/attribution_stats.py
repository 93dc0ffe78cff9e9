"""Issue 11, mismatch: does a residual of image statistics name the unsearched parameters?

Usage (after ``any_camera.py --arm default --cameras 100-109``, as attribution.py):

    .venv/bin/python experiments/recovery/attribution_stats.py --cameras 100-109

The loop ranks the unsearched suspects on the embedding residual (the z-scored centroid
shift); attribution.py showed that there gamma and saturation hide behind the sensor noise and
the searched tone parameters (both right in 6/10). Here every point the attribution renders is
also summarised by per-image statistics (gen_loop.analysis.metadata's properties and five luma
quantiles, which see a tone curve's shape), z-scored by the target images' own spread exactly
as the embedding residual is, and the loop's rule (:func:`gen_loop.search.attribution.rank`)
ranks the suspects on three residuals from the very same renders:

- ``embedding``: the loop's residual (the table of attribution.py, re-measured);
- ``stats``: the statistics alone;
- ``both``: the two concatenated, the statistics block scaled so that its squared norm
  weighs as much as the embedding block's at the best point.

Writes ``attribution_stats.json`` beside this script and prints the table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from any_camera import OUT, UNSEARCHED, hidden_of, target_overrides
from attribution import SEEN, measure, scored, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo

from gen_loop.analysis.metadata import image_properties
from gen_loop.search.attribution import Effects, measure_effects, rank, unsearched_numeric

HERE = Path(__file__).resolve().parent
RESULT = HERE / "attribution_stats.json"
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
VARIANTS = ("embedding", "stats", "both")


def image_stats(images: np.ndarray) -> np.ndarray:
    """(N, K) per-image statistics: the analysis properties and the luma quantiles."""
    props = image_properties(images)
    luma = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    quantiles = np.quantile(luma.reshape(len(images), -1), QUANTILES, axis=1).T
    return np.column_stack([*props.values(), quantiles])


def split_effects(effects: Effects, cut: int, variant: str, weight: float) -> Effects:
    """``effects`` (on the concatenated [embedding, stats] vector) on one variant's rows."""

    def rows(v: np.ndarray) -> np.ndarray:
        if variant == "embedding":
            return v[:cut]
        if variant == "stats":
            return v[cut:]
        return np.concatenate([v[:cut], weight * v[cut:]])

    return Effects(
        rows(effects.residual),
        rows(effects.searched),
        effects.searched_low,
        effects.searched_high,
        {
            k: (None if c is None else rows(c), lo, hi, spec)
            for k, (c, lo, hi, spec) in effects.candidates.items()
        },
    )


def one_target(camera: int) -> dict[str, Any]:
    run = json.loads((OUT / f"default_c{camera}_s0.json").read_text())
    hidden = hidden_of(camera)
    demo = load_demo(target_overrides(camera))
    n, seed = demo.cfg.search.batch_size, demo.cfg.search.scene_seed
    params = {**demo.base_params, **run["best_params"]}
    target_stats = image_stats(demo.target.images.images)
    keep = np.all(np.isfinite(target_stats), axis=0) & (target_stats.std(axis=0) > 0)
    mu, sigma = target_stats[:, keep].mean(axis=0), target_stats[:, keep].std(axis=0)

    def both_at(p: dict[str, Any]) -> np.ndarray:
        images = demo.render(p, n, seed)
        emb = demo.scorer.residual(np.asarray(demo.embedder.embed(images)))  # type: ignore[attr-defined]
        stats = np.nan_to_num((image_stats(images)[:, keep].mean(axis=0) - mu) / sigma)
        return np.concatenate([np.asarray(emb, np.float64), stats])

    candidates = unsearched_numeric(
        demo.generator.parameters, set(demo.space.distributions), set(demo.space.fixed)
    )
    r = both_at(params)
    cut = r.size - int(keep.sum())
    effects = measure_effects(r, params, candidates, demo.ranges, both_at)
    emb2, stats2 = float(r[:cut] @ r[:cut]), float(r[cut:] @ r[cut:])
    weight = float(np.sqrt(emb2 / stats2)) if stats2 > 0 else 1.0
    out: dict[str, Any] = {
        "camera": camera,
        "seen": camera in SEEN,
        "unsearched": {k: hidden[k] for k in UNSEARCHED},
        "best_over_floor": run["best_over_floor"],
        "dims": {"embedding": cut, "stats": int(keep.sum())},
        "stats_weight": weight,
    }
    for variant in VARIANTS:
        out[variant] = scored(rank(split_effects(effects, cut, variant, weight)))
    return out


def main() -> None:
    print(table(measure(__doc__.splitlines()[0], one_target, RESULT), VARIANTS))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    main()
