"""Scorers that compare whole distributions, not only centroids: Fréchet, MMD, PRDC coverage.

All of them first standardise every feature dimension by the target's mean and scale
(``_StandardisedScorer``, the base of the default ``zscore_l2`` too), so they
are invariant to a per-dimension affine rescaling of the features and insensitive to the raw
magnitude of a layer. Every score is non-negative and 0 for a batch equal to the target, as the
search (which minimises ``log(distance)``) and the convergence rule (``best <= factor x noise
floor``) need; the noise floor is the base class's (a fresh fit on the complement of each split).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gen_loop.score._standardised import _StandardisedScorer
from gen_loop.score.distances import DEFAULT_REL_EPS, FloatArray
from gen_loop.score.frechet import frechet_gaussians, mahalanobis, shrunk_covariance
from gen_loop.score.mmd import (
    KERNELS,
    Kernel,
    KernelName,
    median_bandwidth,
    mmd2_unbiased,
    sample_mmd2,
)
from gen_loop.score.neighbours import _ratios, coverage, knn_radii, manifold_ratio, prdc

if TYPE_CHECKING:
    from typing import Self

    from gen_loop.score.neighbours import PRDC


class FrechetScorer(_StandardisedScorer):
    """Fréchet (2-Wasserstein) distance between Gaussian fits of batch and target, per dimension.

    Score: ``sqrt(d^2 / D)`` with ``d^2`` the squared Fréchet distance
    (:func:`~gen_loop.score.frechet.frechet_gaussians`) between the z-scored batch and target,
    each with its covariance shrunk (Ledoit-Wolf by default, or a fixed ``shrinkage``). With
    equal covariances it equals ``zscore_l2``; a difference in spread or correlation adds to it.
    At the trial batch size (32 samples, 128 channels at layer 14) the batch covariance is
    singular without shrinkage.

    Per-sample distance: the Mahalanobis distance of the z-scored sample from the target mean
    under the shrunk target covariance, divided by ``sqrt(D)``.

    Args:
        shrinkage: Fixed shrinkage intensity in ``[0, 1]``, or ``None`` for Ledoit-Wolf.
        rel_eps: Relative floor on the per-dimension scale of the z-score.
    """

    def __init__(self, shrinkage: float | None = None, rel_eps: float = DEFAULT_REL_EPS) -> None:
        if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1] or None, got {shrinkage}")
        super().__init__(rel_eps)
        self.shrinkage = shrinkage
        self._cov: FloatArray | None = None
        self.target_shrinkage: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shrinkage={self.shrinkage!r})"

    def _fit_z(self, z_target: FloatArray) -> None:
        self._cov, self.target_shrinkage = shrunk_covariance(z_target, self.shrinkage)

    def _score(self, batch: FloatArray) -> float:
        assert self._cov is not None
        z = self._z(batch)
        cov, _ = shrunk_covariance(z, self.shrinkage)
        d = batch.shape[1]
        return math.sqrt(frechet_gaussians(z.mean(axis=0), cov, np.zeros(d), self._cov) / d)

    def _sample_distances(self, batch: FloatArray) -> FloatArray:
        assert self._cov is not None
        d = batch.shape[1]
        return mahalanobis(self._z(batch), np.zeros(d), self._cov) / math.sqrt(d)

    def _unfitted_copy(self) -> Self:
        return type(self)(self.shrinkage, self.rel_eps)


class MMDScorer(_StandardisedScorer):
    """Kernel MMD between batch and target, from the unbiased ``MMD^2`` estimate.

    Score: ``sqrt(max(MMD^2_u, 0))``. The unbiased estimate is negative about half the time
    for a batch from the target's own distribution; the search minimises ``log(distance)`` and
    the convergence rule compares with a positive noise floor, so the estimate is clipped at 0
    (a batch the estimator cannot tell from the target scores 0, which also meets any floor) and
    its square root is taken so the score is in kernel-feature units, like a distance, rather
    than squared. With ``kernel="poly"`` the squared score (before clipping) is KID.

    Kernel: ``rbf`` with ``bandwidth`` fixed at fit time, by the median heuristic on the
    z-scored target when ``bandwidth`` is None (:func:`~gen_loop.score.mmd.median_bandwidth`);
    or ``poly``, the KID kernel ``(x . y / D + 1)^3``.

    Per-sample distance: ``||phi(x) - mean_t phi(t)||`` in the kernel's feature space,
    ``sqrt(k(x, x) - 2 mean_j k(x, t_j) + mean_jl k(t_j, t_l))``.

    Args:
        kernel: ``"rbf"`` or ``"poly"``.
        bandwidth: RBF ``sigma`` in z-score units, or ``None`` for the median heuristic.
        rel_eps: Relative floor on the per-dimension scale of the z-score.
    """

    def __init__(
        self,
        kernel: KernelName = "rbf",
        bandwidth: float | None = None,
        rel_eps: float = DEFAULT_REL_EPS,
    ) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive or None, got {bandwidth}")
        super().__init__(rel_eps)
        self.kernel_name: KernelName = kernel
        self.bandwidth = bandwidth
        self.kernel: Kernel | None = None
        self._zt: FloatArray | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kernel={self.kernel_name!r}, bandwidth={self.bandwidth!r})"

    def _fit_z(self, z_target: FloatArray) -> None:
        sigma = self.bandwidth if self.bandwidth is not None else median_bandwidth(z_target)
        self.kernel = Kernel(self.kernel_name, sigma)
        self._zt = z_target

    def _score(self, batch: FloatArray) -> float:
        assert self.kernel is not None and self._zt is not None
        z = self._z(batch)
        if z.shape[0] < 2:  # the U-statistic needs two samples; one sample: its own distance
            return float(self._sample_distances(batch)[0])
        return math.sqrt(max(mmd2_unbiased(z, self._zt, self.kernel), 0.0))

    def _sample_distances(self, batch: FloatArray) -> FloatArray:
        assert self.kernel is not None and self._zt is not None
        return np.sqrt(sample_mmd2(self._z(batch), self._zt, self.kernel))

    def _unfitted_copy(self) -> Self:
        return type(self)(self.kernel_name, self.bandwidth, self.rel_eps)


class PRDCScorer(_StandardisedScorer):
    """k-NN manifold scorer (Naeem et al. 2020): ``1 - coverage`` of the target by the batch.

    Score: the fraction of target samples whose ``k``-NN ball holds no batch sample. It is
    bounded in ``[0, 1]``: it saturates at 1 once the batch has left the target manifold, so it
    says nothing about how far away a distant batch is.

    Per-sample distance: ``min_i d(x, t_i) / r_i`` (:func:`~gen_loop.score.neighbours.
    manifold_ratio`), at most 1 exactly when the sample is inside the target manifold (the
    per-sample view of precision). The target's own values are leave-one-out (each target
    sample against the others), since in-sample they would all be 0.

    Args:
        k_neighbours: Neighbour rank ``k`` of the radii (5 in the paper); kept as :attr:`k`.
        rel_eps: Relative floor on the per-dimension scale of the z-score.
    """

    def __init__(self, k_neighbours: int = 5, rel_eps: float = DEFAULT_REL_EPS) -> None:
        if k_neighbours < 1:
            raise ValueError(f"k_neighbours must be at least 1, got {k_neighbours}")
        super().__init__(rel_eps)
        self.k = k_neighbours
        self._zt: FloatArray | None = None
        self._radii: FloatArray | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k})"

    def _fit_z(self, z_target: FloatArray) -> None:
        if z_target.shape[0] <= self.k:
            raise ValueError(
                f"target has {z_target.shape[0]} samples; the PRDC scorer with k={self.k} "
                f"needs more than {self.k}"
            )
        self._zt = z_target
        self._radii = knn_radii(z_target, self.k)

    def _score(self, batch: FloatArray) -> float:
        assert self._zt is not None and self._radii is not None
        return 1.0 - coverage(self._zt, self._z(batch), self._radii)

    def _sample_distances(self, batch: FloatArray) -> FloatArray:
        assert self._zt is not None and self._radii is not None
        return manifold_ratio(self._z(batch), self._zt, self._radii)

    def _own_sample_distances(self, target: FloatArray) -> FloatArray:
        assert self._zt is not None and self._radii is not None
        ratios = _ratios(self._zt, self._zt, self._radii)
        np.fill_diagonal(ratios, np.inf)
        return ratios.min(axis=1)

    def metrics(self, batch: FloatArray) -> PRDC:
        """Precision, recall, density and coverage of ``batch`` against the fitted target.

        Raises:
            ValueError: If ``batch`` has ``k`` or fewer samples (recall needs its radii).
        """
        self._check_batch(batch)
        assert self._zt is not None
        return prdc(self._zt, self._z(np.asarray(batch, dtype=np.float64)), self.k)

    def _unfitted_copy(self) -> Self:
        return type(self)(self.k, self.rel_eps)
