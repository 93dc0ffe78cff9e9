"""Pick the generated samples closest to the target."""

from __future__ import annotations

import numpy as np

SELECTION_METHODS = ("quantile", "topk")


def select_closest(
    distances: np.ndarray,
    method: str,
    target_distances: np.ndarray | None = None,
    quantile: float = 0.9,
    top_k: int = 128,
) -> tuple[np.ndarray, float]:
    """Indices of the selected samples (closest first) and the distance threshold used.

    Args:
        distances: per-sample distance of each pool sample to the target centroid.
        method: ``quantile`` keeps samples closer than the ``quantile`` of the target's own
            per-sample distances (a sample is kept when it is as typical of the target as most
            target images are); ``topk`` keeps the ``top_k`` closest.
        target_distances: the target's own per-sample distances (``quantile`` only).
        quantile: see ``method``.
        top_k: see ``method``.
    """
    order = np.argsort(distances, kind="stable")
    if method == "topk":
        chosen = order[: max(0, top_k)]
        threshold = float(distances[chosen[-1]]) if len(chosen) else float("nan")
        return chosen, threshold
    if method == "quantile":
        if target_distances is None or len(target_distances) == 0:
            raise ValueError("quantile selection needs the target's own distances")
        threshold = float(np.quantile(target_distances, quantile))
        return order[distances[order] <= threshold], threshold
    raise ValueError(f"selection method {method!r}: use one of {list(SELECTION_METHODS)}")
