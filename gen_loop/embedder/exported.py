"""Embeddings from an exported detector: chosen tensors of an ONNX graph, globally averaged."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gen_loop.embedder import _onnx_graph as graph
from gen_loop.embedder._pooled import PooledEmbedder, fingerprint_of, pass_size, pooled
from gen_loop.embedder.weights import file_digest
from gen_loop.embedder.yolo import resolve_device
from gen_loop.errors import ConfigError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'gen_loop[onnx]' (or: pip install onnx onnxruntime)"


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module; ``ConfigError`` naming ``embedder=onnx`` and the pip
    command when it (or ``onnx``) is not installed."""
    try:
        import onnx  # noqa: F401  # the graph is edited with it before the runtime sees it
        import onnxruntime
    except ImportError as err:
        raise ConfigError(
            "embedder", f"embedder=onnx needs {err.name or 'onnxruntime'}: {INSTALL_HINT}"
        ) from None
    return onnxruntime


class OnnxEmbedder(PooledEmbedder):
    """Global-average-pooled tensors of an ONNX graph, run with onnxruntime.

    The graph is edited in memory: the named tensors become its only outputs and every node
    they do not depend on is dropped, so a pass stops where the deepest tensor is made (as the
    torch path stops after its deepest layer). Images are resized, scaled to [0, 1] RGB NCHW,
    run in passes and pooled exactly as :class:`~gen_loop.embedder.YoloEmbedder` does
    (``gen_loop/embedder/_pooled.py``), so a model exported from a checkpoint embeds like the
    checkpoint. The identity (:attr:`fingerprint`) is the file's sha256, the tensor names and
    ``imgsz``.

    Args:
        model: the ``.onnx`` file; its one input is ``(N, 3, H, W)`` float (free or fixed
            dimensions; a fixed batch size becomes the pass size, a fixed H x W must equal
            ``imgsz``).
        layers: tensor names, pooled and concatenated in this order (``python -m gen_loop
            onnx-tensors MODEL`` lists the candidates).
        imgsz: images are resized to ``imgsz x imgsz``.
        device: ``auto`` (CUDAExecutionProvider when onnxruntime has it and a GPU is there),
            ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per pass (on CPU capped like the torch path).
        half: None or False; the graph runs in the precision it was exported in.

    Raises:
        ConfigError: onnxruntime missing (``embedder``), an unreadable or unsuitable file
            (``embedder.model``), an unknown tensor (``embedder.layers``), a size the graph
            does not take (``embedder.imgsz``), CUDA asked of a CPU-only onnxruntime
            (``embedder.device``), ``half=True`` (``embedder.half``).
    """

    def __init__(
        self,
        model: str | Path,
        layers: Sequence[str],
        imgsz: int,
        device: str = "auto",
        batch_size: int = 32,
        half: bool | None = None,
    ) -> None:
        ort = import_onnxruntime()
        if half:
            raise ConfigError(
                "embedder.half",
                "an ONNX graph runs in the precision it was exported in; export it in float16 "
                "for half precision and leave embedder.half=null",
            )
        path = Path(model)
        proto = graph.load_model(path)
        self._input = graph.image_input(proto, path)
        fixed = {self._input.height, self._input.width} - {None}
        if fixed and fixed != {imgsz}:
            raise ConfigError(
                "embedder.imgsz",
                f"{imgsz}: {path} takes {self._input.height}x{self._input.width} images only; "
                f"set embedder.imgsz to that size (or export the model with dynamic axes)",
            )
        self.layers = graph.check_layers(
            layers, graph.feature_tensors(proto, self._input, imgsz), path
        )
        options = ort.SessionOptions()
        # As many threads as torch uses (configure_ultralytics: every core), so the two paths
        # get the same CPU.
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3  # warnings about unused initializers and such: off
        try:
            self._session = ort.InferenceSession(
                graph.with_outputs(proto, self.layers).SerializeToString(),
                options,
                providers=_providers(device, ort.get_available_providers()),
            )
        except Exception as err:  # onnxruntime's own errors: ops it lacks, bad graphs
            raise ConfigError(
                graph.MODEL_KEY, f"onnxruntime cannot run {path}: {str(err).splitlines()[0]}"
            ) from None
        on_gpu = self._session.get_providers()[0] == "CUDAExecutionProvider"
        self.device = "cuda" if on_gpu else "cpu"
        self.imgsz = imgsz
        self.batch_size = batch_size
        self.pass_size = self._input.batch or pass_size(batch_size, imgsz, on_gpu)
        self._dtype = np.float16 if self._input.elem_type == 10 else np.float32  # FLOAT16
        self._dim = int(self._embed_pass(np.zeros((1, imgsz, imgsz, 3), np.uint8)).shape[1])
        key = f"onnx:{file_digest(path)}|tensors={list(self.layers)}|imgsz={imgsz}|v1"
        self._fingerprint = fingerprint_of(key)

    def _embed_pass(self, images: np.ndarray) -> np.ndarray:
        n = len(images)
        x = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
        if self._input.batch is not None and n < self._input.batch:  # a fixed batch: pad
            x = np.concatenate([x, np.zeros((self._input.batch - n, *x.shape[1:]), x.dtype)])
        outputs = self._session.run(list(self.layers), {self._input.name: x.astype(self._dtype)})
        return pooled([torch.from_numpy(out[:n]) for out in outputs])


def _providers(device: str, available: Sequence[str]) -> list[Any]:
    """onnxruntime's execution providers for ``device``."""
    resolved = resolve_device(device)  # checks the spelling and torch's view of CUDA
    cuda = "CUDAExecutionProvider" in available
    if resolved.type == "cpu":
        return ["CPUExecutionProvider"]
    if not cuda:
        if device == "auto":  # a GPU, but an onnxruntime without CUDA: run on the CPU
            log.warning("onnxruntime has no CUDAExecutionProvider: embedding on the CPU")
            return ["CPUExecutionProvider"]
        raise ConfigError(
            "embedder.device",
            f"{device!r}: this onnxruntime has no CUDAExecutionProvider (available: "
            f"{list(available)}); pip install onnxruntime-gpu, or set embedder.device=cpu",
        )
    return [("CUDAExecutionProvider", {"device_id": resolved.index or 0}), "CPUExecutionProvider"]


def tensor_table(path: Path, imgsz: int) -> list[str]:
    """One line per 4-D float tensor of ``path`` (the values ``embedder.layers`` takes), in
    graph order: its name, channels, and size and stride for one ``imgsz`` image."""
    proto = graph.load_model(path)
    lines = []
    for name, (_, channels, height, width) in graph.feature_tensors(
        proto, graph.image_input(proto, path), imgsz
    ).items():
        stride = f"stride {imgsz // width}" if width else "stride ?"
        lines.append(f"{name}\t{channels or '?'} x {height or '?'} x {width or '?'}\t{stride}")
    return lines


def onnx_tensors_main(argv: Sequence[str]) -> int:
    """``python -m gen_loop onnx-tensors MODEL.onnx [--imgsz N]``: print :func:`tensor_table`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m gen_loop onnx-tensors",
        description="List the tensors of an ONNX model that embedder.layers can name.",
    )
    parser.add_argument("model", type=Path, help="the .onnx file (embedder.model)")
    parser.add_argument("--imgsz", type=int, default=256, help="probe image size (pixels)")
    args = parser.parse_args(list(argv))
    try:
        lines = tensor_table(args.model, args.imgsz)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"# {len(lines)} 4-D tensors of {args.model} at {args.imgsz} px: name, C x H x W, stride"
    )
    print("\n".join(lines))
    return 0
