"""The run's own analysis (``analysis.*``): the population picture before and after the search.

At the end of a run, four sets go through :func:`gen_loop.analysis.analyze_sets`: the
**target**, the **source** camera (the simulator's current settings, trial 0's batch), the
**best** camera (the best trial's batch) and the **selected** samples. The report in
``<run_dir>/report/`` shows them in one PCA plane with the search's **route** (each trial's
batch centroid, :data:`CENTROID_ATTR`), the shift tests before and after ("target vs source:
separable; target vs selected: ..."), clusters, image properties and predicted loss.

The plane is fitted once per target and embedder and kept in the cache
(``<cache_dir>/projections/``), so the plots of later runs on that target are comparable;
``analysis.projection_file`` gives another one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from gen_loop.analysis import Origin, analyze_sets, origin_from_batch, write_report
from gen_loop.analysis.report import route_data
from gen_loop.analysis.route import Route
from gen_loop.analysis.settings import to_settings
from gen_loop.analysis.shift import headline
from gen_loop.config.analysis import RunAnalysisConfig
from gen_loop.config.schema import RunConfig
from gen_loop.embedder.base import Embedder
from gen_loop.embedder.cache import cached_embeddings
from gen_loop.generator.base import Batch, Generator
from gen_loop.generator.params import ParamValue
from gen_loop.loop.summary import AnalysisInfo, RunSummary
from gen_loop.loop.target_data import TargetData
from gen_loop.search.study import from_objective

__all__ = [
    "CENTROID_ATTR",
    "RunSets",
    "analyse_run",
    "analyse_selection",
    "search_route",
    "stored_centroid",
]

log = logging.getLogger(__name__)

#: The trial user attribute holding its batch centroid (the route of the search).
CENTROID_ATTR = "centroid"


def stored_centroid(embeddings: np.ndarray) -> list[float]:
    """A batch's centroid as a trial stores it: 4 significant digits a component (JSON)."""
    return [float(f"{v:.4g}") for v in np.asarray(embeddings, np.float64).mean(axis=0)]


@dataclass(frozen=True)
class RunSets:
    """What the run hands to its analysis.

    Attributes:
        target_images / target_fingerprint: the target (its embeddings are cached).
        target_description: one line on the target.
        source_params / best_params: every generator parameter of the simulator's current
            camera and of the best trial's.
        scene_seed / batch_size: what the trials rendered (``search.*``).
        selected: the selected samples (None: no selection was made).
    """

    target_images: np.ndarray
    target_fingerprint: str
    target_description: str
    source_params: Mapping[str, ParamValue]
    best_params: Mapping[str, ParamValue]
    scene_seed: int
    batch_size: int
    selected: Batch | None


def search_route(study: optuna.Study) -> Route | None:
    """The completed trials that stored a centroid, in trial order (None: fewer than one)."""
    done = [
        t
        for t in study.trials
        if t.state == TrialState.COMPLETE and t.value is not None and CENTROID_ATTR in t.user_attrs
    ]
    if not done:
        return None
    done.sort(key=lambda t: t.number)
    best = min(done, key=lambda t: t.value)  # type: ignore[arg-type, return-value]
    return Route(
        numbers=np.array([t.number for t in done]),
        centroids=np.array([t.user_attrs[CENTROID_ATTR] for t in done], dtype=np.float64),
        distances=np.array([from_objective(t.value) for t in done]),  # type: ignore[arg-type]
        best=best.number,
    )


def _evenly(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of ``range(n)``, spread evenly (all when ``n <= most``)."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def _origins(
    sets: RunSets,
    generator: Generator,
    embedder: Embedder,
    cache_dir: Path,
    max_images: int,
) -> list[Origin]:
    """Target, source, best and selected as embedded origins."""
    target_emb = cached_embeddings(
        embedder, sets.target_images, sets.target_fingerprint, cache_dir
    )
    keep = _evenly(len(sets.target_images), max_images)
    origins = [
        Origin.from_arrays(
            "target",
            sets.target_images[keep],
            target_emb[keep],
            description=sets.target_description,
        )
    ]
    changed = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in sets.best_params.items()
        if sets.source_params.get(k) != v
    )
    batches = [
        (
            "source",
            generator.generate(sets.source_params, sets.batch_size, sets.scene_seed),
            "the simulator's current camera (trial 0's batch)",
        ),
        (
            "best",
            generator.generate(sets.best_params, sets.batch_size, sets.scene_seed),
            f"the best trial's camera ({changed or 'the current one'})",
        ),
    ]
    if sets.selected is not None:
        batches.append(("selected", sets.selected, "the samples selected for fine-tuning"))
    for name, batch, what in batches:
        picked = _evenly(len(batch), max_images)
        origin = origin_from_batch(name, batch, f"{what}, {len(picked)} images")
        origins.append(
            replace(
                origin,
                images=origin.images[picked],
                paths=tuple(origin.paths[i] for i in picked),
                labels=tuple(origin.labels[i] for i in picked) if origin.labels else None,
                embeddings=np.asarray(embedder.embed(origin.images[picked])),
            )
        )
    return origins


