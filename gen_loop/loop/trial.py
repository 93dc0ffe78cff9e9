"""One trial: render a batch with the proposed parameters, embed it, score it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from gen_loop.embedder.base import Embedder
from gen_loop.generator.base import Batch, Generator
from gen_loop.generator.params import ParamValue
from gen_loop.score.scorer import Scorer


@dataclass(frozen=True)
class TrialResult:
    """What a trial measured.

    Attributes:
        distance: the batch's distance to the target.
        batch: the rendered batch.
        embeddings: its embeddings.
        timings: seconds spent in generate, embed and score.
    """

    distance: float
    batch: Batch
    embeddings: np.ndarray
    timings: dict[str, float]


def evaluate_params(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    params: Mapping[str, ParamValue],
    n: int,
    seed: int,
) -> TrialResult:
    """Render ``n`` images from the scene seed ``seed`` with ``params`` and score them.

    Every trial passes the same ``seed`` (common random numbers): only the camera differs
    between trials, so scene content does not drown the signal.
    """
    t0 = time.perf_counter()
    batch = generator.generate(params, n, seed)
    t1 = time.perf_counter()
    embeddings = embedder.embed(batch.images)
    t2 = time.perf_counter()
    distance = scorer.score(embeddings)
    t3 = time.perf_counter()
    if not np.isfinite(distance):
        raise FloatingPointError(f"distance is {distance} (non-finite embeddings?)")
    timings = {"generate_s": t1 - t0, "embed_s": t2 - t1, "score_s": t3 - t2}
    return TrialResult(distance, batch, embeddings, timings)
