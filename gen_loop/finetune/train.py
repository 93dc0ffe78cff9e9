"""Train and evaluate a detector with the ultralytics trainer, offline and in-process."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_loop.embedder.weights import build_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectionMetrics:
    """Detection accuracy on one labeled dataset.

    Attributes:
        map50: mean AP at IoU 0.5 over classes.
        map50_95: mean AP over IoU 0.5:0.95.
        per_class_map50: AP50 of each class that appears in the data, by class name.
        n_images: images evaluated.
    """

    map50: float
    map50_95: float
    per_class_map50: dict[str, float]
    n_images: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat metrics for MLflow and summary.json."""
        out = {f"{prefix}map50": self.map50, f"{prefix}map50_95": self.map50_95}
        out.update({f"{prefix}ap50_{name}": v for name, v in self.per_class_map50.items()})
        return out


def train_detector(
    data_yaml: Path,
    out_dir: Path,
    model: str,
    weights: Path | None,
    epochs: int,
    imgsz: int,
    batch: int,
    device: str,
    seed: int,
    lr0: float | None = None,
    patience: int = 100,
    augment: bool = True,
) -> Path:
    """Train (or fine-tune, when ``weights`` is given) and return the path of ``best.pt``.

    Args:
        data_yaml: a YOLO ``data.yaml``.
        out_dir: where ultralytics writes its run; ``best.pt`` ends up at ``out_dir/best.pt``.
        model: an architecture (a shipped name or an ultralytics YAML) used when ``weights``
            is None.
        weights: a checkpoint to start from (all layers transfer: every layer of the same
            name and shape, so a head made for other classes starts anew). An original-YOLOv7
            checkpoint is mapped first (see ``gen_loop.embedder.build_model``): the layers in
            front of its head transfer, its anchor-based head is replaced by ultralytics'
            anchor-free ``Detect``, which is learnt from scratch.
        epochs: training epochs.
        imgsz: training image size.
        batch: batch size.
        device: ``cpu``, ``cuda:0``, ...
        seed: the trainer's seed.
        lr0: initial learning rate (None: ultralytics' choice).
        patience: early-stopping patience in epochs.
        augment: mosaic and the other default augmentations (off for a short fine-tune that
            should keep the look of its data).
    """
    from gen_loop.embedder.layout import LayoutTrainer, custom_rows

    detector = build_model(model, weights, seed)
    # A layout with YOLOv7 layers that ultralytics' own parser cannot size (yolov7: SPPCSPC,
    # RepConv) is rebuilt by the trainer through gen_loop's builder.
    net: Any = detector.model
    trainer = LayoutTrainer if custom_rows(net.yaml) else None
    extra: dict[str, object] = {} if lr0 is None else {"lr0": lr0, "optimizer": "AdamW"}
    if not augment:
        extra.update(mosaic=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, scale=0.0, translate=0.0)
    detector.train(
        trainer=trainer,
        **_run_arguments(data_yaml, imgsz, batch, device, out_dir),
        epochs=epochs,
        seed=seed,
        deterministic=True,
        amp=False,  # the AMP check downloads a checkpoint
        patience=patience,
        **extra,
    )
    best = out_dir / "weights" / "best.pt"
    if not best.exists():
        best = out_dir / "weights" / "last.pt"
    final = out_dir / "best.pt"
    shutil.copyfile(best, final)
    return final


def evaluate_detector(
    weights: Path, data_yaml: Path, imgsz: int, batch: int, device: str, out_dir: Path
) -> DetectionMetrics:
    """mAP50, mAP50-95 and per-class AP50 of ``weights`` on the ``val`` split of ``data_yaml``."""
    from ultralytics import YOLO

    detector = YOLO(str(weights))
    result = detector.val(**_run_arguments(data_yaml, imgsz, batch, device, out_dir))
    names = result.names
    per_class = {
        names[int(c)]: float(result.box.ap50[i]) for i, c in enumerate(result.box.ap_class_index)
    }
    return DetectionMetrics(
        map50=float(result.box.map50),
        map50_95=float(result.box.map),
        per_class_map50=per_class,
        n_images=int(result.seen) if hasattr(result, "seen") else -1,
    )


def _run_arguments(
    data_yaml: Path, imgsz: int, batch: int, device: str, out_dir: Path
) -> dict[str, object]:
    """What training and validation share: the data, the sizes, the device, and a quiet run
    written to ``out_dir`` without plots or data-loader workers."""
    return {
        "data": str(data_yaml),
        "imgsz": imgsz,
        "batch": batch,
        "device": device if device != "cuda" else 0,
        "workers": 0,
        "plots": False,
        "verbose": False,
        "project": str(out_dir.parent.resolve()),
        "name": out_dir.name,
        "exist_ok": True,
    }
