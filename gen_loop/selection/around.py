"""Training sets rendered under many cameras: around the found one (``selection.method=jitter``)
or drawn uniformly from the search space (domain randomisation, the control of
``finetune.control=randomised``).

A camera the generator cannot reproduce exactly (every real one) is matched best by *some*
spread around the search's answer: the search pins down what the embedding sees and leaves
the rest uncertain. The jitter's spread per parameter is the larger of a set fraction of its
range and the spread of the best trials' values, so parameters the best trials disagree on
(the ones the embedding cannot see) vary most. Both sets keep the pool's scenes, in blocks of
consecutive scenes per camera, so they differ from the loop's other selections by camera only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from gen_loop.generator.base import Batch, Generator
from gen_loop.generator.params import ParamValue
from gen_loop.search.refine import Box
from gen_loop.search.space import SearchSpace


def camera_spread(
    cameras: Sequence[Mapping[str, ParamValue]], box: Box, jitter: float
) -> np.ndarray:
    """Per parameter of ``box``, the jitter's standard deviation on the unit cube: the larger
    of ``jitter`` and the standard deviation of ``cameras`` (the best trials) there."""
    if not cameras:
        return np.full(len(box.names), float(jitter))
    unit = np.stack([box.to_unit(c) for c in cameras])
    return np.maximum(float(jitter), unit.std(axis=0))


def jittered_cameras(
    best: Mapping[str, ParamValue],
    spread: np.ndarray,
    box: Box,
    n: int,
    rng: np.random.Generator,
) -> list[dict[str, ParamValue]]:
    """``n`` cameras around ``best``: each parameter of ``box`` drawn from a normal of
    standard deviation ``spread`` (unit cube; log-scale ones on their log) about the best
    value, reflected at the bounds; the other parameters as in ``best``."""
    centre = box.to_unit(best)
    out: list[dict[str, ParamValue]] = []
    for _ in range(n):
        u = np.mod(centre + rng.normal(0.0, 1.0, len(centre)) * spread, 2.0)
        u = np.where(u > 1.0, 2.0 - u, u)  # reflect: clipping would pile draws on the bounds
        out.append({**best, **box.from_unit(u)})
    return out


def uniform_point(space: SearchSpace, rng: np.random.Generator) -> dict[str, ParamValue]:
    """One point drawn uniformly from ``space`` (log-uniform on a log scale; inactive
    conditional parameters left out)."""
    chosen: dict[str, ParamValue] = {}
    for name, dist in space.distributions.items():
        if not space.active(name, chosen):
            continue
        if isinstance(dist, CategoricalDistribution):
            chosen[name] = dist.choices[int(rng.integers(len(dist.choices)))]  # type: ignore[assignment]
        elif isinstance(dist, IntDistribution):
            chosen[name] = int(rng.integers(dist.low, dist.high + 1))
        elif isinstance(dist, FloatDistribution):
            low, high = (
                (np.log(dist.low), np.log(dist.high)) if dist.log else (dist.low, dist.high)
            )
            value = float(rng.uniform(low, high))
            chosen[name] = float(np.exp(value)) if dist.log else value
        else:
            raise TypeError(f"unsupported distribution for {name}: {dist!r}")
    return chosen


def render_blocks(
    generator: Generator, cameras: Sequence[Mapping[str, ParamValue]], n: int, seed: int
) -> tuple[Batch, np.ndarray]:
    """Scenes ``0..n-1`` of the batch seed ``seed``, consecutive blocks of them each rendered
    under one of ``cameras`` (as even as ``n`` allows).

    Image ``i`` of a batch depends only on its parameters, the seed and ``i`` (the generator
    contract), so block ``[lo, hi)`` is the tail of a batch of ``hi``: ``n (k + 1) / 2``
    renders for ``k`` cameras.

    Returns:
        The batch (its ``params`` the first camera's) and, per scene, its camera's index.
    """
    if not 1 <= len(cameras) <= n:
        raise ValueError(
            f"render_blocks needs 1 to {n} cameras for {n} scenes, got {len(cameras)}"
        )
    bounds = np.linspace(0, n, len(cameras) + 1).round().astype(int)
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    seeds: list[int] = []
    camera = np.empty(n, dtype=int)
    for index, (params, lo, hi) in enumerate(zip(cameras, bounds[:-1], bounds[1:], strict=True)):
        block = generator.generate(params, int(hi), seed).subset(np.arange(lo, hi))
        images.extend(block.images)
        labels.extend(block.labels)
        seeds.extend(block.seeds)
        camera[lo:hi] = index
    batch = Batch(
        np.stack(images), tuple(labels), generator.class_names, dict(cameras[0]), tuple(seeds)
    )
    return batch, camera
