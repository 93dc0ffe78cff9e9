"""The centroid distance: the loop's default objective, and the one with a residual vector."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from gen_loop.score._standardised import _StandardisedScorer
from gen_loop.score.distances import (
    DEFAULT_REL_EPS,
    FloatArray,
    centroid_cosine,
    centroid_l2,
    sample_cosine,
    sample_l2,
)

if TYPE_CHECKING:
    from typing import Self

Metric = Literal["zscore_l2", "l2", "cosine"]
METRICS: tuple[Metric, ...] = get_args(Metric)


class CentroidScorer(_StandardisedScorer):
    """Distance between the centroid of a batch and the centroid of the target.

    Metrics:
        ``zscore_l2`` (default): each feature dimension is standardised by the target's mean and
        scale (:func:`~gen_loop.score.distances.feature_stats`), then the L2 distance between
        centroids is divided by ``sqrt(D)``. The result is the per-dimension RMS of the centroid
        shift in units of the target's std, so it is comparable across layers of different width
        and insensitive to the raw magnitude of the features. A batch from the target's own
        distribution scores about ``sqrt(1/B + 1/N)``.
        ``l2``: raw L2 distance between centroids (no standardisation, no ``sqrt(D)``).
        ``cosine``: ``1 - cosine similarity`` of the raw centroids. Raw, not z-scored: after
        z-scoring the target centroid is the zero vector, where the angle is undefined.

    Per-sample distances use the same space: for ``zscore_l2`` the L2 norm of the z-scored sample
    (the z-scored target centroid is 0) divided by ``sqrt(D)``; for ``l2`` the raw L2 to the raw
    target centroid; for ``cosine`` the cosine distance to the raw target centroid.

    Args:
        metric: One of ``"zscore_l2"``, ``"l2"``, ``"cosine"``.
        rel_eps: Relative floor on the per-dimension scale (``zscore_l2`` only).

    Raises:
        ValueError: If ``metric`` is unknown.
    """

    def __init__(self, metric: Metric = "zscore_l2", rel_eps: float = DEFAULT_REL_EPS) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        super().__init__(rel_eps, standardise=metric == "zscore_l2")
        self.metric: Metric = metric
        self._centroid: FloatArray | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(metric={self.metric!r})"

    @property
    def has_residual(self) -> bool:
        """True for ``zscore_l2`` and ``l2`` (the norm of the centroid shift), not ``cosine``."""
        return self.metric != "cosine"

    def _fit_z(self, z_target: FloatArray) -> None:
        # z-scored, the target centroid is 0 by construction (exactly, not a rounded mean).
        self._centroid = np.zeros(z_target.shape[1]) if self.standardise else z_target.mean(0)

    def _residual(self, batch: FloatArray) -> FloatArray:
        """The centroid shift of ``batch``, a vector whose L2 norm is :meth:`score`.

        ``zscore_l2``: the z-scored batch centroid (the z-scored target centroid is 0) divided by
        ``sqrt(D)``; ``l2``: the raw batch centroid minus the target centroid. A least-squares
        search (``search.refine``) sees all ``D`` components where :meth:`score` gives one number.
        """
        assert self._centroid is not None
        shift = self._z(batch).mean(axis=0) - self._centroid
        return shift / math.sqrt(batch.shape[1]) if self.metric == "zscore_l2" else shift

    def _score(self, batch: FloatArray) -> float:
        assert self._centroid is not None
        feats = self._z(batch)
        # A one-row set's mean is the row itself, so this is the distance between centroids.
        reference = self._centroid[np.newaxis, :]
        if self.metric == "cosine":
            return centroid_cosine(feats, reference)
        distance = centroid_l2(feats, reference)
        return distance / math.sqrt(batch.shape[1]) if self.metric == "zscore_l2" else distance

    def _sample_distances(self, batch: FloatArray) -> FloatArray:
        assert self._centroid is not None
        feats = self._z(batch)
        if self.metric == "cosine":
            return sample_cosine(feats, self._centroid)
        distances = sample_l2(feats, self._centroid)
        return distances / math.sqrt(batch.shape[1]) if self.metric == "zscore_l2" else distances

    def _unfitted_copy(self) -> Self:
        return type(self)(self.metric, self.rel_eps)
