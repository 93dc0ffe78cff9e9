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
from gen_loop.score.frechet import (
    frechet_distance,
    frechet_gaussians,
    ledoit_wolf_shrinkage,
    mahalanobis,
    shrunk_covariance,
)
from gen_loop.score.mmd import KERNELS, Kernel, median_bandwidth, mmd2_unbiased, sample_mmd2
from gen_loop.score.neighbours import PRDC, coverage, knn_radii, manifold_ratio, prdc
from gen_loop.score.scorer import METRICS, CentroidScorer, Metric, NoiseFloor, Scorer
from gen_loop.score.set_scorers import FrechetScorer, MMDScorer, PRDCScorer

#: Every ``score.metric``: the centroid metrics, then the distribution scorers.
SCORE_METRICS: tuple[str, ...] = (*METRICS, "frechet", "mmd", "prdc")

__all__ = [
    "KERNELS",
    "METRICS",
    "PRDC",
    "SCORE_METRICS",
    "CentroidScorer",
    "FrechetScorer",
    "Kernel",
    "MMDScorer",
    "Metric",
    "NoiseFloor",
    "PRDCScorer",
    "Scorer",
    "centroid_cosine",
    "centroid_l2",
    "coverage",
    "feature_stats",
    "frechet_distance",
    "frechet_gaussians",
    "knn_radii",
    "ledoit_wolf_shrinkage",
    "mahalanobis",
    "manifold_ratio",
    "median_bandwidth",
    "mmd2_unbiased",
    "prdc",
    "sample_cosine",
    "sample_l2",
    "sample_mmd2",
    "shrunk_covariance",
]
