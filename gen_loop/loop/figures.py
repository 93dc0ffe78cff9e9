"""The run's figures: optimisation history, parameter importances, target vs best batch, and
Optuna's own matplotlib plots of the searched parameters (importances, parallel coordinates,
slices)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
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
    return {**files, **optuna_figures(study, list(summary.best_params), run_dir)}


def optuna_figures(study: optuna.Study, searched: Sequence[str], run_dir: Path) -> dict[str, Path]:
    """Optuna's matplotlib plots of the searched parameters as PNGs in ``run_dir``.

    The objective is shown as the distance (not the study's log distance). A plot that cannot
    be drawn is skipped with a logged reason (no completed trial; importances need two
    completed trials whose parameters differ); it never fails the run. The three took 2.7 to
    4.9 s for the smoke run's 6 trials on 2 busy cores (experiments/mlflow_view/RESULTS.md).
    """
    from optuna.visualization import matplotlib as ov

    def distance(t: optuna.trial.FrozenTrial) -> float:
        return from_objective(t.value)  # type: ignore[arg-type]

    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    params = [p for p in searched if any(p in t.params for t in done)]
    if not params:
        log.info("Optuna plots not drawn: no completed trial with searched parameters")
        return {}
    plotters: dict[str, Callable[..., object]] = {
        "optuna_parallel_coordinate": ov.plot_parallel_coordinate,
        "optuna_slice": ov.plot_slice,
    }
    if len({tuple(sorted(t.params.items())) for t in done}) >= 2:
        plotters["optuna_importances"] = ov.plot_param_importances
    else:
        log.info("optuna_importances not drawn: fewer than two different completed trials")
    clock = time.perf_counter()
    files = {}
    for name, plotter in plotters.items():
        plot = partial(plotter, study, params=params, target=distance, target_name="distance")
        path = _save_figure(plot, run_dir / f"{name}.png")
        if path is not None:
            files[name] = path
    log.info("Optuna plots: %s in %.2f s", ", ".join(files) or "none", time.perf_counter() - clock)
    return files


def _save_figure(plot: Callable[[], object], path: Path) -> Path | None:
    """Draw an Optuna matplotlib plot (an Axes or an array of them) and save it, or None."""
    import matplotlib

    matplotlib.use("Agg")  # Optuna draws through pyplot; a batch run opens no windows
    import matplotlib.pyplot as plt

    try:
        with warnings.catch_warnings():
            # Optuna's notes on its own drawing (experimental API, flat axes of a single
            # value, the evaluator's minimisation): nothing the user can act on.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)
            axes = plot()
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        log.info("%s not drawn: %s: %s", path.stem, type(err).__name__, err)
        plt.close("all")
        return None
    figure = np.ravel(np.asarray(axes, dtype=object))[0].get_figure()
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