def _with_detections(
    origins: Sequence[Origin],
    model: str,
    weights: Path,
    imgsz: int,
    device: str,
    conf: float,
    batch_size: int,
) -> list[Origin]:
    from gen_loop.analysis.detections import DetectorRunner

    try:
        runner = DetectorRunner(model, weights, imgsz, device, conf=conf, batch_size=batch_size)
    except Exception as err:  # e.g. a checkpoint only the embedder can read: no loss, say why
        log.warning("analysis: predicted loss left out, the detector %s: %s", weights, err)
        return list(origins)
    out = []
    for o in origins:
        dets, losses = runner.run(o.images, o.labels)
        out.append(replace(o, detections=tuple(dets), losses=losses))
    return out


def projection_path(
    cfg: RunAnalysisConfig, cache_dir: Path, embedder_fingerprint: str, target_fingerprint: str
) -> Path:
    """The PCA plane of this target and embedder: ``analysis.projection_file``, else the one
    kept in the cache."""
    if cfg.projection_file is not None:
        return Path(cfg.projection_file)
    key = f"{embedder_fingerprint[:16]}-{target_fingerprint[:16]}"
    return cache_dir / "projections" / f"{key}.npz"


def analyse_run(
    cfg: RunAnalysisConfig,
    sets: RunSets,
    route: Route | None,
    *,
    generator: Generator,
    embedder: Embedder,
    detector: tuple[str, Path, int, str, int] | None,
    cache_dir: Path,
    out: Path,
    header: Mapping[str, str],
) -> AnalysisInfo:
    """Analyse the run's sets, write ``out/report.html``; return what the summary keeps.

    Args:
        cfg: ``analysis.*``.
        sets: the run's target, cameras and selection.
        route: the search's trials (None: no trial stored its centroid).
        generator / embedder: the run's components (the batches are rendered again from
            the trials' scene seed: the same images the trials scored).
        detector: ``(model, weights, imgsz, device, batch_size)`` of the base detector for the
            predicted loss (None, or ``analysis.loss.enabled=false``: no detector run).
        cache_dir: the cache root (target embeddings, the kept projection).
        out: the report folder.
        header: extra lines for the report's header.
    """
    clock = time.perf_counter()
    origins = _origins(sets, generator, embedder, cache_dir, cfg.max_images)
    if detector is not None and cfg.loss.enabled:
        model, weights, imgsz, device, batch_size = detector
        origins = _with_detections(
            origins, model, weights, imgsz, device, cfg.loss.conf, batch_size
        )
    plane = projection_path(cfg, cache_dir, embedder.fingerprint, sets.target_fingerprint)
    settings = to_settings(
        cfg.shift,
        cfg.clusters,
        cfg.loss,
        projection_file=plane if plane.is_file() else None,
    )
    analysis = analyze_sets(origins, "target", settings)
    if not plane.is_file() and analysis.pca is not None:
        analysis.pca.save(plane)  # the plane later runs on this target are drawn in
        log.info("analysis: the PCA plane of this target and embedder is kept in %s", plane)
    report = write_report(
        analysis,
        origins,
        out,
        dict(header),
        route=route,
        title="gen_loop run: the population before and after the search",
    )
    metrics = analysis.metrics()
    if route is not None and analysis.pca is not None:
        placed = route_data(analysis, route)
        for key in ("start_percentile", "best_percentile"):
            if key in placed:
                metrics[f"route.{key}"] = placed[key]
    return AnalysisInfo(
        report=str(report),
        lines=[headline(s, settings.alpha) for s in analysis.shifts],
        metrics=metrics,
        seconds=time.perf_counter() - clock,
    )


def analyse_selection(
    cfg: RunConfig,
    summary: RunSummary,
    study: optuna.Study,
    selected: Batch,
    target: TargetData,
    base_params: Mapping[str, ParamValue],
    generator: Generator,
    embedder: Embedder,
    weights: Path | None,
    cache_dir: Path,
    run_dir: Path,
) -> AnalysisInfo:
    """The run's population analysis (``analysis.*``, :func:`analyse_run`) of its target,
    source and best cameras and ``selected``, written to ``run_dir/report``. A failure is
    logged and recorded (``AnalysisInfo.error``), never the end of a run whose search and
    selection are done."""
    images = target.images
    sets = RunSets(
        target_images=images.images,
        target_fingerprint=images.fingerprint,
        target_description=target.description,
        source_params=base_params,
        best_params=summary.all_params,
        scene_seed=cfg.search.scene_seed,
        batch_size=cfg.search.batch_size,
        selected=selected,
    )
    e = cfg.embedder
    detector = None if weights is None else (e.model, weights, e.imgsz, e.device, e.batch_size)
    try:
        return analyse_run(
            cfg.analysis,
            sets,
            search_route(study),
            generator=generator,
            embedder=embedder,
            detector=detector,
            cache_dir=cache_dir,
            out=run_dir / "report",
            header={
                "embedder": f"{e.model}, weights {weights or 'random'}, layers "
                f"{list(e.layers)}, {e.imgsz} px",
                "run folder": str(run_dir),
                "search": f"{summary.n_trials} trials, {summary.stop_reason}",
            },
        )
    except Exception as err:  # the analysis explains the run; it must not lose it
        reason = f"{type(err).__name__}: {err}"
        log.warning("the run's analysis failed (analysis.enabled=false skips it): %s", reason)
        return AnalysisInfo(report="", lines=[], metrics={}, seconds=0.0, error=reason)
