"""Embeddings from an ultralytics detector: a named layer's feature map, globally averaged."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from gen_loop.embedder.base import Embedder
from gen_loop.embedder.weights import build_model, file_digest, model_yaml

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; otherwise ``cpu``, ``cuda`` or ``cuda:N`` as given."""
    if device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device {device!r}: use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    return torch.device(device)


class YoloEmbedder(Embedder):
    """Global-average-pooled feature maps of chosen layers of an ultralytics detector.

    The forward pass stops after the deepest requested layer, runs under
    ``torch.inference_mode`` in channels-last layout, and in half precision on CUDA.

    Args:
        model: architecture (a shipped name such as ``yolov7-tiny`` or an ultralytics YAML);
            used only when ``weights`` is None.
        weights: checkpoint to load; None means random initialisation seeded by ``seed``.
        layers: indices of the layers whose outputs are pooled and concatenated.
        imgsz: images are resized to ``imgsz x imgsz`` (both the target and generated sets go
            through the same resize, so their aspect ratio should match).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per forward pass.
        half: half precision; None means on CUDA only.
        seed: initialisation seed for a random model.
    """

    def __init__(
        self,
        model: str,
        weights: Path | None,
        layers: Sequence[int],
        imgsz: int,
        device: str = "auto",
        batch_size: int = 32,
        half: bool | None = None,
        seed: int = 0,
    ) -> None:
        self.device = resolve_device(device)
        self.half = self.device.type == "cuda" if half is None else half
        self.imgsz = imgsz
        self.batch_size = batch_size
        detector = build_model(model, weights, seed)
        net: Any = detector.model
        n_layers = len(net.model)
        bad = [i for i in layers if not 0 <= i < n_layers]
        if not layers or bad:
            raise ValueError(f"layers {list(layers)}: each must be in [0, {n_layers - 1}]")
        self.layers = tuple(sorted(set(layers)))
        net = net.fuse(verbose=False) if hasattr(net, "fuse") else net
        self._modules = list(net.model)[: max(self.layers) + 1]
        self._keep = set(self.layers) | {int(i) for i in getattr(net, "save", [])}
        self._net = net.eval().to(self.device, memory_format=torch.channels_last)
        if self.half:
            self._net.half()
        self._dim = self._probe_dim()
        source = file_digest(weights) if weights is not None else f"{model_yaml(model)}:{seed}"
        key = f"{source}|layers={self.layers}|imgsz={imgsz}|v1"
        self._fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]

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
            self._embed_chunk(images[i : i + self.batch_size])
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32)

    @torch.inference_mode()
    def _embed_chunk(self, images: np.ndarray) -> np.ndarray:
        x = self._to_tensor(images)
        pooled = [f.float().mean(dim=(2, 3)) for f in self._forward(x)]
        return torch.cat(pooled, dim=1).cpu().numpy()

    def _to_tensor(self, images: np.ndarray) -> torch.Tensor:
        if images.shape[1:3] != (self.imgsz, self.imgsz):
            images = np.stack(
                [
                    cv2.resize(im, (self.imgsz, self.imgsz), interpolation=cv2.INTER_AREA)
                    for im in images
                ]
            )
        x = torch.from_numpy(images).to(self.device, non_blocking=True)
        # NHWC uint8 -> NCHW view in channels-last memory: no copy of the layout.
        x = x.permute(0, 3, 1, 2).to(dtype=torch.float16 if self.half else torch.float32)
        return x.div_(255.0).contiguous(memory_format=torch.channels_last)

    def _forward(self, x: Any) -> list[torch.Tensor]:
        """Run the layers up to the deepest requested one, routing like ultralytics does."""
        # Negative sources count back from the current layer, as in ultralytics' own loop.
        outputs: list[torch.Tensor | None] = []
        wanted: list[torch.Tensor] = []
        for i, module in enumerate(self._modules):
            source = module.f
            if source != -1:
                x = (
                    outputs[source]
                    if isinstance(source, int)
                    else [x if j == -1 else outputs[j] for j in source]
                )
            x = module(x)
            outputs.append(x if i in self._keep else None)
            if i in self.layers:
                wanted.append(x)
        return wanted

    @torch.inference_mode()
    def _probe_dim(self) -> int:
        probe = torch.zeros(1, 3, 64, 64, device=self.device)
        probe = probe.half() if self.half else probe
        return sum(
            int(f.shape[1])
            for f in self._forward(probe.contiguous(memory_format=torch.channels_last))
        )
