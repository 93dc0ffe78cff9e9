"""Write an :class:`~gen_loop.analysis.core.Analysis` as a report folder.

The folder is self-contained: ``report.html`` refers only to the PNG figures next to it and to
thumbnails under ``thumbs/``; ``analysis.json`` holds every number the page shows (and the
per-image table) for scripts; ``projection.npz`` is the fitted PCA, reusable by a later
analysis (``projection_file=...``) so that its plot is in the same plane.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gen_loop.analysis import figures
from gen_loop.analysis.clusters import representatives
from gen_loop.analysis.core import Analysis
from gen_loop.analysis.metadata import PROPERTIES
from gen_loop.analysis.origins import Origin
from gen_loop.analysis.report_html import render_html
from gen_loop.analysis.route import Route
from gen_loop.analysis.shift import headline
from gen_loop.tracking.plots import image_grid, save_png

__all__ = ["to_json_dict", "write_report"]

_THUMB = 160
_GALLERY_PER_CLUSTER = 8


def _clean(value: Any) -> Any:
    """JSON-safe: numpy to Python, NaN/inf to None, paths to str, dataclasses to dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _clean(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _thumb(image: np.ndarray, color: str | None = None) -> np.ndarray:
    h, w = image.shape[:2]
    scale = _THUMB / max(h, w)
    if scale < 1:
        image = cv2.resize(
            image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
    if color is not None:
        image = image.copy()
        rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
        image[:6] = rgb
    return image


def _galleries(
    analysis: Analysis, by_name: dict[str, Origin], out: Path, colors: dict[str, str]
) -> tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Save cluster and error thumbnails; return their captions."""
    thumbs = out / "thumbs"
    clusters: dict[int, list[dict[str, Any]]] = {}
    if analysis.clusters is not None:
        for c in range(analysis.clusters.k):
            items = []
            picks = representatives(analysis.clusters, c, _GALLERY_PER_CLUSTER, analysis.origin_of)
            for j, i in enumerate(picks):
                origin = str(analysis.origin_of[i])
                local = int(analysis.index_in_origin[i])
                img = _thumb(by_name[origin].images[local], colors[origin])
                file = f"thumbs/cluster{c}_{j}.png"
                save_png(img, out / file)
                items.append(
                    {"file": file, "origin": origin, "path": by_name[origin].paths[local]}
                )
            clusters[c] = items
    errors = []
    for j, i in enumerate(analysis.error_gallery):
        origin = str(analysis.origin_of[i])
        local = int(analysis.index_in_origin[i])
        o = by_name[origin]
        det = o.detections[local] if o.detections is not None else None
        img = _thumb(o.images[local])
        if det is not None:  # drawn after shrinking, so the lines stay visible
            img = image_grid([img], ncols=1, pad=0, boxes=[det.as_yolo()])
        file = f"thumbs/error_{j}.png"
        save_png(img, out / file)
        conf = analysis.confidence
        errors.append(
            {
                "file": file,
                "origin": origin,
                "path": o.paths[local],
                "predicted_loss": None
                if analysis.predicted_loss is None
                else float(analysis.predicted_loss[i]),
                "real_loss": None if analysis.real_loss is None else float(analysis.real_loss[i]),
                "max_conf": None if conf is None else float(conf[i, 2]),
                "n_detections": None if conf is None else int(conf[i, 0]),
            }
        )
    thumbs.mkdir(parents=True, exist_ok=True)
    return clusters, errors


def _axis_labels(analysis: Analysis) -> tuple[str, str]:
    if analysis.pca is not None:
        ex = analysis.pca.explained
        return (f"PC1 ({ex[0]:.0%})", f"PC2 ({ex[1]:.0%})")
    return (f"{analysis.settings.projection} 1", f"{analysis.settings.projection} 2")


def route_data(analysis: Analysis, route: Route) -> dict[str, Any]:
    """The route in the analysis' PCA plane, and where its first and best trials' centroids
    land in the reference's cloud: ``best_percentile`` is the share of reference images
    farther from the reference's centre (in the plane) than the best trial's centroid (1: at
    the centre, 0: outside the cloud); ``start_percentile`` the same for the first trial."""
    assert analysis.pca is not None
    xy = analysis.pca.transform(route.centroids)
    ref = analysis.coords[analysis.indices(analysis.reference)]
    centre = ref.mean(axis=0)
    spread = np.linalg.norm(ref - centre, axis=1)
    data: dict[str, Any] = {
        "numbers": [int(n) for n in route.numbers],
        "distances": [float(d) for d in route.distances],
        "xy": xy.tolist(),
        "best": route.best,
    }
    best = np.flatnonzero(route.numbers == route.best)
    for key, at in (("start", 0), ("best", int(best[0]) if len(best) else None)):
        if at is not None and len(xy):
            gap = float(np.linalg.norm(xy[at] - centre))
            data[f"{key}_percentile"] = float(np.mean(spread > gap))
    return data


def _figures(
    analysis: Analysis, out: Path, colors: dict[str, str], route: dict[str, Any] | None
) -> dict[str, str]:
    files: dict[str, str] = {}
    labels = _axis_labels(analysis)
    method = analysis.settings.projection.upper()
    img = figures.projection_figure(
        analysis.coords, analysis.origin_of, colors, f"population exploration ({method})", labels
    )
    files["projection"] = save_png(img, out / "projection.png").name
    if route is not None:
        img = figures.route_figure(
            analysis.coords,
            analysis.origin_of,
            colors,
            np.asarray(route["xy"], dtype=np.float64).reshape(-1, 2),
            np.asarray(route["numbers"]),
            route["best"],
            labels,
        )
        files["route"] = save_png(img, out / "route.png").name
    if analysis.predicted_loss is not None:
        img = figures.projection_figure(
            analysis.coords,
            analysis.origin_of,
            colors,
            "point size = predicted loss",
            labels,
            sizes=analysis.predicted_loss,
        )
        files["projection_loss"] = save_png(img, out / "projection_loss.png").name
        assert analysis.real_loss is not None
        img = figures.loss_figure(
            analysis.predicted_loss, analysis.real_loss, analysis.origin_of, colors
        )
        files["loss"] = save_png(img, out / "predicted_loss.png").name
    if analysis.clusters is not None:
        img = figures.cluster_mix_figure(analysis.clusters.counts, colors)
        files["clusters"] = save_png(img, out / "clusters.png").name
    ranked = _ranked_properties(analysis)
    labels_of = {p.name: p.label for p in PROPERTIES}
    top = [(name, labels_of.get(name, name)) for name in ranked[:8]]
    img = figures.property_figure(analysis.properties, top, colors)
    files["properties_top"] = save_png(img, out / "properties_top.png").name
    every = [(p.name, p.label) for p in PROPERTIES if p.name in ranked]
    img = figures.property_figure(analysis.properties, every, colors)
    files["properties_all"] = save_png(img, out / "properties_all.png").name
    return files


def _ranked_properties(analysis: Analysis) -> list[str]:
    """Properties ordered by their best rank over the origins."""
    best: dict[str, int] = {}
    for effects in analysis.effects.values():
        for e in effects:
            best[e.name] = min(best.get(e.name, e.rank), e.rank)
    return sorted(best, key=lambda name: best[name])


def to_json_dict(
    analysis: Analysis,
    origins: Sequence[Origin],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every number of the analysis as JSON-ready data."""
    cl = analysis.clusters
    images = []
    for i in range(len(analysis.origin_of)):
        origin = str(analysis.origin_of[i])
        local = int(analysis.index_in_origin[i])
        o = next(x for x in origins if x.name == origin)
        row: dict[str, Any] = {
            "origin": origin,
            "index": local,
            "path": o.paths[local],
            "x": analysis.coords[i, 0],
            "y": analysis.coords[i, 1],
            "cluster": None if cl is None else int(cl.labels[i]),
            "distance_to_reference": analysis.distances[i],
            "predicted_loss": None
            if analysis.predicted_loss is None
            else analysis.predicted_loss[i],
            "real_loss": None if analysis.real_loss is None else analysis.real_loss[i],
        }
        row.update({k: v[local] for k, v in analysis.properties[origin].items()})
        images.append(row)
    data = {
        "version": 1,
        "reference": analysis.reference,
        "settings": analysis.settings,
        "origins": [
            {
                "name": o.name,
                "n_images": len(o),
                "description": o.description,
                "labeled": o.labels is not None,
                "n_skipped": len(o.skipped),
                "skipped": [{"path": p, "reason": r} for p, r in o.skipped],
            }
            for o in origins
        ],
        "shift": analysis.shifts,
        "headline": [headline(r, analysis.settings.alpha) for r in analysis.shifts],
        "clusters": None
        if cl is None
        else {"k": cl.k, "silhouette": cl.silhouette, "counts": cl.counts, "flags": cl.flags},
        "properties": analysis.effects,
        "suggestions": analysis.suggestions,
        "predicted_loss": {
            "estimator": analysis.settings.loss_estimator,
            "train_sets": analysis.loss_train,
            "evaluation": analysis.loss_eval,
            "computed": analysis.predicted_loss is not None,
        },
        "projection": {
            "method": analysis.settings.projection,
            "explained": None if analysis.pca is None else analysis.pca.explained,
        },
        "notes": analysis.notes,
        "images": images,
    }
    data.update(extra or {})
    return _clean(data)


def write_report(
    analysis: Analysis,
    origins: Sequence[Origin],
    out: Path,
    header: dict[str, str] | None = None,
    failed: list[dict[str, str]] | None = None,
    route: Route | None = None,
    title: str = "Domain gap analysis",
) -> Path:
    """Write ``report.html``, its figures and thumbnails, ``analysis.json`` and
    ``projection.npz`` into ``out``.

    Args:
        analysis: the result of :func:`gen_loop.analysis.analyze_sets`.
        origins: the same origins (their images fill the galleries).
        out: the report folder (created).
        header: extra lines for the report's header (e.g. the embedder), name -> value.
        failed: sets that could not be read, each ``{"name", "reason"}``.
        route: the search's trials, drawn over the population plot (PCA projection only).
        title: the page's heading.

    Returns:
        The path of ``report.html``.
    """
    out.mkdir(parents=True, exist_ok=True)
    colors = figures.origin_colors(analysis.names, analysis.reference)
    by_name = {o.name: o for o in origins}
    routed = route_data(analysis, route) if route is not None and analysis.pca else None
    files = _figures(analysis, out, colors, routed)
    cluster_gallery, errors = _galleries(analysis, by_name, out, colors)
    if analysis.pca is not None:
        analysis.pca.save(out / "projection.npz")
    extra = {
        "figures": files,
        "cluster_galleries": cluster_gallery,
        "error_gallery": errors,
        "header": header or {},
        "failed_sets": failed or [],
        "route": routed,
        "title": title,
    }
    data = to_json_dict(analysis, origins, extra)
    (out / "analysis.json").write_text(json.dumps(data, indent=1))
    html = render_html(data, colors)
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
