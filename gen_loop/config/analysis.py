"""Settings of the population analysis, shared by ``analyze`` and by ``run``'s own analysis.

``analyze`` has them at the top level (``shift.*``, ``clusters.*``, ``loss.*``); ``run`` under
``analysis.*`` (:class:`RunAnalysisConfig`), so a key means the same in both.
Kept free of ``from __future__ import annotations`` and of ``X | None`` (see ``schema.py``).
"""

# ruff: noqa: UP045
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class AnalyzeShiftConfig:
    """Shift tests of ``analyze`` (see ``gen_loop.analysis.shift``)."""

    alpha: float = 0.05
    n_permutations: int = 200
    cv_folds: int = 5
    max_dim: int = 32
    metric: str = "zscore_l2"
    noise_floor_splits: int = 20


@dataclass
class AnalyzeClusterConfig:
    """k-means clusters of ``analyze`` (see ``gen_loop.analysis.clusters``)."""

    k: Optional[int] = None  # None: chosen by silhouette in 2..k_max
    k_max: int = 8
    dominance: float = 0.6
    max_coverage_ratio: float = 0.25


@dataclass
class AnalyzeLossConfig:
    """Predicted loss of ``analyze`` (see ``gen_loop.analysis.predicted_loss``)."""

    enabled: bool = True
    estimator: str = "confidence"  # confidence | knn | ensemble
    knn_k: int = 10
    train: Optional[list[str]] = None  # None: every labeled set except the reference
    conf: float = 0.05


@dataclass
class RunAnalysisConfig:
    """``analysis.*`` of ``run``: the population analysis of {target, source camera, best
    camera, selected samples} and the search's route, written to ``<run_dir>/report/``."""

    enabled: bool = True
    max_images: int = 400  # per set, drawn evenly (the target can be large); >= 4
    # The PCA plane of the plots. None: the one kept in the cache per target and embedder
    # (fitted by the first run on them), so later runs' plots are in the same plane.
    projection_file: Optional[str] = None
    # 100 permutations (p >= 1/101, well below alpha/2): half of analyze's cost, for the
    # default run's time budget (experiments/default_run/RESULTS.md)
    shift: AnalyzeShiftConfig = field(
        default_factory=lambda: AnalyzeShiftConfig(n_permutations=100)
    )
    clusters: AnalyzeClusterConfig = field(default_factory=AnalyzeClusterConfig)
    loss: AnalyzeLossConfig = field(default_factory=AnalyzeLossConfig)
