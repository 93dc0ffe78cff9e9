"""Scorer stage: distance from generated embeddings to the target's, and the target's noise floor.

Fit a :class:`Scorer` once on the target embeddings, then score many batches; the distance maths
are pure functions (:mod:`~gen_loop.score.distances`, :mod:`~gen_loop.score.frechet`,
:mod:`~gen_loop.score.mmd`, :mod:`~gen_loop.score.neighbours`).

Which distance to use when (``score=...``; measured at the trial batch size of 32 on the demo
target with the base detector's layer 14, experiments/distances/RESULTS.md):

- ``centroid`` (``zscore_l2``, the default): the search objective. Monotone in every parameter
  (53/54 steps), linear in a joint shift, free to compute, and the floor the convergence rule
  rescales by sampling theory.
- ``frechet``: when the camera difference may lie in the spread or correlation of the features,
  or a tighter stop at the floor matters. The most sensitive well-behaved distance measured
  (54/54 monotone, SNR at +-10 % of a range 30-40 % above zscore_l2) with the least scene-to-scene
  noise at the exact parameters (+-9 % of the floor against +-24 %); its floor carries a stable
  covariance term, so ratios to the floor are smaller. Keep Ledoit-Wolf shrinkage (a batch of 32
  in 128 channels has a rank-31 covariance; shrinkage gave 13-19 % more SNR). ~2 ms a score.
- ``mmd`` (RBF, median bandwidth): a two-sample check near convergence, not a search
  objective: it saturates a fifth of a range away and is not monotone in red std.
- ``kid``: for reporting (comparable with the literature); the strongest colour response, but
  its clipped floor is too noisy for the convergence rule.
- ``prdc``: for its per-sample view (``sample_distances`` <= 1: inside the target's k-NN
  manifold) and :meth:`PRDCScorer.metrics` (precision, recall, density, coverage of any set);
  as a batch score ``1 - coverage`` saturates at 1 after about 5 % of a joint shift.
"""

from __future__ import annotations

from gen_loop.score.centroid import METRICS, CentroidScorer, Metric
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
from gen_loop.score.scorer import NoiseFloor, Scorer
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
