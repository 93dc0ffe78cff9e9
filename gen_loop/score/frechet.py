"""Fréchet distance between Gaussian fits of two sets, with a shrunk covariance.

The Fréchet (2-Wasserstein) distance between ``N(mu_a, S_a)`` and ``N(mu_b, S_b)`` is::

    d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)

With D = 128 feature channels and a trial batch of 32 samples the sample covariance has rank
at most 31: it is singular, and its small eigenvalues are biased to zero. Shrinking it towards
a scaled identity (Ledoit and Wolf 2004, "A well-conditioned estimator for large-dimensional
covariance matrices") gives a positive definite, better conditioned estimate; the intensity is
chosen from the data, or fixed by the caller. Everything is computed in float64 through
symmetric eigen-decompositions, with tiny negative eigenvalues from rounding clipped to zero.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from gen_loop.score.distances import FloatArray, _check_same_dim, _validate


def ledoit_wolf_shrinkage(x: ArrayLike) -> float:
    """The Ledoit-Wolf shrinkage intensity of a set towards ``mean(eigenvalues) * I``.

    Args:
        x: Samples, shape ``(N, D)``.

    Returns:
        The intensity in ``[0, 1]``; 0 for a set whose covariance is already a multiple of the
        identity (or is zero), and close to 1 when ``N`` is small against ``D``.

    Raises:
        ValueError: On empty, non-2-D or non-finite input.
    """
    arr = _validate(x, "x", 2)
    n, d = arr.shape
    xc = arr - arr.mean(axis=0)
    emp = xc.T @ xc / n
    mu = float(np.trace(emp)) / d
    # delta: squared distance of the sample covariance from its target mu * I (per dimension);
    # beta: the estimated variance of the sample covariance's entries (per dimension).
    delta = float(np.sum((emp - mu * np.eye(d)) ** 2)) / d
    row_sq = np.sum(xc**2, axis=1)
    beta = (float(np.sum(row_sq**2)) / n - float(np.sum(emp**2))) / (n * d)
    beta = min(max(beta, 0.0), delta)
    return 0.0 if delta == 0.0 else beta / delta


def shrunk_covariance(x: ArrayLike, shrinkage: float | None = None) -> tuple[FloatArray, float]:
    """Population covariance of a set shrunk towards a scaled identity.

    ``(1 - s) * S + s * (Tr(S) / D) * I`` with ``S`` the population (``ddof=0``) covariance.

    Args:
        x: Samples, shape ``(N, D)``.
        shrinkage: The intensity ``s`` in ``[0, 1]``; ``None`` picks it by Ledoit-Wolf.

    Returns:
        ``(covariance (D, D), s)``.

    Raises:
        ValueError: On bad input or a shrinkage outside ``[0, 1]``.
    """
    arr = _validate(x, "x", 2)
    if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in [0, 1] or None (Ledoit-Wolf), got {shrinkage}")
    s = ledoit_wolf_shrinkage(arr) if shrinkage is None else float(shrinkage)
    xc = arr - arr.mean(axis=0)
    emp = xc.T @ xc / arr.shape[0]
    mu = float(np.trace(emp)) / arr.shape[1]
    cov = (1.0 - s) * emp
    cov[np.diag_indices_from(cov)] += s * mu
    return cov, s


def _psd_sqrt(m: FloatArray) -> FloatArray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    w, v = np.linalg.eigh((m + m.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_gaussians(
    mu_a: ArrayLike, cov_a: ArrayLike, mu_b: ArrayLike, cov_b: ArrayLike
) -> float:
    """Squared Fréchet distance between two Gaussians (symmetric, non-negative).

    ``Tr((S_a S_b)^1/2)`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric matrix ``S_a^1/2 S_b S_a^1/2``, which is stable for singular covariances.

    Args:
        mu_a: Mean of the first Gaussian, shape ``(D,)``.
        cov_a: Its covariance, ``(D, D)``, symmetric positive semi-definite.
        mu_b: Mean of the second, ``(D,)``.
        cov_b: Its covariance, ``(D, D)``.

    Returns:
        ``d^2 >= 0`` (rounding below zero is clipped).

    Raises:
        ValueError: On non-finite input or mismatched shapes.
    """
    ma = _validate(mu_a, "mu_a", 1)
    mb = _validate(mu_b, "mu_b", 1)
    sa = _validate(cov_a, "cov_a", 2)
    sb = _validate(cov_b, "cov_b", 2)
    _check_same_dim(ma, mb, "mu_a", "mu_b")
    d = ma.shape[0]
    for name, cov in (("cov_a", sa), ("cov_b", sb)):
        if cov.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}), got {cov.shape}")
    root = _psd_sqrt(sa)
    inner = root @ sb @ root
    eig = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    d2 = float(np.sum((ma - mb) ** 2)) + float(np.trace(sa)) + float(np.trace(sb)) - 2 * tr_sqrt
    return max(d2, 0.0)


def frechet_distance(a: ArrayLike, b: ArrayLike, shrinkage: float | None = None) -> float:
    """Fréchet distance between Gaussian fits of two sets of feature vectors.

    Each set's covariance is shrunk on its own (:func:`shrunk_covariance`).

    Args:
        a: First set, ``(N_a, D)``.
        b: Second set, ``(N_b, D)``.
        shrinkage: Fixed intensity in ``[0, 1]``, or ``None`` for Ledoit-Wolf per set.

    Returns:
        The distance ``d`` (the square root of :func:`frechet_gaussians`); symmetric, zero for
        identical sets (up to rounding), invariant to a translation or an orthogonal map
        applied to both sets, and homogeneous of degree 1 in a common scale.

    Raises:
        ValueError: On empty, non-2-D or non-finite input, or if the ``D`` differ.
    """
    arr_a = _validate(a, "a", 2)
    arr_b = _validate(b, "b", 2)
    _check_same_dim(arr_a, arr_b, "a", "b")
    cov_a, _ = shrunk_covariance(arr_a, shrinkage)
    cov_b, _ = shrunk_covariance(arr_b, shrinkage)
    return math.sqrt(frechet_gaussians(arr_a.mean(axis=0), cov_a, arr_b.mean(axis=0), cov_b))


def mahalanobis(
    x: ArrayLike, mean: ArrayLike, cov: ArrayLike, rel_eps: float = 1e-12
) -> FloatArray:
    """Mahalanobis distance of each row of ``x`` from ``mean`` under ``cov``.

    Eigenvalues of ``cov`` below ``rel_eps * max eigenvalue`` are raised to that floor, so a
    singular covariance gives large, finite distances off its support instead of an error.

    Args:
        x: Samples, ``(N, D)``.
        mean: ``(D,)``.
        cov: ``(D, D)`` symmetric positive semi-definite.
        rel_eps: Relative eigenvalue floor.

    Returns:
        Non-negative distances, ``(N,)``.
    """
    arr = _validate(x, "x", 2)
    m = _validate(mean, "mean", 1)
    c = _validate(cov, "cov", 2)
    _check_same_dim(arr, m, "x", "mean")
    w, v = np.linalg.eigh((c + c.T) / 2.0)
    w = np.maximum(w, rel_eps * max(float(w.max()), 1e-300))
    proj = (arr - m) @ v
    return np.sqrt(np.sum(proj**2 / w, axis=1))
