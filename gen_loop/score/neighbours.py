"""k-nearest-neighbour manifold metrics: precision, recall, density, coverage (PRDC).

Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models". The real
(target) manifold is the union of balls around each real sample ``r_i`` with radius ``rad_i``,
the distance to its ``k``-th nearest other real sample. For fake (generated) samples ``f_j``:

- precision: fraction of fakes inside the real manifold;
- recall: fraction of reals inside the fake manifold (balls from the fakes' own k-NN radii);
- density: mean number of real balls a fake is in, divided by ``k`` (1 on average for fakes
  from the real distribution; unbounded above);
- coverage: fraction of reals whose ball holds at least one fake.

Distances are Euclidean; ties count as inside (``<=``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.distance import cdist

from gen_loop.score.distances import FloatArray, _check_same_dim, _validate


def _dists(x: FloatArray, y: FloatArray) -> FloatArray:
    """Euclidean distances ``(N, M)`` from the differences (exactly 0 for equal rows)."""
    return cdist(x, y)


def _check_k(k: int, n: int, name: str) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if n <= k:
        raise ValueError(f"{name} has {n} samples; k-NN radii with k={k} need more than {k}")


def knn_radii(x: ArrayLike, k: int) -> FloatArray:
    """Distance of each sample to its ``k``-th nearest *other* sample of the same set.

    Args:
        x: Samples, ``(N, D)`` with ``N > k``.
        k: Neighbour rank, at least 1.

    Returns:
        Radii, ``(N,)``.
    """
    arr = _validate(x, "x", 2)
    _check_k(k, arr.shape[0], "x")
    d = _dists(arr, arr)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def _ratios(x: FloatArray, real: FloatArray, radii: FloatArray) -> FloatArray:
    """``d(x_j, r_i) / rad_i`` as ``(N_x, N_real)``; 0/0 is 0 (on the sample), d/0 is inf."""
    d = _dists(x, real)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = d / radii[None, :]
    out[(d == 0.0)] = 0.0
    return out


def manifold_ratio(x: ArrayLike, real: ArrayLike, radii: ArrayLike) -> FloatArray:
    """Per sample: ``min_i d(x, r_i) / rad_i``; at most 1 exactly when ``x`` is in the manifold.

    Args:
        x: Samples, ``(N, D)``.
        real: The real set, ``(M, D)``.
        radii: Its k-NN radii (:func:`knn_radii`), ``(M,)``.

    Returns:
        Non-negative ratios, ``(N,)`` (``inf`` only next to zero-radius duplicates).
    """
    arr = _validate(x, "x", 2)
    ref = _validate(real, "real", 2)
    rad = _validate(radii, "radii", 1)
    _check_same_dim(arr, ref, "x", "real")
    if rad.shape[0] != ref.shape[0]:
        raise ValueError(f"radii has {rad.shape[0]} entries for {ref.shape[0]} real samples")
    return _ratios(arr, ref, rad).min(axis=1)


def coverage(real: ArrayLike, fake: ArrayLike, radii: ArrayLike) -> float:
    """Fraction of real samples whose k-NN ball (radius ``radii``) holds at least one fake."""
    ref = _validate(real, "real", 2)
    arr = _validate(fake, "fake", 2)
    rad = _validate(radii, "radii", 1)
    _check_same_dim(ref, arr, "real", "fake")
    return float(np.mean(_dists(arr, ref).min(axis=0) <= rad))


@dataclass(frozen=True)
class PRDC:
    """Precision, recall, density and coverage of a fake set against a real one."""

    precision: float
    recall: float
    density: float
    coverage: float


def prdc(real: ArrayLike, fake: ArrayLike, k: int = 5) -> PRDC:
    """Precision, recall, density and coverage (Naeem et al. 2020).

    Args:
        real: Real (target) samples, ``(N, D)``, ``N > k``.
        fake: Generated samples, ``(M, D)``, ``M > k`` (recall needs the fakes' radii).
        k: Neighbour rank for the radii.

    Returns:
        The four metrics; precision, recall and coverage are in ``[0, 1]``.

    Raises:
        ValueError: On bad input, ``k < 1``, or a set with ``k`` or fewer samples.
    """
    ref = _validate(real, "real", 2)
    arr = _validate(fake, "fake", 2)
    _check_same_dim(ref, arr, "real", "fake")
    _check_k(k, ref.shape[0], "real")
    _check_k(k, arr.shape[0], "fake")
    real_r = knn_radii(ref, k)
    fake_r = knn_radii(arr, k)
    inside = _dists(arr, ref) <= real_r[None, :]  # (M, N): fake j in real ball i
    return PRDC(
        precision=float(inside.any(axis=1).mean()),
        recall=float((_dists(ref, arr) <= fake_r[None, :]).any(axis=1).mean()),
        density=float(inside.sum()) / (k * arr.shape[0]),
        coverage=float(inside.any(axis=0).mean()),
    )
