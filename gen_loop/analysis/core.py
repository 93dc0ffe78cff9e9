"""``analyze_sets``: the whole analysis on already loaded and embedded sets (no I/O, no model).

The ``analyze`` command loads, embeds and detects, then calls this; ``run`` can call it with the
target and generated batches it already holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from gen_loop.analysis.clusters import ClusterResult, cluster_embeddings
from gen_loop.analysis.detections import confidence_features
from gen_loop.analysis.explain import PropertyEffect, Suggestion, property_effects, suggestions
from gen_loop.analysis.metadata import image_properties
from gen_loop.analysis.origins import Origin
from gen_loop.analysis.predicted_loss import predict_loss
from gen_loop.analysis.projection import PcaProjection, project
from gen_loop.analysis.shift import ShiftResult, two_sample_shift
from gen_loop.errors import ConfigError, InputDataError
from gen_loop.score import CentroidScorer, Metric

__all__ = ["Analysis", "AnalysisSettings", "LossEvaluation", "analyze_sets"]


@dataclass(frozen=True)
class AnalysisSettings:
    """Settings of :func:`analyze_sets` (see ``conf/analyze.yaml`` for what each does)."""

    alpha: float = 0.05
    n_permutations: int = 200
    cv_folds: int = 5
    max_dim: int = 32
    metric: Metric = "zscore_l2"
    noise_floor_splits: int = 20
    k: int | None = None
    k_max: int = 8
    dominance: float = 0.6
    max_coverage_ratio: float = 0.25
    projection: str = "pca"
    projection_file: Path | None = None
    loss_estimator: str = "confidence"
    knn_k: int = 10
    loss_train: tuple[str, ...] | None = None
    gallery_size: int = 12
    seed: int = 0


@dataclass(frozen=True)
class LossEvaluation:
    """How well the predicted loss ranks the real loss of one labeled origin.

    Attributes:
        origin: the origin.
        n: images with both numbers.
        spearman_rho: Spearman correlation of predicted and real loss.
        spearman_p: its p-value.
        mean_real: mean real loss.
        mean_predicted: mean predicted loss.
        out_of_fold: True when the origin was in the training pool (predictions out-of-fold).
    """

    origin: str
    n: int
    spearman_rho: float
    spearman_p: float
    mean_real: float
    mean_predicted: float
    out_of_fold: bool


@dataclass
class Analysis:
    """Everything the report shows. Per-image arrays follow the pooled order (origins in
    order, images in order); ``origin_of[i]`` and ``index_in_origin[i]`` locate image ``i``."""

    reference: str
    names: list[str]
    origin_of: np.ndarray
    index_in_origin: np.ndarray
    distances: np.ndarray
    shifts: list[ShiftResult]
    properties: dict[str, dict[str, np.ndarray]]
    effects: dict[str, list[PropertyEffect]]
    suggestions: dict[str, list[Suggestion]]
    clusters: ClusterResult | None
    coords: np.ndarray
    pca: PcaProjection | None
    confidence: np.ndarray | None
    predicted_loss: np.ndarray | None
    real_loss: np.ndarray | None
    loss_train: list[str]
    loss_eval: list[LossEvaluation]
    error_gallery: list[int]
    settings: AnalysisSettings
    notes: list[str] = field(default_factory=list)

    def indices(self, name: str) -> np.ndarray:
        """Pooled indices of one origin's images."""
        return np.flatnonzero(self.origin_of == name)

    def shift_of(self, name: str) -> ShiftResult | None:
        """The shift result of an origin (None for the reference)."""
        return next((s for s in self.shifts if s.origin == name), None)

    def metrics(self) -> dict[str, float]:
        """Headline numbers per origin, flat, for MLflow."""
        out: dict[str, float] = {}
        for s in self.shifts:
            for key in ("auc", "auc_p", "mmd2", "mmd_p", "floor_ratio", "centroid_distance"):
                value = getattr(s, key)
                if value is not None and math.isfinite(value):
                    out[f"{s.origin}.{key}"] = float(value)
            out[f"{s.origin}.shifted"] = float(s.shifted)
        for ev in self.loss_eval:
            out[f"{ev.origin}.loss_spearman_rho"] = ev.spearman_rho
        if self.predicted_loss is not None:
            for name in self.names:
                out[f"{name}.predicted_loss_mean"] = float(
                    np.mean(self.predicted_loss[self.indices(name)])
                )
        return out


