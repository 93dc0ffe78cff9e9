"""What every detector embedder shares: input checks, resizing, passes and global pooling.

The torch path (:class:`~gen_loop.embedder.yolo.YoloEmbedder`) and the ONNX path
(:class:`~gen_loop.embedder.exported.OnnxEmbedder`) differ only in how one pass of resized
images becomes feature maps; everything around it lives here once, so that the two give the
same rows for the same network.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from gen_loop.embedder.base import Embedder

#: On CPU, a forward pass takes at most this many input pixels (8 images at 256 px): the
#: activations of larger passes spill out of the processor's cache, and 8-image passes embedded
#: 1.3-1.6x faster than 32-image ones on this project's machines (experiments/throughput).
CPU_PIXELS_PER_PASS = 8 * 256 * 256


def pass_size(batch_size: int, imgsz: int, on_gpu: bool) -> int:
    """Images per forward pass: ``batch_size`` on a GPU, capped by
    :data:`CPU_PIXELS_PER_PASS` on a CPU."""
    if on_gpu:
        return batch_size
    return max(1, min(batch_size, CPU_PIXELS_PER_PASS // (imgsz * imgsz)))


def resized(images: np.ndarray, imgsz: int) -> np.ndarray:
    """``(N, imgsz, imgsz, 3)`` uint8: area-interpolated when the size differs, else as is."""
    if images.shape[1:3] == (imgsz, imgsz):
        return images
    return np.stack(
        [cv2.resize(im, (imgsz, imgsz), interpolation=cv2.INTER_AREA) for im in images]
    )


def pooled(feature_maps: Sequence[torch.Tensor]) -> np.ndarray:
    """``(N, sum C)`` float32 on the host: each ``(N, C, H, W)`` map averaged over H and W
    (in float32 whatever its precision), concatenated in order."""
    return torch.cat([f.float().mean(dim=(2, 3)) for f in feature_maps], dim=1).cpu().numpy()


def fingerprint_of(key: str) -> str:
    """The 16-hex-digit fingerprint of an embedder's identity text."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class PooledEmbedder(Embedder):
    """An :class:`Embedder` of globally averaged feature maps, run in passes.

    ``embed`` checks its input, cuts it into passes of :attr:`pass_size` images, resizes each
    pass to ``imgsz x imgsz`` and hands it to :meth:`_embed_pass`; the rows do not depend on
    how images are grouped. Subclasses set ``imgsz``, ``batch_size``, ``pass_size``, ``_dim``
    and ``_fingerprint`` and implement :meth:`_embed_pass` (usually as ``pooled(maps)``).
    """

    imgsz: int
    batch_size: int
    pass_size: int
    _dim: int
    _fingerprint: str

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, images: np.ndarray) -> np.ndarray:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}"
            )
        chunks = [
            self._embed_pass(resized(images[i : i + self.pass_size], self.imgsz))
            for i in range(0, len(images), self.pass_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32)

    @abstractmethod
    def _embed_pass(self, images: np.ndarray) -> np.ndarray:
        """``(n, imgsz, imgsz, 3)`` uint8 RGB, ``n <= pass_size`` -> ``(n, dim)`` float32."""
