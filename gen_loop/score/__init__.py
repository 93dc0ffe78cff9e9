"""Scorer stage: distance from generated embeddings to the target's, and the target's noise floor.

Fit a :class:`Scorer` once on the target embeddings, then score many batches; the distance maths
are pure functions in :mod:`gen_loop.score.distances`.
"""

from __future__ import annotations

from gen_loop.score.distances import (
    centroid_cosine,
    centroid_l2,
    feature_stats,
    sample_cosine,
    sample_l2,
)
from gen_loop.score.scorer import METRICS, CentroidScorer, Metric, NoiseFloor, Scorer

__all__ = [
    "METRICS",
    "CentroidScorer",
    "Metric",
    "NoiseFloor",
    "Scorer",
    "centroid_cosine",
    "centroid_l2",
    "feature_stats",
    "sample_cosine",
    "sample_l2",
]
