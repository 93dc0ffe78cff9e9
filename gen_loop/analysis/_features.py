"""The label-free feature space shared by the tests, the clusters and the k-NN loss estimate."""

from __future__ import annotations

import numpy as np

__all__ = ["pca_features"]


def pca_features(x: np.ndarray, max_dim: int) -> np.ndarray:
    """Centre the rows, divide by one global scale, and keep the first principal components.

    One scale for every dimension (the root mean square of the centred values), not a z-score
    per dimension: z-scoring gives a dimension that only carries noise the same weight as one
    that separates groups, and then the groups are lost in the noise. The scale only makes the
    result independent of the features' overall magnitude (a random-init network's features can
    be ~1e-6).

    Args:
        x: ``(n, D)`` features.
        max_dim: most components kept (also at most ``n - 1`` and ``D``).

    Returns:
        ``(n, k)`` float64 principal-component scores, not whitened.
    """
    arr = np.asarray(x, dtype=np.float64)
    centred = arr - arr.mean(axis=0)
    rms = float(np.sqrt(np.mean(centred**2)))
    centred = centred / rms if rms > 0 else centred
    k = max(1, min(max_dim, arr.shape[0] - 1, arr.shape[1]))
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return u[:, :k] * s[:k]
