"""From config to :class:`~gen_loop.analysis.core.AnalysisSettings`, checked key by key.

``analyze`` keeps its settings at the top level (``shift.alpha``), ``run`` under ``analysis.``
(``analysis.shift.alpha``); both go through :func:`check_settings` and :func:`to_settings`.
"""

from __future__ import annotations

from pathlib import Path

from gen_loop.analysis.core import AnalysisSettings
from gen_loop.analysis.predicted_loss import ESTIMATORS
from gen_loop.config.analysis import AnalyzeClusterConfig, AnalyzeLossConfig, AnalyzeShiftConfig
from gen_loop.errors import ConfigError
from gen_loop.score import METRICS

__all__ = ["check_settings", "require", "to_settings"]


def require(ok: bool, key: str, message: str) -> None:
    """Raise a :class:`ConfigError` naming ``key`` unless ``ok``."""
    if not ok:
        raise ConfigError(key, message)


def check_settings(
    s: AnalyzeShiftConfig, c: AnalyzeClusterConfig, lo: AnalyzeLossConfig, prefix: str = ""
) -> None:
    """Check the shift, cluster and loss settings; ``prefix`` is where they sit
    (``analysis.`` in ``run``).

    Raises:
        ConfigError: naming the first invalid key.
    """
    p = prefix
    require(0 < s.alpha < 1, f"{p}shift.alpha", f"{s.alpha} must be in (0, 1)")
    require(s.n_permutations >= 1, f"{p}shift.n_permutations", f"{s.n_permutations} must be >= 1")
    require(s.cv_folds >= 2, f"{p}shift.cv_folds", f"{s.cv_folds} must be >= 2")
    require(s.max_dim >= 1, f"{p}shift.max_dim", f"{s.max_dim} must be >= 1")
    require(s.metric in METRICS, f"{p}shift.metric", f"{s.metric!r}: use one of {METRICS}")
    require(s.noise_floor_splits >= 1, f"{p}shift.noise_floor_splits", "must be >= 1")
    require(c.k is None or c.k >= 2, f"{p}clusters.k", f"{c.k} must be null or >= 2")
    require(c.k_max >= 2, f"{p}clusters.k_max", f"{c.k_max} must be >= 2")
    require(0.5 < c.dominance <= 1, f"{p}clusters.dominance", f"{c.dominance} must be in (0.5, 1]")
    require(0 < c.max_coverage_ratio <= 1, f"{p}clusters.max_coverage_ratio", "must be in (0, 1]")
    require(lo.estimator in ESTIMATORS, f"{p}loss.estimator", f"{lo.estimator!r}: {ESTIMATORS}")
    require(lo.knn_k >= 1, f"{p}loss.knn_k", f"{lo.knn_k} must be >= 1")
    require(0 <= lo.conf < 1, f"{p}loss.conf", f"{lo.conf} must be in [0, 1)")


def to_settings(
    s: AnalyzeShiftConfig,
    c: AnalyzeClusterConfig,
    lo: AnalyzeLossConfig,
    *,
    projection: str = "pca",
    projection_file: Path | None = None,
    gallery_size: int = 12,
    seed: int = 0,
) -> AnalysisSettings:
    """The :class:`AnalysisSettings` of checked configs."""
    return AnalysisSettings(
        alpha=s.alpha,
        n_permutations=s.n_permutations,
        cv_folds=s.cv_folds,
        max_dim=s.max_dim,
        metric=s.metric,  # type: ignore[arg-type]
        noise_floor_splits=s.noise_floor_splits,
        k=c.k,
        k_max=c.k_max,
        dominance=c.dominance,
        max_coverage_ratio=c.max_coverage_ratio,
        projection=projection,
        projection_file=projection_file,
        loss_estimator=lo.estimator,
        knn_k=lo.knn_k,
        loss_train=tuple(lo.train) if lo.train is not None else None,
        gallery_size=gallery_size,
        seed=seed,
    )
