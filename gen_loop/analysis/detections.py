"""Run the detector on an image set: its detections, confidence statistics and, for labeled
images, the real per-image detection loss.

The loss is the detector's own training loss, ``box + cls + dfl`` as ultralytics' criterion
computes it with its default gains (or the checkpoint's training gains), for one image at a
time. Images are resized to ``imgsz x imgsz`` as the embedder does. torch and ultralytics are
imported when a :class:`DetectorRunner` is built.

Caveat of that loss: an object too small to contain the centre of any anchor cell (under about
8 px at the finest stride) is assigned no anchor, and contributes nothing; an image whose
objects are all that small gets only the label-free classification term, a low loss. Analyse at
the size the detector was trained at (``embedder.imgsz``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CONFIDENCE_FEATURES", "Detections", "DetectorRunner", "confidence_features"]

log = logging.getLogger(__name__)

#: Names of the per-image confidence statistics of :func:`confidence_features`.
CONFIDENCE_FEATURES = ("n_confident", "n_uncertain", "max_conf", "mean_conf", "mean_entropy")
_CONFIDENT = 0.25


@dataclass(frozen=True)
class Detections:
    """The detector's output on one image (after NMS).

    Attributes:
        boxes: ``(k, 4)`` YOLO-normalised ``cx cy w h``.
        conf: ``(k,)`` confidences.
        cls: ``(k,)`` class ids.
    """

    boxes: np.ndarray
    conf: np.ndarray
    cls: np.ndarray

    def as_yolo(self, min_conf: float = _CONFIDENT) -> np.ndarray:
        """Rows ``cls cx cy w h`` of the detections with ``conf >= min_conf`` (for drawing)."""
        keep = self.conf >= min_conf
        return np.hstack([self.cls[keep, None].astype(np.float64), self.boxes[keep]])


def confidence_features(detections: Sequence[Detections]) -> np.ndarray:
    """Per-image confidence statistics, ``(n, 5)`` in :data:`CONFIDENCE_FEATURES` order.

    ``n_confident``: detections with confidence >= 0.25; ``n_uncertain``: detections with
    confidence in [0.05, 0.25); ``max_conf`` and ``mean_conf`` (0 without detections);
    ``mean_entropy``: mean binary entropy (bits) of the confidences, high when the detector
    hesitates.
    """
    rows = []
    for det in detections:
        c = np.clip(det.conf.astype(np.float64), 1e-9, 1 - 1e-9)
        entropy = -(c * np.log2(c) + (1 - c) * np.log2(1 - c))
        rows.append(
            [
                float(np.sum(c >= _CONFIDENT)),
                float(np.sum(c < _CONFIDENT)),
                float(c.max()) if c.size else 0.0,
                float(c.mean()) if c.size else 0.0,
                float(entropy.mean()) if c.size else 0.0,
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(CONFIDENCE_FEATURES))


def _slice(preds: Any, i: int) -> Any:
    """Image ``i`` of a batched model output (nested tuples, lists and dicts of tensors)."""
    if isinstance(preds, dict):
        return {k: _slice(v, i) for k, v in preds.items()}
    if isinstance(preds, (list, tuple)):
        return type(preds)(_slice(v, i) for v in preds)
    if hasattr(preds, "shape") and len(preds.shape) > 0:
        return preds[i : i + 1]
    return preds


def _nms() -> Any:
    """ultralytics' NMS (moved from ``utils.ops`` to ``utils.nms`` in 8.3)."""
    import importlib

    try:
        return importlib.import_module("ultralytics.utils.nms").non_max_suppression
    except (ImportError, AttributeError):
        return importlib.import_module("ultralytics.utils.ops").non_max_suppression