def _check(origins: Sequence[Origin], reference: str) -> None:
    names = [o.name for o in origins]
    if len(set(names)) != len(names):
        raise ConfigError("sets", f"set names must be unique, got {names}")
    if reference not in names:
        raise ConfigError("reference", f"{reference!r} is not one of the sets {names}")
    if len(origins) < 2:
        raise ConfigError("sets", "the analysis needs the reference and at least one other set")
    dims = {o.embeddings.shape[1] for o in origins if o.embeddings is not None}
    if any(o.embeddings is None or len(o.embeddings) != len(o) for o in origins):
        raise ValueError("every origin needs one embedding per image")
    if len(dims) != 1:
        raise ValueError(f"the origins' embeddings have different dimensions {sorted(dims)}")


def analyze_sets(
    origins: Sequence[Origin], reference: str, settings: AnalysisSettings | None = None
) -> Analysis:
    """Shift, clusters, explaining properties and predicted loss of each origin vs a reference.

    Args:
        origins: the sets with ``embeddings`` filled in; ``detections`` (and ``losses`` for
            labeled sets) are used when present.
        reference: the name of the reference origin (usually the target).
        settings: analysis settings; defaults when None.

    Returns:
        The :class:`Analysis`.

    Raises:
        ConfigError: Duplicate names, an unknown reference or fewer than two sets.
        InputDataError: The reference has fewer than 2 images.
    """
    cfg = settings or AnalysisSettings()
    _check(origins, reference)
    ref = next(o for o in origins if o.name == reference)
    if len(ref) < 2:
        raise InputDataError(
            f"the reference set {reference!r} has {len(ref)} image; it needs at least 2"
        )
    names = [o.name for o in origins]
    emb = np.vstack([np.asarray(o.embeddings, dtype=np.float64) for o in origins])
    origin_of = np.concatenate([[o.name] * len(o) for o in origins])
    index_in = np.concatenate([np.arange(len(o)) for o in origins])
    ref_emb = np.asarray(ref.embeddings, dtype=np.float64)
    distances = CentroidScorer(cfg.metric).fit(ref_emb).sample_distances(emb)
    ref_idx = np.flatnonzero(origin_of == reference)
    notes: list[str] = []
    shifts = []
    for i, o in enumerate(origins):
        if o.name == reference:
            continue
        shifts.append(
            two_sample_shift(
                np.asarray(o.embeddings),
                ref_emb,
                (o.name, reference),
                cfg.alpha,
                cfg.n_permutations,
                cfg.cv_folds,
                cfg.max_dim,
                cfg.metric,
                cfg.noise_floor_splits,
                cfg.seed + i,
            )
        )
    props = {o.name: image_properties(o.images) for o in origins}
    effects: dict[str, list[PropertyEffect]] = {}
    hints: dict[str, list[Suggestion]] = {}
    for o in origins:
        if o.name == reference:
            continue
        effects[o.name] = property_effects(
            props[o.name],
            props[reference],
            distances[origin_of == o.name],
            distances[ref_idx],
            (o.name, reference),
        )
        hints[o.name] = suggestions(effects[o.name], cfg.alpha)
    clusters = None
    if len(emb) >= 3:
        clusters = cluster_embeddings(
            emb,
            origin_of,
            reference,
            cfg.k,
            cfg.k_max,
            cfg.max_dim,
            cfg.dominance,
            cfg.max_coverage_ratio,
            cfg.alpha,
            cfg.seed,
        )
    else:
        notes.append("too few images to cluster (need 3)")
    coords, pca = project(emb, cfg.projection, cfg.seed, cfg.projection_file)
    conf, predicted, real, train_names, evals = _loss(origins, reference, clusters, cfg, notes)
    gallery = _error_gallery(ref_idx, predicted, conf, cfg.gallery_size)
    return Analysis(
        reference=reference,
        names=names,
        origin_of=origin_of,
        index_in_origin=index_in,
        distances=distances,
        shifts=shifts,
        properties=props,
        effects=effects,
        suggestions=hints,
        clusters=clusters,
        coords=coords,
        pca=pca,
        confidence=conf,
        predicted_loss=predicted,
        real_loss=real,
        loss_train=train_names,
        loss_eval=evals,
        error_gallery=gallery,
        settings=cfg,
        notes=notes,
    )


