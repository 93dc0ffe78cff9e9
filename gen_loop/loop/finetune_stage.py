"""The run's last step: fine-tune the detector on the selection and judge the result.

The verdict compares the fine-tuned detector with the base one on the labeled target
(:func:`gen_loop.finetune.verdict.gain_verdict`); with ``finetune.control=randomised`` it must
beat the domain-randomised control too (:func:`gen_loop.loop.control_stage.judge_against_control`).
The run's result is the fine-tuned checkpoint when the verdict accepts it, the control's when
only the control stands, else the base checkpoint: rejected weights stay on disk and in MLflow,
but not under the result's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gen_loop.config.schema import FinetuneConfig
from gen_loop.errors import FinetuneError
from gen_loop.finetune import Finetuner
from gen_loop.finetune.verdict import (
    control_stands,
    failed_verdict,
    gain_verdict,
    unknown_verdict,
)
from gen_loop.loop.summary import RunSummary
from gen_loop.loop.timing import timed
from gen_loop.selection import Selection


@dataclass(frozen=True)
class FinetuneOutcome:
    """What the fine-tune left on disk, and how it failed.

    Attributes:
        weights: the loop's fine-tuned checkpoint (None: not fine-tuned).
        control_weights: the domain-randomised control's checkpoint (None: no control, or
            its fine-tune failed).
        failure: the fine-tune's error (None: it ran, or was not asked for).
    """

    weights: Path | None = None
    control_weights: Path | None = None
    failure: FinetuneError | None = None


def finetune_stage(
    summary: RunSummary,
    selection: Selection,
    finetuner: Finetuner | None,
    weights: Path | None,
    no_weights_reason: str,
    model: str,
    labels_yaml: Path | None,
    out_dir: Path,
    settings: FinetuneConfig,
    control: Callable[[RunSummary], Path | None],
    timings: dict[str, float],
) -> FinetuneOutcome:
    """Fine-tune ``weights`` on ``selection``, evaluate on ``labels_yaml``; fill the summary's
    evaluation, verdict and result weights.

    Args:
        summary: the run's summary (written to: ``evaluation``, ``verdict``,
            ``finetuned_weights``, ``result_weights``).
        selection: the selected (and replayed) training set.
        finetuner: fine-tunes and evaluates (None: ``finetune.enabled=false``).
        weights: the checkpoint fine-tuning starts from (None: nothing to fine-tune).
        no_weights_reason: why ``weights`` is None.
        model: the detector's model name (``embedder.model``).
        labels_yaml: the labeled target's data.yaml.
        out_dir: the fine-tune's folder.
        settings: ``finetune.*``.
        control: fine-tunes the domain-randomised control and judges the summary's verdict
            against it, returning its weights (called for ``finetune.control=randomised``
            once the fine-tune was evaluated).
        timings: seconds per stage (``finetune_s`` is added).
    """
    if finetuner is None:
        summary.evaluation = {"skipped": "fine-tuning disabled (finetune.enabled=false)"}
        summary.verdict = unknown_verdict("unknown: fine-tuning disabled")
        return FinetuneOutcome()
    if weights is None:
        summary.evaluation = {"skipped": no_weights_reason}
        summary.verdict = unknown_verdict(f"unknown: {no_weights_reason.split(' (')[0]}")
        return FinetuneOutcome()
    try:
        tuned, summary.evaluation = timed(
            timings,
            "finetune_s",
            finetuner.finetune,
            weights,
            model,
            selection,
            labels_yaml,
            out_dir,
        )
    except FinetuneError as err:
        reason = str(err).splitlines()[0]
        summary.evaluation = {"failed": reason}
        summary.verdict = failed_verdict(reason, settings.min_gain)
        summary.result_weights = str(weights)
        return FinetuneOutcome(failure=err)
    summary.finetuned_weights = str(tuned)
    summary.verdict = gain_verdict(summary.evaluation, settings.min_gain, settings.require_gain)
    control_weights = None
    if settings.control == "randomised" and summary.verdict.after is not None:
        control_weights = control(summary)
    summary.result_weights = str(tuned if summary.verdict.accepted else weights)
    if control_stands(summary.verdict):
        summary.result_weights = str(control_weights)
    return FinetuneOutcome(tuned, control_weights)
