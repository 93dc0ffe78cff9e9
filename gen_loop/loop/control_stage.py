"""The domain-randomised control of ``finetune.control=randomised``: what the user would get
without any search, measured next to the loop's own fine-tune.

Randomising the camera over the search space and fine-tuning on that is the cheap
alternative to a search (experiments/downstream/RESULTS.md: on a target the generator cannot
reproduce, it won in some seeds). With labeled target data, the control fine-tunes the same
base detector with the same settings on as many pool scenes, each block of them under a
camera drawn uniformly from the space (``selection.n_cameras`` of them), with the same replay
share; the loop's result counts as better only if it beats this control too
(:func:`gen_loop.finetune.verdict.control_verdict`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_loop.config.schema import RunConfig
from gen_loop.embedder.base import Embedder
from gen_loop.errors import FinetuneError
from gen_loop.finetune import Finetuner, add_replay
from gen_loop.finetune.verdict import control_verdict
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.loop.summary import RunSummary
from gen_loop.score.scorer import Scorer
from gen_loop.search.space import SearchSpace
from gen_loop.selection import randomised_selection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlResult:
    """The control's fine-tune.

    Attributes:
        metrics: its fine-tuned detector on the labeled target (``map50``, ``map50_95``, ...).
        weights: its fine-tuned checkpoint.
        n_images: its training set (selected and replayed).
        cameras: how many cameras rendered it.
    """

    metrics: dict[str, Any]
    weights: Path
    n_images: int
    cameras: int


def run_control(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    space: SearchSpace,
    base_params: Mapping[str, ParamValue],
    cfg: RunConfig,
    finetuner: Finetuner,
    weights: Path,
    labels_yaml: Path,
    n: int,
    out_dir: Path,
) -> ControlResult:
    """Fine-tune ``weights`` on ``n`` domain-randomised pool scenes and evaluate on
    ``labels_yaml``; raises :class:`~gen_loop.errors.FinetuneError` as the loop's own
    fine-tune does."""
    selection = randomised_selection(
        generator,
        embedder,
        scorer,
        space,
        {**base_params, **space.fixed},
        cfg.selection,
        n,
        cfg.finetune.val_fraction,
        out_dir / "selected",
    )
    replayed = add_replay(
        selection, generator, dict(base_params), cfg.finetune, cfg.selection.pool_seed + 7919
    )
    tuned, evaluation = finetuner.finetune(
        weights, cfg.embedder.model, selection, labels_yaml, out_dir / "finetune"
    )
    cameras = min(n, cfg.selection.n_cameras)
    return ControlResult(
        dict(evaluation["after"]), tuned, len(selection.batch) + replayed, cameras
    )


def judge_against_control(
    summary: RunSummary, control: Callable[[], ControlResult], require_gain: bool
) -> Path | None:
    """Fine-tune the control (``control()``: :func:`run_control` on as many images as the
    selection) and judge the summary's verdict against it too; record its metrics in the
    summary's evaluation and return its weights. A failed control fine-tune is logged and
    recorded, and the verdict then stands on the base alone and says so (returns None)."""
    try:
        result = control()
    except FinetuneError as err:
        reason = str(err).splitlines()[0]
        log.warning("the domain-randomised control's fine-tune failed: %s", reason)
        summary.evaluation["control_failed"] = reason
        summary.verdict = dataclasses.replace(
            summary.verdict,
            message=f"{summary.verdict.message}; not compared with the domain-randomised "
            f"control (its fine-tune failed: {reason})",
        )
        return None
    summary.evaluation["control"] = result.metrics
    summary.evaluation["control_set"] = {"images": result.n_images, "cameras": result.cameras}
    summary.verdict = control_verdict(
        summary.verdict, float(result.metrics["map50"]), require_gain
    )
    return result.weights
