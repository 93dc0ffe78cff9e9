"""Embeddings from an ultralytics detector: a named layer's feature map, globally averaged."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gen_loop.embedder._pooled import (
    CPU_PIXELS_PER_PASS,
    PooledEmbedder,
    fingerprint_of,
    pass_size,
    pooled,
)
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


def named_layers(net: Any) -> dict[str, int]:
    """Names of a detection model's useful embedding layers, read off its structure.

    ``backbone_end`` is the last backbone layer; ``backbone_pN`` are the backbone layers the
    neck routes from (stride 2**N); ``head_pN`` are the inputs of the detection head. This
    works for any ultralytics detection YAML (YOLOv7-tiny: backbone_p3=14, backbone_p4=21,
    backbone_end=28, head_p3=57, head_p4=65, head_p5=73).
    """
    n_backbone = len(net.yaml["backbone"])
    strides = _layer_strides(net)
    names = {"backbone_end": n_backbone - 1}
    for i, module in enumerate(net.model[n_backbone:], start=n_backbone):
        for j in [module.f] if isinstance(module.f, int) else module.f:
            j = i + j if j < 0 else j
            if j < n_backbone - 1 and strides.get(j):
                names[f"backbone_p{strides[j].bit_length() - 1}"] = j
    head = net.model[-1]
    for j in [head.f] if isinstance(head.f, int) else head.f:
        if strides.get(j):
            names[f"head_p{strides[j].bit_length() - 1}"] = j
    return names


def resolve_layers(net: Any, layers: Sequence[int | str]) -> tuple[int, ...]:
    """Layer indices for indices or names; ``ValueError`` listing what is valid."""
    if not layers:
        raise ValueError("layers: name at least one layer")
    n_layers = len(net.model)
    names: dict[str, int] | None = None
    out = set()
    for layer in layers:
        if isinstance(layer, str) and not layer.lstrip("-").isdigit():
            names = names if names is not None else named_layers(net)
            if layer not in names:
                raise ValueError(f"layers: unknown layer name {layer!r}; known: {names}")
            out.add(names[layer])
            continue
        index = int(layer)
        if not 0 <= index < n_layers:
            raise ValueError(f"layers {list(layers)}: each must be in [0, {n_layers - 1}]")
        out.add(index)
    return tuple(sorted(out))


@torch.inference_mode()
def _layer_strides(net: Any, size: int = 64) -> dict[int, int]:
    """Each layer's output stride, from one small forward pass."""
    strides: dict[int, int] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, i=i: (
                strides.__setitem__(i, size // out.shape[-1])
                if isinstance(out, torch.Tensor) and out.ndim == 4
                else None
            )
        )
        for i, module in enumerate(net.model)
    ]
    try:
        param = next(net.parameters())
        net.eval()(torch.zeros(1, 3, size, size, dtype=param.dtype, device=param.device))
    finally:
        for hook in hooks:
            hook.remove()
    return strides


class YoloEmbedder(PooledEmbedder):
    """Global-average-pooled feature maps of chosen layers of an ultralytics detector.

    The forward pass stops after the deepest requested layer, runs under
    ``torch.inference_mode`` in channels-last layout, and in half precision on CUDA. On CPU a
    batch is run in passes of at most :data:`CPU_PIXELS_PER_PASS` pixels (the rows do not
    depend on how images are grouped).

    Args:
        model: architecture (a shipped name such as ``yolov7-tiny`` or an ultralytics YAML);
            used only when ``weights`` is None.
        weights: checkpoint to load; None means random initialisation seeded by ``seed``.
        layers: the layers whose outputs are pooled and concatenated: indices, or names from
            :func:`named_layers` (``backbone_end``, ``backbone_p3``, ``head_p3``, ...).
        imgsz: images are resized to ``imgsz x imgsz`` (both the target and generated sets go
            through the same resize, so their aspect ratio should match).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per forward pass (on CPU, capped by :data:`CPU_PIXELS_PER_PASS`).
        half: half precision; None means on CUDA only.
        seed: initialisation seed for a random model.
    """

    def __init__(
        self,
        model: str,
        weights: Path | None,
        layers: Sequence[int | str],
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
        self.pass_size = pass_size(batch_size, imgsz, self.device.type == "cuda")
        detector = build_model(model, weights, seed)
        net: Any = detector.model
        self.layers = resolve_layers(net, layers)
        net = net.fuse(verbose=False) if hasattr(net, "fuse") else net
        self._modules = list(net.model)[: max(self.layers) + 1]
        self._keep = set(self.layers) | {int(i) for i in getattr(net, "save", [])}
        self._net = net.eval().to(self.device, memory_format=torch.channels_last)
        if self.half:
            self._net.half()
        self._dim = self._probe_dim()
        source = file_digest(weights) if weights is not None else f"{model_yaml(model)}:{seed}"
        key = f"{source}|layers={self.layers}|imgsz={imgsz}|v1"
        self._fingerprint = fingerprint_of(key)

    @torch.inference_mode()
    def _embed_pass(self, images: np.ndarray) -> np.ndarray:
        return pooled(self._forward(self._to_tensor(images)))

    def _to_tensor(self, images: np.ndarray) -> torch.Tensor:
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


__all__ = [
    "CPU_PIXELS_PER_PASS",
    "YoloEmbedder",
    "named_layers",
    "resolve_device",
    "resolve_layers",
]
