"""Pick the generated samples closest to the target."""

from __future__ import annotations

import numpy as np

from gen_loop.config.choices import SelectionMethod

#: ``selection.method`` values (the :class:`~gen_loop.config.schema.SelectionMethod` enum).
SELECTION_METHODS: tuple[str, ...] = tuple(str(m.value) for m in SelectionMethod)


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
    if method == "camera":
        raise ValueError("selection method 'camera' picks per scene: use closest_camera")
    if method == "jitter":
        raise ValueError("selection method 'jitter' keeps every scene: use select_pool")
    raise ValueError(f"selection method {method!r}: use one of {list(SELECTION_METHODS)}")


def closest_camera(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each scene, the camera under which it is closest to the target.

    When every candidate image shows a scene of its own, selecting the images closest to the
    target centroid selects *content* (the most average scenes) as much as camera. Rendering
    each scene under several candidate cameras and keeping, per scene, the closest rendering
    selects the camera and leaves the scene mix alone.

    Args:
        distances: ``(n_cameras, n_scenes)`` distance of scene ``j`` rendered with camera
            ``i`` to the target centroid.

    Returns:
        ``(camera, distance)``: per scene, the index of the closest camera (the first on ties)
        and its distance, both of shape ``(n_scenes,)``.
    """
    arr = np.asarray(distances, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"distances must be (n_cameras, n_scenes) and non-empty, got {arr.shape}")
    camera = np.argmin(arr, axis=0)
    return camera, arr[camera, np.arange(arr.shape[1])]
