"""Distance maths of the scorer: pure functions of float arrays, computed in float64.

Every function checks its input and raises ``ValueError`` naming the offending argument when an
array is empty, has the wrong number of dimensions, has a feature dimension that does not match
the other argument, or holds NaN/inf. Inputs are never modified.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: Relative floor on a dimension's scale, as a fraction of the mean std over all dimensions.
DEFAULT_REL_EPS = 1e-6
#: Absolute term added to the mean std before the relative floor, so an all-constant set still
#: gets a positive scale.
_ABS_EPS = 1e-12


def _validate(x: ArrayLike, name: str, ndim: int) -> FloatArray:
    """Return ``x`` as a float64 array after checking its shape and values.

    Args:
        x: The array to check.
        name: The argument name used in error messages.
        ndim: Required number of dimensions (1 for a vector, 2 for an ``(N, D)`` set).

    Returns:
        ``x`` as a float64 array (a copy only if a conversion was needed).

    Raises:
        ValueError: If ``x`` has the wrong number of dimensions, is empty, or is not finite.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        shape = "(N, D)" if ndim == 2 else "(D,)"
        raise ValueError(
            f"{name} must be a {ndim}-D array of shape {shape}, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); it needs at least one value")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def _check_same_dim(a: FloatArray, b: FloatArray, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` if the last (feature) dimensions of ``a`` and ``b`` differ."""
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"feature dimension mismatch: {name_a} has D={a.shape[-1]}, {name_b} has "
            f"D={b.shape[-1]}"
        )


def feature_stats(x: ArrayLike, rel_eps: float = DEFAULT_REL_EPS) -> tuple[FloatArray, FloatArray]:
    """Per-dimension mean and scale of a set of feature vectors (usually the target's).

    The scale is the population standard deviation (``ddof=0``) of each dimension, floored at
    ``rel_eps * (mean(std) + 1e-12)``. The floor is relative to the overall scale of the features
    so that it works for features of any magnitude (a random-init network's features can be
    ~1e-6), and it keeps a constant dimension (std 0, e.g. a dead ReLU channel) from dividing by
    zero. Dividing by a floored scale still magnifies any difference in such a dimension strongly:
    that is deliberate, because a dimension the target never varies in is one a batch should match.

    Args:
        x: Feature vectors, shape ``(N, D)``.
        rel_eps: Relative floor on the scale; must be positive.

    Returns:
        ``(mean, scale)``, both float64 of shape ``(D,)``; every entry of ``scale`` is positive.

    Raises:
        ValueError: If ``x`` is empty, not 2-D, or not finite, or ``rel_eps`` is not positive.
    """
    if not rel_eps > 0:
        raise ValueError(f"rel_eps must be positive, got {rel_eps}")
    arr = _validate(x, "x", 2)
    mean = arr.mean(axis=0)
    std = arr.std(axis=0)
    floor = rel_eps * (float(std.mean()) + _ABS_EPS)
    return mean, np.maximum(std, floor)


def centroid_l2(a: ArrayLike, b: ArrayLike) -> float:
    """Euclidean distance between the means of two sets of feature vectors.

    Args:
        a: First set, shape ``(N_a, D)``.
        b: Second set, shape ``(N_b, D)``.

    Returns:
        ``||mean(a) - mean(b)||_2`` (non-negative; symmetric in ``a`` and ``b``).

    Raises:
        ValueError: On empty, non-2-D or non-finite input, or if the ``D`` differ.
    """
    arr_a = _validate(a, "a", 2)
    arr_b = _validate(b, "b", 2)
    _check_same_dim(arr_a, arr_b, "a", "b")
    return float(np.linalg.norm(arr_a.mean(axis=0) - arr_b.mean(axis=0)))


def _cosine_distance(u: FloatArray, v: FloatArray) -> float:
    """``1 - cos(u, v)`` clipped to ``[0, 2]``; 1.0 when either vector is all zero."""
    nu = float(np.linalg.norm(u))
    nv = float(np.linalg.norm(v))
    if nu == 0.0 or nv == 0.0:
        return 1.0
    cos = float(np.dot(u, v)) / (nu * nv)
    return float(np.clip(1.0 - cos, 0.0, 2.0))


def centroid_cosine(a: ArrayLike, b: ArrayLike) -> float:
    """Cosine distance (``1 - cosine similarity``) between the means of two sets.

    If either mean is the zero vector the angle is undefined; the distance is then defined as
    1.0, the value for orthogonal vectors (neither similar nor opposite). Rounding can push
    ``1 - cos`` a hair outside ``[0, 2]``; the result is clipped to that range.

    Args:
        a: First set, shape ``(N_a, D)``.
        b: Second set, shape ``(N_b, D)``.

    Returns:
        The cosine distance in ``[0, 2]`` (symmetric in ``a`` and ``b``).

    Raises:
        ValueError: On empty, non-2-D or non-finite input, or if the ``D`` differ.
    """
    arr_a = _validate(a, "a", 2)
    arr_b = _validate(b, "b", 2)
    _check_same_dim(arr_a, arr_b, "a", "b")
    return _cosine_distance(arr_a.mean(axis=0), arr_b.mean(axis=0))


def sample_l2(x: ArrayLike, centroid: ArrayLike) -> FloatArray:
    """Euclidean distance of each row of ``x`` to ``centroid``.

    Args:
        x: Feature vectors, shape ``(N, D)``.
        centroid: Reference point, shape ``(D,)``.

    Returns:
        Non-negative distances, float64 of shape ``(N,)``.

    Raises:
        ValueError: On empty, wrongly shaped or non-finite input, or if the ``D`` differ.
    """
    arr = _validate(x, "x", 2)
    c = _validate(centroid, "centroid", 1)
    _check_same_dim(arr, c, "x", "centroid")
    return np.linalg.norm(arr - c, axis=1)


def sample_cosine(x: ArrayLike, centroid: ArrayLike) -> FloatArray:
    """Cosine distance (``1 - cosine similarity``) of each row of ``x`` to ``centroid``.

    As in :func:`centroid_cosine`, a zero row or a zero centroid gives distance 1.0, and values
    are clipped to ``[0, 2]``.

    Args:
        x: Feature vectors, shape ``(N, D)``.
        centroid: Reference point, shape ``(D,)``.

    Returns:
        Distances in ``[0, 2]``, float64 of shape ``(N,)``.

    Raises:
        ValueError: On empty, wrongly shaped or non-finite input, or if the ``D`` differ.
    """
    arr = _validate(x, "x", 2)
    c = _validate(centroid, "centroid", 1)
    _check_same_dim(arr, c, "x", "centroid")
    norms = np.linalg.norm(arr, axis=1)
    nc = float(np.linalg.norm(c))
    out = np.ones(arr.shape[0], dtype=np.float64)
    if nc == 0.0:
        return out
    ok = norms > 0.0
    cos = (arr[ok] @ c) / (norms[ok] * nc)
    out[ok] = np.clip(1.0 - cos, 0.0, 2.0)
    return out
