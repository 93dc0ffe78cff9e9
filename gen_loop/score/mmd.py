"""Kernel maximum mean discrepancy (MMD) between two sets: kernels, bandwidth rule, estimators.

Two kernels:

- ``rbf``: ``k(x, y) = exp(-||x - y||^2 / (2 sigma^2))``. The bandwidth ``sigma`` is fixed
  once, at fit time, from the *target* alone: the median of the Euclidean distances between
  distinct target samples (the "median heuristic", Gretton et al. 2012). Fixing it from the
  target keeps every trial's score on the same kernel, so scores are comparable across trials.
- ``poly``: the KID kernel ``k(x, y) = (x . y / D + 1)^3`` (Binkowski et al. 2018).

The unbiased estimator (a U-statistic) of ``MMD^2`` has expectation 0 for two sets from the
same distribution, so it is negative about half of the time there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from gen_loop.score.distances import FloatArray, _check_same_dim, _validate

KernelName = Literal["rbf", "poly"]
KERNELS: tuple[KernelName, ...] = get_args(KernelName)


def _sq_dists(x: FloatArray, y: FloatArray) -> FloatArray:
    """Squared Euclidean distances ``(N, M)``, clipped at 0 against rounding."""
    d2 = np.sum(x**2, axis=1)[:, None] + np.sum(y**2, axis=1)[None, :] - 2.0 * x @ y.T
    return np.clip(d2, 0.0, None)


def median_bandwidth(x: ArrayLike) -> float:
    """The median heuristic: median Euclidean distance between distinct samples of ``x``.

    Args:
        x: Samples, ``(N, D)`` with ``N >= 2``.

    Returns:
        The median of the ``N (N - 1) / 2`` pairwise distances; 1.0 when it is 0 (more than
        half of the pairs coincide), so that the kernel stays defined.

    Raises:
        ValueError: On bad input or fewer than 2 samples.
    """
    arr = _validate(x, "x", 2)
    if arr.shape[0] < 2:
        raise ValueError(f"x needs at least 2 samples for a bandwidth, got {arr.shape[0]}")
    iu = np.triu_indices(arr.shape[0], k=1)
    med = float(np.median(np.sqrt(_sq_dists(arr, arr)[iu])))
    return med if med > 0.0 else 1.0


@dataclass(frozen=True)
class Kernel:
    """A positive definite kernel on feature vectors.

    Attributes:
        name: ``"rbf"`` or ``"poly"``.
        bandwidth: ``sigma`` of the RBF kernel (ignored by ``poly``).
    """

    name: KernelName = "rbf"
    bandwidth: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in KERNELS:
            raise ValueError(f"unknown kernel {self.name!r}; choose one of {', '.join(KERNELS)}")
        if not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be positive, got {self.bandwidth}")

    def __call__(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """The Gram matrix ``K[i, j] = k(x_i, y_j)``, shape ``(N, M)``."""
        if self.name == "rbf":
            return np.exp(-_sq_dists(x, y) / (2.0 * self.bandwidth**2))
        return (x @ y.T / x.shape[1] + 1.0) ** 3

    def diagonal(self, x: FloatArray) -> FloatArray:
        """``k(x_i, x_i)`` for each row, shape ``(N,)``."""
        if self.name == "rbf":
            return np.ones(x.shape[0])
        return (np.sum(x**2, axis=1) / x.shape[1] + 1.0) ** 3


def _offdiag_mean(gram: FloatArray) -> float:
    n = gram.shape[0]
    return (float(gram.sum()) - float(np.trace(gram))) / (n * (n - 1))


def mmd2_unbiased(a: ArrayLike, b: ArrayLike, kernel: Kernel) -> float:
    """Unbiased estimate of ``MMD^2`` between the distributions of two sets.

    ``mean_{i != j} k(a_i, a_j) + mean_{i != j} k(b_i, b_j) - 2 mean_{i, j} k(a_i, b_j)``.

    Args:
        a: First set, ``(N_a, D)``, ``N_a >= 2``.
        b: Second set, ``(N_b, D)``, ``N_b >= 2``.
        kernel: The kernel.

    Returns:
        The estimate; symmetric in ``a`` and ``b``; may be negative (its expectation is 0 when
        both sets come from one distribution).

    Raises:
        ValueError: On bad input, a set of fewer than 2 samples, or different ``D``.
    """
    arr_a = _validate(a, "a", 2)
    arr_b = _validate(b, "b", 2)
    _check_same_dim(arr_a, arr_b, "a", "b")
    for name, arr in (("a", arr_a), ("b", arr_b)):
        if arr.shape[0] < 2:
            raise ValueError(f"{name} needs at least 2 samples for the unbiased MMD^2")
    return (
        _offdiag_mean(kernel(arr_a, arr_a))
        + _offdiag_mean(kernel(arr_b, arr_b))
        - 2.0 * float(kernel(arr_a, arr_b).mean())
    )


def sample_mmd2(x: ArrayLike, reference: ArrayLike, kernel: Kernel) -> FloatArray:
    """Squared kernel distance of each row of ``x`` from the mean embedding of ``reference``.

    ``||phi(x_i) - mean_j phi(r_j)||^2``
    ``= k(x_i, x_i) - 2 mean_j k(x_i, r_j) + mean_jl k(r_j, r_l)``,
    the (biased) ``MMD^2`` between the one-point set ``{x_i}`` and ``reference``: non-negative.

    Args:
        x: Samples, ``(N, D)``.
        reference: Reference set, ``(M, D)``.
        kernel: The kernel.

    Returns:
        Non-negative values, ``(N,)``.
    """
    arr = _validate(x, "x", 2)
    ref = _validate(reference, "reference", 2)
    _check_same_dim(arr, ref, "x", "reference")
    const = float(kernel(ref, ref).mean())
    out = kernel.diagonal(arr) - 2.0 * kernel(arr, ref).mean(axis=1) + const
    return np.clip(out, 0.0, None)
