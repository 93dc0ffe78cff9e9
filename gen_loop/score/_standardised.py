"""The z-scoring that the centroid and distribution scorers share."""

from __future__ import annotations

from abc import abstractmethod

from gen_loop.score.distances import DEFAULT_REL_EPS, FloatArray, feature_stats
from gen_loop.score.scorer import Scorer


class _StandardisedScorer(Scorer):
    """A scorer working on features z-scored by the target's per-dimension mean and scale.

    The z-score lives here once: :meth:`_fit` takes the statistics of the target
    (:func:`~gen_loop.score.distances.feature_stats`) and hands the z-scored target to
    :meth:`_fit_z`; subclasses map any batch with :meth:`_z`. With ``standardise=False`` (the
    raw centroid metrics) :meth:`_z` is the identity and no statistics are taken.

    Args:
        rel_eps: Relative floor on the per-dimension scale of the z-score.
        standardise: Whether to z-score at all.

    Raises:
        ValueError: If ``rel_eps`` is not positive.
    """

    def __init__(self, rel_eps: float = DEFAULT_REL_EPS, standardise: bool = True) -> None:
        if not rel_eps > 0:
            raise ValueError(f"rel_eps must be positive, got {rel_eps}")
        super().__init__()
        self.rel_eps = rel_eps
        self.standardise = standardise
        self._mean: FloatArray | None = None
        self._scale: FloatArray | None = None

    def _z(self, x: FloatArray) -> FloatArray:
        if not self.standardise:
            return x
        assert self._mean is not None and self._scale is not None
        return (x - self._mean) / self._scale

    def _fit(self, target: FloatArray) -> None:
        if self.standardise:
            self._mean, self._scale = feature_stats(target, self.rel_eps)
        self._fit_z(self._z(target))

    @abstractmethod
    def _fit_z(self, z_target: FloatArray) -> None:
        """Fit the reference on the z-scored target (the raw one without ``standardise``)."""
