"""After the search: render a fresh pool with the best parameters and keep the samples closest
to the target."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gen_loop.config.schema import SelectionConfig
from gen_loop.embedder.base import Embedder
from gen_loop.generator.base import Batch, Generator
from gen_loop.generator.params import ParamValue
from gen_loop.score.scorer import Scorer
from gen_loop.search.refine import Box
from gen_loop.search.space import SearchSpace
from gen_loop.selection.around import (
    camera_spread,
    jittered_cameras,
    render_blocks,
    uniform_point,
)
from gen_loop.selection.dataset import Selection, write_selection
from gen_loop.selection.select import closest_camera, select_closest

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


def select_pool(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    params: dict[str, ParamValue],
    cfg: SelectionConfig,
    val_fraction: float,
    out_dir: Path,
    candidates: Sequence[Mapping[str, ParamValue]] = (),
    space: SearchSpace | None = None,
) -> Selection:
    """Render ``cfg.pool_size`` fresh scenes with ``params`` and keep the closest samples.

    With ``selection.method=camera`` every scene is rendered with ``params`` and with the
    first ``selection.pool_trials - 1`` of ``candidates`` (the next-best trials' parameters),
    and each scene keeps its rendering closest to the target: the camera is selected, the
    scene mix is left alone. With ``selection.method=jitter`` (needs ``space``) every scene is
    kept, rendered under one of ``selection.n_cameras`` cameras drawn around ``params``
    (:mod:`gen_loop.selection.around`; the spread from ``selection.jitter`` and the first
    ``pool_trials - 1`` candidates).
    """
    cameras = [dict(params), *(dict(c) for c in candidates)][: cfg.pool_trials]
    if cfg.method == "camera":
        return _select_cameras(generator, embedder, scorer, cameras, cfg, val_fraction, out_dir)
    if cfg.method == "jitter":
        if space is None:
            raise ValueError("selection method 'jitter' needs the search space")
        box = Box.of_space(space)
        spread = camera_spread(cameras, box, cfg.jitter)
        rng = np.random.default_rng([cfg.pool_seed, 8191])
        drawn = jittered_cameras(params, spread, box, cfg.n_cameras, rng)
        log.info(
            "jitter selection: %d cameras around the best, spread (fraction of range) %s",
            len(drawn),
            ", ".join(f"{n} {s:.3f}" for n, s in zip(box.names, spread, strict=True)),
        )
        return _keep_all(generator, embedder, scorer, drawn, cfg, val_fraction, out_dir)
    pool = generator.generate(params, cfg.pool_size, cfg.pool_seed)
    distances = scorer.sample_distances(embedder.embed(pool.images))
    chosen, threshold = select_closest(
        distances, cfg.method, scorer.target_sample_distances, cfg.quantile, cfg.top_k
    )
    if len(chosen) == 0:
        # Nothing as close as the target's own samples: keep the closest quarter instead of
        # fine-tuning on nothing, and say so. With one camera for the whole pool this keeps
        # the most average scenes, a content filter that cost 3-8 mAP50 points against no
        # selection (experiments/downstream/RESULTS.md); selection=camera avoids it.
        chosen = np.argsort(distances)[: max(1, cfg.pool_size // 4)]
        log.warning(
            "no pool sample within threshold %.4g; keeping the closest %d (this filters scene "
            "content, not camera: selection=camera selects the camera)",
            threshold,
            len(chosen),
        )
    return write_selection(pool, chosen, distances, threshold, cfg, val_fraction, out_dir)


def randomised_selection(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    space: SearchSpace,
    base_params: Mapping[str, ParamValue],
    cfg: SelectionConfig,
    n: int,
    val_fraction: float,
    out_dir: Path,
) -> Selection:
    """Domain randomisation, no search: the first ``n`` pool scenes, in blocks each under one
    of ``selection.n_cameras`` cameras drawn uniformly from ``space`` (the other parameters at
    ``base_params``). The control a search must beat (``finetune.control=randomised``)."""
    rng = np.random.default_rng([cfg.pool_seed, 14])
    cameras = [{**base_params, **uniform_point(space, rng)} for _ in range(min(n, cfg.n_cameras))]
    return _keep_all(generator, embedder, scorer, cameras, cfg, val_fraction, out_dir, n)


def ranked_params(
    study: optuna.Study, base_params: Mapping[str, ParamValue], k: int
) -> list[dict[str, ParamValue]]:
    """The full parameters of the ``k`` best distinct complete trials, best first."""
    from optuna.trial import TrialState

    done = sorted(
        (t for t in study.trials if t.state == TrialState.COMPLETE and t.value is not None),
        key=lambda t: t.value,  # type: ignore[arg-type, return-value]
    )
    out: list[dict[str, ParamValue]] = []
    for trial in done:
        params = {**base_params, **trial.params}
        if params not in out:
            out.append(params)
        if len(out) == k:
            break
    return out


def _select_cameras(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    cameras: list[dict[str, ParamValue]],
    cfg: SelectionConfig,
    val_fraction: float,
    out_dir: Path,
) -> Selection:
    """Each of ``cfg.pool_size`` scenes under each camera; per scene the closest rendering."""
    images: np.ndarray | None = None
    labels: list[np.ndarray] = []
    best = np.full(cfg.pool_size, np.inf)
    camera = np.zeros(cfg.pool_size, dtype=int)
    seeds: tuple[int, ...] = ()
    for index, params in enumerate(cameras):  # one rendering of the pool in memory at a time
        batch = generator.generate(params, cfg.pool_size, cfg.pool_seed)
        distances = scorer.sample_distances(embedder.embed(batch.images))
        winner, best = closest_camera(np.stack([best, distances]))
        closer = winner == 1
        if images is None:
            images, labels, seeds = batch.images.copy(), list(batch.labels), batch.seeds
        else:
            images[closer] = batch.images[closer]
            labels = [batch.labels[j] if closer[j] else labels[j] for j in range(len(labels))]
        camera[closer] = index
    assert images is not None
    pool = Batch(images, tuple(labels), generator.class_names, dict(cameras[0]), seeds)
    chosen = np.argsort(best, kind="stable")
    log.info("camera selection: scenes per camera %s", np.bincount(camera, minlength=len(cameras)))
    return write_selection(
        pool, chosen, best, float(best.max()), cfg, val_fraction, out_dir, camera, cameras
    )


def _keep_all(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    cameras: list[dict[str, ParamValue]],
    cfg: SelectionConfig,
    val_fraction: float,
    out_dir: Path,
    n: int | None = None,
) -> Selection:
    """The first ``n`` (default ``cfg.pool_size``) pool scenes in blocks under ``cameras``,
    every one kept (closest first, so the closest form the validation split)."""
    n = cfg.pool_size if n is None else n
    pool, camera = render_blocks(generator, cameras, n, cfg.pool_seed)
    distances = scorer.sample_distances(embedder.embed(pool.images))
    chosen = np.argsort(distances, kind="stable")
    return write_selection(
        pool,
        chosen,
        distances,
        float(distances.max()),
        cfg,
        val_fraction,
        out_dir,
        camera,
        cameras,
    )
