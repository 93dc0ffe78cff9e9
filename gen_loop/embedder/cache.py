"""Embeddings of a fixed image set, computed once per model and content."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from gen_loop.embedder.base import Embedder

log = logging.getLogger(__name__)


def cached_embeddings(
    embedder: Embedder, images: np.ndarray, content_key: str, cache_dir: Path
) -> np.ndarray:
    """``embedder.embed(images)``, loaded from ``cache_dir`` when this model has seen this
    content before.

    Args:
        embedder: the embedder; its fingerprint is part of the key.
        images: the images, used only on a cache miss.
        content_key: a fingerprint of the images' contents (see ``ImageSet.fingerprint``).
        cache_dir: the cache root; files go under ``embeddings/``.
    """
    path = cache_dir / "embeddings" / f"{embedder.fingerprint}-{content_key[:24]}.npy"
    if path.exists():
        cached = np.load(path)
        if cached.shape == (len(images), embedder.dim):
            log.info("target embeddings loaded from cache %s", path)
            return cached
    embeddings = embedder.embed(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary name per process: parallel sweep jobs may embed the same target at once.
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, embeddings)
    tmp.replace(path)
    return embeddings
