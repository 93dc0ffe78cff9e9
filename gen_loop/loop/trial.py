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

#: ``search.scene_seeds``: ``common`` renders every trial from ``search.scene_seed`` (common
#: random numbers); ``fresh`` gives each trial its own scenes, derived from the trial number.
SCENE_SEED_MODES = ("common", "fresh")


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


def trial_scene_seed(mode: str, scene_seed: int, trial_number: int) -> int:
    """The scene seed a trial renders from.

    Args:
        mode: ``common`` (every trial renders ``scene_seed``) or ``fresh`` (a seed derived from
            ``(scene_seed, trial_number)``: other scenes in every trial, reproducible).
        scene_seed: ``search.scene_seed``.
        trial_number: the Optuna trial number.

    Raises:
        ValueError: for an unknown ``mode`` (naming ``search.scene_seeds``).
    """
    if mode == "common":
        return scene_seed
    if mode == "fresh":
        # A third word keeps these apart from the per-image seeds SeedSequence([seed, i]).
        return int(np.random.SeedSequence([scene_seed, trial_number, 1]).generate_state(1)[0])
    raise ValueError(f"search.scene_seeds must be one of {SCENE_SEED_MODES}, got {mode!r}")


def evaluate_params(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    params: Mapping[str, ParamValue],
    n: int,
    seed: int,
) -> TrialResult:
    """Render ``n`` images from the scene seed ``seed`` with ``params`` and score them.

    By default every trial passes the same ``seed`` (common random numbers): only the camera
    differs between trials, so scene content does not drown the signal (see
    :func:`trial_scene_seed` and ``search.scene_seeds``).
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
