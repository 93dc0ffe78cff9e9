"""The search's route: each trial's batch centroid, in the plane of the population plot.

A trial's batch centroid is the mean of its embeddings; the PCA plane is linear, so the
centroid's projection is the mean of the batch's projected points: the route shows where each
trial's batch sat among the images of the report, from the default camera to the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Route"]


@dataclass(frozen=True)
class Route:
    """The trials of a search, in trial order.

    Attributes:
        numbers: trial numbers ``(n,)``.
        centroids: each trial's batch centroid ``(n, D)``.
        distances: each trial's distance to the target ``(n,)``.
        best: the best trial's number (None: none).
    """

    numbers: np.ndarray
    centroids: np.ndarray
    distances: np.ndarray
    best: int | None = None

    def __post_init__(self) -> None:
        n = len(self.numbers)
        if self.centroids.ndim != 2 or len(self.centroids) != n or len(self.distances) != n:
            raise ValueError(
                f"a route needs one centroid and one distance per trial: {n} numbers, "
                f"centroids {self.centroids.shape}, {len(self.distances)} distances"
            )

    def __len__(self) -> int:
        return len(self.numbers)
