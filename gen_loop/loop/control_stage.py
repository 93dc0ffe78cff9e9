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

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_loop.config.schema import RunConfig
from gen_loop.embedder.base import Embedder
from gen_loop.finetune import Finetuner, add_replay
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue
from gen_loop.score.scorer import Scorer
from gen_loop.search.space import SearchSpace
from gen_loop.selection import randomised_selection


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