def _loss(
    origins: Sequence[Origin],
    reference: str,
    clusters: ClusterResult | None,
    cfg: AnalysisSettings,
    notes: list[str],
) -> tuple[Any, Any, Any, list[str], list[LossEvaluation]]:
    """Confidence statistics, predicted and real loss of every image, and their agreement."""
    if any(o.detections is None for o in origins):
        notes.append("no detector output for every set: predicted loss not computed")
        return None, None, None, [], []
    conf = np.vstack([confidence_features(o.detections or ()) for o in origins])
    real = np.concatenate(
        [o.losses if o.losses is not None else np.full(len(o), np.nan) for o in origins]
    )
    if cfg.loss_train is not None:
        unknown = sorted(set(cfg.loss_train) - {o.name for o in origins})
        if unknown:
            raise ConfigError("loss.train", f"unknown set(s) {unknown}")
        train_names = [n for n in cfg.loss_train if n != reference]
    else:
        train_names = [o.name for o in origins if o.losses is not None and o.name != reference]
    origin_of = np.concatenate([[o.name] * len(o) for o in origins])
    train = np.isin(origin_of, train_names) & np.isfinite(real)
    if train.sum() < 2:
        notes.append(
            "no labeled set besides the reference (need a YOLO folder or a generated set): "
            "predicted loss not computed"
        )
        return conf, None, real, [], []
    if clusters is not None:
        feats = clusters.features
    else:
        feats = np.vstack([np.asarray(o.embeddings) for o in origins])
    query_pred, train_pred = predict_loss(
        cfg.loss_estimator,
        feats[train],
        conf[train],
        real[train],
        feats[~train],
        conf[~train],
        cfg.knn_k,
        cfg.seed,
    )
    predicted = np.empty(len(real))
    predicted[train] = train_pred
    predicted[~train] = query_pred
    evals = []
    for o in origins:
        idx = np.flatnonzero((origin_of == o.name) & np.isfinite(real))
        if len(idx) < 3 or np.ptp(real[idx]) == 0 or np.ptp(predicted[idx]) == 0:
            continue
        corr = spearmanr(predicted[idx], real[idx])
        evals.append(
            LossEvaluation(
                origin=o.name,
                n=len(idx),
                spearman_rho=float(corr.statistic),
                spearman_p=float(corr.pvalue),
                mean_real=float(real[idx].mean()),
                mean_predicted=float(predicted[idx].mean()),
                out_of_fold=o.name in train_names,
            )
        )
    return conf, predicted, real, train_names, evals


def _error_gallery(
    ref_idx: np.ndarray, predicted: np.ndarray | None, conf: np.ndarray | None, n: int
) -> list[int]:
    """Reference images by highest predicted loss (else lowest top confidence) first."""
    if predicted is not None:
        order = np.argsort(-predicted[ref_idx], kind="stable")
    elif conf is not None:
        order = np.argsort(conf[ref_idx, 2], kind="stable")
    else:
        return []
    return [int(i) for i in ref_idx[order[:n]]]
