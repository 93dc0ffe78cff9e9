"""Fine-tune the base detector on the selection and evaluate it before and after."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from gen_loop.embedder.weights import ultralytics_checkpoint
from gen_loop.finetune.train import evaluate_detector, train_detector
from gen_loop.selection.dataset import Selection

log = logging.getLogger(__name__)

#: The evaluation's ``skipped`` entry when there are no labeled target images.
NO_LABELS = (
    "no labeled target data: evaluation skipped (give target.labels=DATA_YAML for a labeled "
    "holdout)"
)


class TrainSettings(Protocol):
    """The training settings :func:`finetune_and_evaluate` reads (a ``FinetuneConfig`` or an
    :class:`~gen_loop.finetune.finetuner.UltralyticsFinetuner` has them)."""

    @property
    def epochs(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def imgsz(self) -> int: ...
    @property
    def lr0(self) -> float | None: ...
    @property
    def augment(self) -> bool: ...
    @property
    def seed(self) -> int: ...


def finetune_and_evaluate(
    base_weights: Path,
    model: str,
    selection: Selection,
    eval_yaml: Path | None,
    cfg: TrainSettings,
    device: str,
    out_dir: Path,
) -> tuple[Path, dict[str, Any]]:
    """Fine-tune ``base_weights`` on the selection; evaluate before and after on ``eval_yaml``.

    ``device`` is as the ultralytics trainer takes it (:func:`train_device`).

    An original-YOLOv7 ``base_weights`` is first written as an ultralytics checkpoint
    (``out_dir/<name>-ultralytics.pt``: its layers up to the head carried over, a new
    anchor-free head seeded by ``cfg.seed``), which the evaluations and the training then use.

    Returns:
        The fine-tuned weights and ``{"before": metrics, "after": metrics}`` (or a
        ``skipped`` message when there are no labeled target images).
    """
    evaluation: dict[str, Any] = {}
    base_weights = ultralytics_checkpoint(base_weights, out_dir, cfg.seed)
    mismatch = class_mismatch(base_weights, selection.batch.class_names)
    if mismatch:
        log.warning(mismatch)
        evaluation["warning"] = mismatch
    if eval_yaml is not None:
        before = evaluate_detector(
            base_weights, eval_yaml, cfg.imgsz, cfg.batch, device, out_dir / "eval_before"
        )
        evaluation["before"] = before.as_dict()
    weights = train_detector(
        selection.data_yaml,
        out_dir / "train",
        model,
        base_weights,
        cfg.epochs,
        cfg.imgsz,
        cfg.batch,
        device,
        cfg.seed,
        lr0=cfg.lr0,
        augment=cfg.augment,
    )
    if eval_yaml is not None:
        after = evaluate_detector(
            weights, eval_yaml, cfg.imgsz, cfg.batch, device, out_dir / "eval_after"
        )
        evaluation["after"] = after.as_dict()
    else:
        evaluation["skipped"] = NO_LABELS
    return weights, evaluation


def class_mismatch(weights: Path, class_names: tuple[str, ...]) -> str | None:
    """A message when the detector's classes are not the data's (its head is then re-made)."""
    from ultralytics import YOLO

    names = YOLO(str(weights)).names
    theirs = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    if theirs == list(class_names):
        return None
    return (
        f"the base detector's classes {_names(theirs)} differ from the data's "
        f"{_names(list(class_names))}: ultralytics re-initialises the detection head, and "
        "'before' scores are not comparable"
    )


def _names(names: list[str], shown: int = 6) -> str:
    """``names`` for a message: all of a short list, else the first few and the count."""
    if len(names) <= shown:
        return str(names)
    return f"[{', '.join(repr(n) for n in names[:shown])}, ... ({len(names)} classes)]"


def train_device(device: str) -> str:
    """``finetune.device`` (auto, cpu, cuda, cuda:N) as the ultralytics trainer takes it."""
    from gen_loop.embedder.yolo import resolve_device

    resolved = resolve_device(device)
    return "cpu" if resolved.type == "cpu" else str(resolved.index or 0)