class DetectorRunner:
    """A detector checkpoint ready to detect and to compute per-image losses.

    Args:
        model: architecture used when ``weights`` is None (random initialisation).
        weights: the checkpoint.
        imgsz: square input size.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: initialisation seed of a random model.
        conf: lowest confidence kept by NMS.
        iou: NMS IoU threshold.
        batch_size: images per forward pass.
    """

    def __init__(
        self,
        model: str,
        weights: Path | None,
        imgsz: int,
        device: str = "auto",
        seed: int = 0,
        conf: float = 0.05,
        iou: float = 0.6,
        batch_size: int = 32,
    ) -> None:
        from ultralytics.utils import DEFAULT_CFG_DICT, IterableSimpleNamespace

        from gen_loop.embedder.weights import build_model
        from gen_loop.embedder.yolo import resolve_device

        self.device = resolve_device(device)
        self.imgsz = imgsz
        self.conf = conf
        self.iou = iou
        self.batch_size = batch_size
        net: Any = build_model(model, weights, seed).model
        trained = net.args if isinstance(getattr(net, "args", None), dict) else {}
        gains = {k: trained[k] for k in ("box", "cls", "dfl") if k in trained}
        net.args = IterableSimpleNamespace(**{**DEFAULT_CFG_DICT, **gains})
        self.net = net.float().eval().to(self.device)
        self.n_classes = int(self.net.model[-1].nc)
        self._nms = _nms()

    def _tensor(self, images: np.ndarray) -> Any:
        import torch

        from gen_loop.embedder._pooled import resized  # the embedder's resize, same pixels

        x = torch.from_numpy(np.ascontiguousarray(resized(images, self.imgsz))).to(self.device)
        return x.permute(0, 3, 1, 2).float().div_(255.0)

    def _detections(self, raw: Any) -> list[Detections]:
        out = raw[0] if isinstance(raw, (tuple, list)) else raw
        kept = self._nms(out, conf_thres=self.conf, iou_thres=self.iou, max_det=100)
        dets = []
        for rows in kept:
            arr = rows.detach().float().cpu().numpy()
            xyxy = np.clip(arr[:, :4] / self.imgsz, 0.0, 1.0)
            boxes = np.stack(
                [
                    (xyxy[:, 0] + xyxy[:, 2]) / 2,
                    (xyxy[:, 1] + xyxy[:, 3]) / 2,
                    xyxy[:, 2] - xyxy[:, 0],
                    xyxy[:, 3] - xyxy[:, 1],
                ],
                axis=1,
            )
            dets.append(Detections(boxes, arr[:, 4].copy(), arr[:, 5].astype(int)))
        return dets

    def _loss(self, x: Any, raw: Any, labels: np.ndarray) -> float:
        import torch

        lab = np.asarray(labels, dtype=np.float32).reshape(-1, 5)
        lab = lab[(lab[:, 0] >= 0) & (lab[:, 0] < self.n_classes)]
        t = torch.from_numpy(lab).to(self.device)
        batch = {
            "img": x,
            "batch_idx": torch.zeros(len(t), device=self.device),
            "cls": t[:, :1],
            "bboxes": t[:, 1:],
        }
        _, items = self.net.loss(batch, raw)
        values = items.values() if isinstance(items, dict) else [items]
        return float(sum(float(torch.as_tensor(v).sum()) for v in values))

    def run(
        self, images: np.ndarray, labels: Sequence[np.ndarray] | None = None
    ) -> tuple[list[Detections], np.ndarray | None]:
        """Detect on every image; with ``labels`` also compute each image's loss.

        Args:
            images: ``(N, H, W, 3)`` uint8 RGB.
            labels: per image, ``(k, 5)`` YOLO rows ``cls cx cy w h``; labels of classes the
                detector does not have are left out of the loss.

        Returns:
            ``(detections, losses)``; ``losses`` is ``(N,)`` or None without labels.
        """
        import torch

        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} label arrays")
        dets: list[Detections] = []
        losses = None if labels is None else np.empty(len(images))
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = self._tensor(images[start : start + self.batch_size])
                raw = self.net(x)
                dets.extend(self._detections(raw))
                if labels is None or losses is None:
                    continue
                # ultralytics' loss is normalised over its whole batch: one image at a time.
                for j in range(len(x)):
                    losses[start + j] = self._loss(x[j : j + 1], _slice(raw, j), labels[start + j])
        return dets, losses
