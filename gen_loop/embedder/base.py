"""The embedder contract: images in, one feature vector per image out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Embedder(ABC):
    """Maps images to fixed-length feature vectors in the detector's own feature space.

    Contract: ``embed(images)`` takes ``(N, H, W, 3)`` uint8 RGB images of any size and returns
    an ``(N, D)`` float32 array, one row per image in order; it is deterministic (no dropout,
    no batch statistics) and the same image always gives the same row whatever the batch.
    :attr:`fingerprint` identifies the model, layers and preprocessing, so that cached
    embeddings are reused only when they would be recomputed identically.
    """

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A stable identifier of everything that determines the embeddings."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """The length of each embedding."""

    @abstractmethod
    def embed(self, images: np.ndarray) -> np.ndarray:
        """Embed ``(N, H, W, 3)`` uint8 RGB images into ``(N, D)`` float32."""
