"""The fine-tune stage's extension point, and the built-in one (the ultralytics trainer)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gen_loop.selection.dataset import Selection


class Finetuner(ABC):
    """Fine-tunes the base detector on the selected samples and evaluates it before and after.

    Contract: :meth:`finetune` writes only under ``out_dir`` and returns the fine-tuned weights
    and the evaluation. With labeled target data (``eval_yaml``) the evaluation is
    ``{"before": m, "after": m}``, ``m`` being
    :meth:`~gen_loop.finetune.train.DetectionMetrics.as_dict` of the base and of the
    fine-tuned weights on the ``val`` split of ``eval_yaml`` (``map50``, ``map50_95``,
    ``ap50_<class>``), both measured the same way; without it, ``{"skipped": why}``. A
    ``warning`` entry may note what makes the numbers less comparable. The loop turns the
    evaluation into the verdict (:func:`~gen_loop.finetune.verdict.gain_verdict`), the same
    for every finetuner.

    Options of the ``finetune`` config group name their finetuner in ``_target_``; the
    constructor takes the option's fields but the loop's own
    (:attr:`~gen_loop.config.schema.FinetuneConfig.loop_fields`).
    """

    @abstractmethod
    def finetune(
        self,
        base_weights: Path,
        model: str,
        selection: Selection,
        eval_yaml: Path | None,
        out_dir: Path,
    ) -> tuple[Path, dict[str, Any]]:
        """Fine-tune ``base_weights`` on ``selection``; evaluate before and after on ``eval_yaml``.

        Args:
            base_weights: the base detector's checkpoint (``embedder.weights``).
            model: its architecture (``embedder.model``).
            selection: the selected samples as a YOLO dataset (``selection.data_yaml``).
            eval_yaml: the labeled target's YOLO ``data.yaml`` (None: no labels).
            out_dir: this stage's folder in the run folder.

        Returns:
            The fine-tuned weights and the evaluation (see the class docstring).

        Raises:
            FinetuneError: when no fine-tuned weights could be made; the loop keeps the
                search's results and records a ``failed`` verdict.
        """


class UltralyticsFinetuner(Finetuner):
    """``finetune=default``: the ultralytics trainer, in-process (see
    :func:`~gen_loop.finetune.evaluate.finetune_and_evaluate`).

    Args:
        epochs: fine-tuning epochs.
        batch: batch size.
        imgsz: training and evaluation image size.
        lr0: initial learning rate (AdamW).
        augment: ultralytics' default augmentations (mosaic, HSV, scale, translate).
        device: auto, cpu, cuda or cuda:N.
        seed: the trainer's seed.
    """

    def __init__(
        self,
        epochs: int = 8,
        batch: int = 16,
        imgsz: int = 256,
        lr0: float | None = 0.001,
        augment: bool = False,
        device: str = "auto",
        seed: int = 0,
    ) -> None:
        self.epochs = epochs
        self.batch = batch
        self.imgsz = imgsz
        self.lr0 = lr0
        self.augment = augment
        self.device = device
        self.seed = seed

    def finetune(
        self,
        base_weights: Path,
        model: str,
        selection: Selection,
        eval_yaml: Path | None,
        out_dir: Path,
    ) -> tuple[Path, dict[str, Any]]:
        from gen_loop.finetune.evaluate import finetune_and_evaluate, train_device

        return finetune_and_evaluate(
            base_weights, model, selection, eval_yaml, self, train_device(self.device), out_dir
        )
