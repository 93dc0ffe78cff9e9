"""Structured configs of the commands other than ``run``: generate, train-base, analyze.

Kept free of ``from __future__ import annotations`` and of ``X | None`` (see ``schema.py``).
"""

# ruff: noqa: UP045
from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from gen_loop.config.analysis import (
    AnalyzeClusterConfig,
    AnalyzeLossConfig,
    AnalyzeShiftConfig,
)
from gen_loop.config.schema import (
    EmbedderConfig,
    GeneratorConfig,
    TargetConfig,
    TrackingConfig,
)


@dataclass
class GenerateConfig:
    """``python -m gen_loop generate out=DIR n=N [overwrite=true] [generator.params.K=V ...]``."""

    generator: GeneratorConfig = MISSING
    out: str = MISSING  # a new or empty folder
    n: int = 16
    seed: int = 0
    overwrite: bool = False  # replace the dataset an earlier `generate` wrote in `out`


@dataclass
class TrainBaseConfig:
    """``python -m gen_loop train-base``: the base detector on source data."""

    generator: GeneratorConfig = MISSING
    embedder: EmbedderConfig = MISSING
    data: Optional[str] = None  # a labeled YOLO data.yaml; None = default-parameter images
    n_train: int = 400
    n_val: int = 80
    seed: int = 1000
    epochs: int = 40
    batch: int = 16
    device: str = "auto"
    out: str = MISSING
    install: str = "none"  # none | cache | package: where `embedder.weights=base` looks
    cache_dir: Optional[str] = None


@dataclass
class GeneratedSetConfig:
    """The ``generated`` set of ``analyze``: a batch rendered with ``generator.params``."""

    n: int = 64
    seed: int = 0


@dataclass
class AnalyzeConfig:
    """``python -m gen_loop analyze sets.NAME=PATH ... [reference=NAME]``."""

    generator: GeneratorConfig = MISSING
    embedder: EmbedderConfig = MISSING
    target: TargetConfig = MISSING  # `target.demo` describes the set value `demo`
    tracking: TrackingConfig = MISSING
    # name -> folder of images/videos | video | YOLO folder | data.yaml | run folder | `demo` |
    # `generated`; empty: the demo pair
    sets: dict[str, str] = field(default_factory=dict)
    reference: str = "target"
    max_images: Optional[int] = None
    # Videos in a set: sampled as `run` samples its target's (target.video_stride and
    # target.video_max_frames, same defaults).
    video_stride: int = 10
    video_max_frames: Optional[int] = 300
    generated: GeneratedSetConfig = field(default_factory=GeneratedSetConfig)
    shift: AnalyzeShiftConfig = field(default_factory=AnalyzeShiftConfig)
    clusters: AnalyzeClusterConfig = field(default_factory=AnalyzeClusterConfig)
    loss: AnalyzeLossConfig = field(default_factory=AnalyzeLossConfig)
    projection: str = "pca"  # pca | tsne | umap
    projection_file: Optional[str] = None  # a projection.npz of an earlier analysis
    gallery_size: int = 12
    seed: int = 0
    mlflow: bool = True
    out_dir: str = MISSING
    cache_dir: Optional[str] = None
