"""The run's figures: optimisation history, parameter importances, target vs best batch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from gen_loop.generator.base import Generator
from gen_loop.loop.summary import RunSummary
from gen_loop.search.study import from_objective
from gen_loop.tracking import plots

log = logging.getLogger(__name__)


def run_figures(
    study: optuna.Study,
    summary: RunSummary,
    target_images: np.ndarray,
    generator: Generator,
    scene_seed: int,
    batch_size: int,
    run_dir: Path,
) -> dict[str, Path]:
    """Draw the run's figures as PNGs in ``run_dir``; return name -> file.

    The importances (Optuna's fANOVA, >= 3 completed trials) also go into
    ``summary.param_importances``. The best batch is rendered from ``scene_seed`` with the
    summary's best camera, next to as many target images (at most 8 and ``batch_size``).
    """
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    figures = {
        "optimization_history": plots.history_figure(
            [t.number for t in done],
            [from_objective(t.value) for t in done],  # type: ignore[arg-type]
            summary.noise_floor.mean,
            summary.default_distance,
            [str(t.user_attrs.get("stage", "sampler")) for t in done],
        )
    }
    if len(done) >= 3:
        try:
            importances = optuna.importance.get_param_importances(study)
            figures["param_importances"] = plots.importance_figure(importances)
            summary.param_importances = importances
        except (RuntimeError, ValueError) as err:  # e.g. all values equal
            log.warning("parameter importances not computed: %s", err)
    k = min(8, len(target_images), batch_size)
    best = generator.generate(summary.all_params, k, scene_seed)
    figures["target_vs_best"] = plots.side_by_side(
        plots.image_grid(target_images[:k], ncols=4),
        plots.image_grid(best.images, ncols=4, boxes=best.labels),
        ("target", "best batch"),
    )
    files = {}
    for name, image in figures.items():
        files[name] = run_dir / f"{name}.png"
        plots.save_png(image, files[name])
    return files
