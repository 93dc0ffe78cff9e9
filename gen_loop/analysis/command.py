"""The ``analyze`` command: load the named sets, embed and detect, analyse, report, log."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop.analysis.core import Analysis, AnalysisSettings, analyze_sets
from gen_loop.analysis.origins import Origin, check_set_name, load_origin, origin_from_batch
from gen_loop.analysis.projection import METHODS
from gen_loop.analysis.report import write_report
from gen_loop.analysis.settings import check_settings, require, to_settings
from gen_loop.config.commands import AnalyzeConfig
from gen_loop.errors import InputDataError
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue

__all__ = ["DEFAULT_SETS", "analyze", "check_analyze_config"]

log = logging.getLogger(__name__)

#: The sets when ``sets`` is left empty: the demo camera vs the simulator's current settings.
DEFAULT_SETS = {"source": "generated", "target": "demo"}


def check_analyze_config(cfg: AnalyzeConfig) -> dict[str, str]:
    """Validate the settings before any work; return the sets to analyse.

    Raises:
        ConfigError: naming the first invalid key.
    """
    sets = {check_set_name(str(k)): str(v) for k, v in cfg.sets.items()} or dict(DEFAULT_SETS)
    require(cfg.reference in sets, "reference", f"{cfg.reference!r} is not a set: {list(sets)}")
    require(len(sets) >= 2, "sets", "give at least two sets, e.g. sets.source=A sets.target=B")
    lo = cfg.loss
    check_settings(cfg.shift, cfg.clusters, lo)
    unknown = sorted(set(lo.train or ()) - set(sets))
    require(not unknown, "loss.train", f"unknown set(s) {unknown}; sets are {list(sets)}")
    require(cfg.projection in METHODS, "projection", f"{cfg.projection!r}: use {METHODS}")
    require(cfg.gallery_size >= 0, "gallery_size", f"{cfg.gallery_size} must be >= 0")
    require(cfg.generated.n >= 1, "generated.n", f"{cfg.generated.n} must be >= 1")
    mi = cfg.max_images
    require(mi is None or mi >= 1, "max_images", f"{mi} must be null or >= 1")
    require(cfg.video_stride >= 1, "video_stride", f"{cfg.video_stride} must be >= 1")
    vm = cfg.video_max_frames
    require(vm is None or vm >= 1, "video_max_frames", f"{vm} must be null or >= 1")
    return sets


def _load_set(
    name: str,
    value: str,
    cfg: AnalyzeConfig,
    generator: Generator,
    params: dict[str, ParamValue],
    cache_dir: Path,
) -> Origin:
    size = (int(getattr(generator, "width", 256)), int(getattr(generator, "height", 256)))
    if value == "generated":
        n = min(cfg.generated.n, cfg.max_images or cfg.generated.n)
        batch = generator.generate(params, n, cfg.generated.seed)
        changed = {k: v for k, v in params.items() if v != generator.parameters[k].default}
        what = f"generated: {n} images, seed {cfg.generated.seed}, params {changed or 'default'}"
        return origin_from_batch(name, batch, what)
    if value == "demo":
        from gen_loop.target.demo import demo_target

        demo = cfg.target.demo
        made = demo_target(generator, demo.params, demo.n, demo.seed, cache_dir)
        origin = load_origin(name, made.images_dir.parent, size, cfg.max_images)
        hidden = {k: v for k, v in demo.params.items()}
        return replace(origin, description=f"embedded demo client camera, hidden {hidden}")
    return load_origin(
        name, Path(value), size, cfg.max_images, cfg.video_stride, cfg.video_max_frames
    )


def _load_sets(
    sets: dict[str, str], cfg: AnalyzeConfig, cache_dir: Path
) -> tuple[list[Origin], list[dict[str, str]]]:
    """Load every set; a set that cannot be read is reported and left out (not the reference)."""
    from gen_loop.loop.components import build_generator

    generator, params = build_generator(cfg.generator)
    origins, failed = [], []
    for name, value in sets.items():
        try:
            origin = _load_set(name, value, cfg, generator, params, cache_dir)
        except InputDataError as err:
            if name == cfg.reference:
                raise InputDataError(f"the reference set {name!r}: {err}") from err
            log.warning("set %r left out: %s", name, err)
            failed.append({"name": name, "reason": str(err)})
            continue
        origins.append(origin)
    if len(origins) < 2:
        raise InputDataError(
            "fewer than two readable sets remain: "
            + "; ".join(f"{f['name']}: {f['reason']}" for f in failed)
        )
    return origins, failed


def _settings(cfg: AnalyzeConfig) -> AnalysisSettings:
    return to_settings(
        cfg.shift,
        cfg.clusters,
        cfg.loss,
        projection=cfg.projection,
        projection_file=Path(cfg.projection_file) if cfg.projection_file else None,
        gallery_size=cfg.gallery_size,
        seed=cfg.seed,
    )


def analyze(cfg: AnalyzeConfig) -> Path:
    """Run the analysis of ``cfg.sets`` against ``cfg.reference``; return ``report.html``."""
    from gen_loop.embedder.cache import cached_embeddings
    from gen_loop.loop.components import build_embedder, resolve_weights

    sets = check_analyze_config(cfg)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    configure_offline(cache_dir)
    out = Path(cfg.out_dir) / "report"
    clock = time.perf_counter()
    origins, failed = _load_sets(sets, cfg, cache_dir)
    configure_ultralytics()
    weights = resolve_weights(cfg.embedder, cache_dir)
    embedder = build_embedder(cfg.embedder, weights)
    origins = [
        replace(o, embeddings=cached_embeddings(embedder, o.images, o.fingerprint, cache_dir))
        for o in origins
    ]
    if cfg.loss.enabled:
        from gen_loop.analysis.detections import DetectorRunner

        runner = DetectorRunner(
            cfg.embedder.model,
            weights,
            cfg.embedder.imgsz,
            cfg.embedder.device,
            cfg.embedder.seed,
            conf=cfg.loss.conf,
            batch_size=cfg.embedder.batch_size,
        )
        detected = []
        for o in origins:
            dets, losses = runner.run(o.images, o.labels)
            detected.append(replace(o, detections=tuple(dets), losses=losses))
        origins = detected
    analysis = analyze_sets(origins, cfg.reference, _settings(cfg))
    header = {
        "embedder": f"{cfg.embedder.model}, weights {weights or 'random'}, "
        f"layers {list(cfg.embedder.layers)}, {cfg.embedder.imgsz} px",
        "image size": f"{cfg.generator.width}x{cfg.generator.height}",
    }
    report = write_report(analysis, origins, out, header, failed)
    seconds = time.perf_counter() - clock
    run_line = _log_mlflow(cfg, analysis, out, sets, weights) if cfg.mlflow else None
    _print_summary(analysis, origins, report, seconds, run_line)
    return report


def _log_mlflow(
    cfg: AnalyzeConfig,
    analysis: Analysis,
    out: Path,
    sets: dict[str, str],
    weights: Path | None,
) -> str:
    from gen_loop.tracking import Tracker

    uri = cfg.tracking.uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    with Tracker(
        uri,
        cfg.tracking.experiment,
        f"analyze-{Path(cfg.out_dir).name}",
        artifact_location=cfg.tracking.artifact_location,
    ) as tracker:
        params: dict[str, Any] = {
            "command": "analyze",
            "reference": cfg.reference,
            "sets": sets,
            "embedder": {
                "model": cfg.embedder.model,
                "weights": str(weights or "random"),
                "layers": list(cfg.embedder.layers),
                "imgsz": cfg.embedder.imgsz,
            },
            "settings": {k: str(v) for k, v in vars(analysis.settings).items()},
        }
        tracker.log_params(params)
        tracker.set_tags({"gen_loop.command": "analyze"})
        tracker.log_metrics(analysis.metrics())
        tracker.log_artifact(out, "report")
        return f"MLflow:  run {tracker.run_id} in {uri} (artifacts under report/)"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _print_summary(
    analysis: Analysis,
    origins: list[Origin],
    report: Path,
    seconds: float,
    run_line: str | None,
) -> None:
    sizes = {o.name: len(o) for o in origins}
    print(
        f"analysis of {len(origins)} sets against {analysis.reference!r} "
        f"({sizes[analysis.reference]} images) in {seconds:.0f} s"
    )
    for s in analysis.shifts:
        print(f"  {s.origin} ({s.n_origin} images): {s.verdict}")
        top = ", ".join(f"{e.name} (KS {e.ks:.2f})" for e in analysis.effects[s.origin][:5])
        print(f"    properties that differ most: {top}")
        for hint in analysis.suggestions[s.origin][:4]:
            print(f"    -> {hint.text}")
    if analysis.clusters is not None:
        cl = analysis.clusters
        print(f"  clusters: k={cl.k}; under-represented: {len(cl.flags)}")
        for flag in cl.flags:
            print(f"    ! {flag.text}")
    if analysis.predicted_loss is not None:
        means = ", ".join(
            f"{n} {_fmt(float(analysis.predicted_loss[analysis.indices(n)].mean()), 2)}"
            for n in analysis.names
        )
        print(f"  predicted loss ({analysis.settings.loss_estimator}), mean: {means}")
        for ev in analysis.loss_eval:
            kind = "out-of-fold" if ev.out_of_fold else "labels known"
            print(
                f"    {ev.origin} ({kind}): Spearman rho {_fmt(ev.spearman_rho)} "
                f"(p={ev.spearman_p:.2g}, n={ev.n}) with the real loss"
            )
    print(f"report: {report}")
    if run_line:
        print(run_line)
