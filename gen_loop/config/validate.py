"""Check a resolved config before any work, with errors that name the config key."""

from __future__ import annotations

import dataclasses
import re
from enum import Enum
from pathlib import Path

from gen_loop.config.schema import (
    CentroidMetric,
    CentroidScoreConfig,
    EmbedderConfig,
    FinetuneControl,
    FrechetScoreConfig,
    Kernel,
    MMDScoreConfig,
    OnnxEmbedderConfig,
    PRDCScoreConfig,
    RefineMethod,
    RestartConfig,
    RunConfig,
    Sampler,
    SceneSeeds,
    ScoreConfig,
    SelectionMethod,
)
from gen_loop.errors import ConfigError

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def check_device(key: str, device: str) -> None:
    """``device`` is auto, cpu, cuda or cuda:N, and CUDA exists when it is asked for."""
    if not _DEVICE.match(device):
        raise ConfigError(key, f"{device!r}: use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(key, f"{device!r} asked for, but CUDA is not available here")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(key, f"{device!r}: only {torch.cuda.device_count()} GPU(s)")


def check_embedder(cfg: EmbedderConfig) -> None:
    """The embedder's settings, and a weights path that exists."""
    check_device("embedder.device", cfg.device)
    _positive("embedder.imgsz", cfg.imgsz)
    _positive("embedder.batch_size", cfg.batch_size)
    if cfg.imgsz % 32:
        raise ConfigError("embedder.imgsz", f"{cfg.imgsz} must be a multiple of 32 (stride)")
    if isinstance(cfg, OnnxEmbedderConfig):
        _check_onnx_embedder(cfg)
    elif not cfg.layers:
        raise ConfigError("embedder.layers", "name at least one layer index")
    elif cfg.weights not in ("base", "random") and not Path(cfg.weights).is_file():
        raise ConfigError(
            "embedder.weights", f"{cfg.weights} is not a file (use base, random or a .pt path)"
        )


def _check_onnx_embedder(cfg: OnnxEmbedderConfig) -> None:
    """``embedder=onnx``: its packages installed, a model file, no torch weights."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            "embedder",
            f"embedder=onnx needs {' and '.join(missing)}: pip install 'gen_loop[onnx]' "
            "(or: pip install onnx onnxruntime)",
        )
    if not cfg.model:
        raise ConfigError("embedder.model", "embedder=onnx needs embedder.model=PATH.onnx")
    if not Path(cfg.model).is_file():
        raise ConfigError("embedder.model", f"{cfg.model} is not a file (give the .onnx path)")
    if not cfg.layers:
        raise ConfigError(
            "embedder.layers",
            "name at least one tensor of the graph, embedder.layers=[NAME,...]; list them "
            f"with `python -m gen_loop onnx-tensors {cfg.model}`",
        )
    if cfg.weights != "none":
        raise ConfigError(
            "embedder.weights",
            f"{cfg.weights}: embedder=onnx reads its weights from embedder.model; the torch "
            "checkpoint to fine-tune is finetune.weights=PATH.pt",
        )


def check_run_config(cfg: RunConfig) -> None:
    """Everything of ``run`` that can be checked without loading data or models."""
    check_embedder(cfg.embedder)
    s = cfg.search
    _positive("search.n_trials", s.n_trials)
    if s.batch_size < 2:
        raise ConfigError("search.batch_size", f"{s.batch_size}: needs at least 2 images")
    _choice("search.sampler", s.sampler, Sampler)
    if s.n_startup_trials < 0:
        raise ConfigError("search.n_startup_trials", "must be >= 0")
    _choice("search.scene_seeds", s.scene_seeds, SceneSeeds)
    _positive("search.floor_factor", s.floor_factor)
    _positive("search.patience", s.patience)
    _positive("search.max_consecutive_failures", s.max_consecutive_failures)
    if s.advice_rounds < 0:
        raise ConfigError(
            "search.advice_rounds", f"{s.advice_rounds} must be >= 0 (0: advise only)"
        )
    if s.timeout_s is not None:
        _positive("search.timeout_s", s.timeout_s)
    _check_score(cfg.score)
    _check_refine(cfg)
    sel = cfg.selection
    _choice("selection.method", sel.method, SelectionMethod)
    _positive("selection.pool_size", sel.pool_size)
    _positive("selection.top_k", sel.top_k)
    _positive("selection.pool_trials", sel.pool_trials)
    _positive("selection.n_cameras", sel.n_cameras)
    if sel.n_cameras > sel.pool_size:
        raise ConfigError(
            "selection.n_cameras",
            f"{sel.n_cameras} cameras for {sel.pool_size} scenes (selection.pool_size): at most "
            "one camera a scene",
        )
    if not 0.0 <= sel.jitter <= 0.5:
        raise ConfigError("selection.jitter", f"{sel.jitter} must be in [0, 0.5] (of a range)")
    if not 0.0 < sel.quantile <= 1.0:
        raise ConfigError("selection.quantile", f"{sel.quantile} must be in (0, 1]")
    ft = cfg.finetune
    check_device("finetune.device", ft.device)
    _choice("finetune.control", ft.control, FinetuneControl)
    _positive("finetune.epochs", ft.epochs)
    _positive("finetune.batch", ft.batch)
    if not 0.0 <= ft.replay_fraction <= 0.9:
        raise ConfigError("finetune.replay_fraction", f"{ft.replay_fraction} must be in [0, 0.9]")
    if ft.weights is not None and not Path(ft.weights).is_file():
        raise ConfigError("finetune.weights", f"{ft.weights} is not a file (a .pt checkpoint)")
    if ft.replay_data is not None and not Path(ft.replay_data).is_file():
        raise ConfigError("finetune.replay_data", f"{ft.replay_data} is not a YOLO data.yaml")
    if not 0.0 <= ft.val_fraction < 1.0:
        raise ConfigError("finetune.val_fraction", f"{ft.val_fraction} must be in [0, 1)")
    if not -1.0 < ft.min_gain < 1.0:
        raise ConfigError("finetune.min_gain", f"{ft.min_gain} must be in (-1, 1) (mAP units)")
    _check_analysis(cfg)
    t = cfg.target
    if t.path is not None:
        _check_target_path(Path(t.path))
    if t.labels is not None and not Path(t.labels).is_file():
        raise ConfigError("target.labels", f"{t.labels} is not a YOLO data.yaml file")
    if t.max_images is not None and t.max_images < 4:
        raise ConfigError("target.max_images", f"{t.max_images}: the noise floor needs >= 4")
    _positive("target.video_stride", t.video_stride)
    if t.video_max_frames is not None:
        _positive("target.video_max_frames", t.video_max_frames)
    _positive("target.demo.n", t.demo.n)
    if t.path is None and t.demo.n < 4:
        raise ConfigError("target.demo.n", "the demo target needs at least 4 images")


def _check_analysis(cfg: RunConfig) -> None:
    from gen_loop.analysis.settings import check_settings

    an = cfg.analysis
    if not an.enabled:
        return
    check_settings(an.shift, an.clusters, an.loss, prefix="analysis.")
    if an.max_images < 4:
        raise ConfigError("analysis.max_images", f"{an.max_images}: the tests need >= 4 a set")
    if an.projection_file is not None and not Path(an.projection_file).is_file():
        raise ConfigError(
            "analysis.projection_file",
            f"{an.projection_file} is not a file (a projection.npz of an earlier report)",
        )


def _check_score(sc: ScoreConfig) -> None:
    """``score``: the settings of its option, and a ``metric`` the option allows."""
    _positive("score.noise_floor_splits", sc.noise_floor_splits)
    if isinstance(sc, CentroidScoreConfig):
        _choice("score.metric", sc.metric, CentroidMetric)
    else:  # fixed by the option: the option is the choice
        fixed = next(f.default for f in dataclasses.fields(sc) if f.name == "metric")
        if sc.metric != fixed:
            raise ConfigError(
                "score.metric",
                f"{sc.metric!r}: this score option always scores {fixed!r}; pick the distance "
                f"with score=OPTION (the centroid metrics: score=centroid score.metric="
                f"{'|'.join(CentroidMetric)})",
            )
    shrinkage = sc.shrinkage if isinstance(sc, FrechetScoreConfig) else None
    if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
        raise ConfigError("score.shrinkage", f"{shrinkage} must be in [0, 1] or null")
    if isinstance(sc, MMDScoreConfig):
        _choice("score.kernel", sc.kernel, Kernel)
        if sc.bandwidth is not None:
            _positive("score.bandwidth", sc.bandwidth)
    if isinstance(sc, PRDCScoreConfig):
        _positive("score.k_neighbours", sc.k_neighbours)


def _check_refine(cfg: RunConfig) -> None:
    """``search.refine``: a known method, a switch point and step that make sense, a scorer
    with a residual vector for least squares."""
    r = cfg.search.refine
    _choice("search.refine.method", r.method, RefineMethod)
    if r.method == RefineMethod.none:
        return
    # after >= search.n_trials is allowed: the refinement then never starts (a short run).
    if r.after < 1:
        raise ConfigError("search.refine.after", f"{r.after} must be >= 1 (finished trials)")
    if not 0.0 < r.diff_step <= 0.5:
        raise ConfigError("search.refine.diff_step", f"{r.diff_step} must be in (0, 0.5]")
    _check_restart(r.restart)
    if r.method in (RefineMethod.lsq, RefineMethod.gn):
        # Asked of the scorer itself (imported here: numpy/scipy, only for lsq and gn).
        from gen_loop.config.build import instantiate_scorer

        scorer = instantiate_scorer(cfg.score)
        if not scorer.has_residual:
            raise ConfigError(
                "search.refine.method",
                f"{str(r.method.value)!r} needs a scorer with a residual vector (such as "
                f"score=centroid score.metric=zscore_l2), not {scorer!r} "
                f"(score.metric={cfg.score.metric}); "
                "use search.refine.method=auto or none",
            )


def _check_restart(r: RestartConfig) -> None:
    """``search.refine.restart``: a threshold of 0 (off) or above 1 x the floor, and counts and
    a radius that make sense."""
    key = "search.refine.restart"
    if r.above != 0 and r.above <= 1.0:
        raise ConfigError(f"{key}.above", f"{r.above} must be 0 (never) or > 1 (x the floor)")
    for name in ("stall", "samples", "window"):
        if getattr(r, name) < 1:
            raise ConfigError(f"{key}.{name}", f"{getattr(r, name)} must be >= 1 (trials)")
    if not 0.0 < r.radius <= 1.0:
        raise ConfigError(f"{key}.radius", f"{r.radius} must be in (0, 1] (unit cube)")


def _check_target_path(path: Path) -> None:
    """A folder (its contents are checked when loaded), or a file with a video suffix."""
    # Imported here: the target package pulls in OpenCV, which validation does not otherwise need.
    from gen_loop._imageio import IMAGE_EXTENSIONS
    from gen_loop.target.video import is_video

    if path.is_dir() or (path.is_file() and is_video(path)):
        return
    if not path.exists():
        problem = "does not exist"
    elif path.suffix.lower() in IMAGE_EXTENSIONS:
        problem = "is one image file; give the folder that holds the target's images"
    else:
        problem = "is a file but neither a folder nor a video"
    raise ConfigError(
        "target.path", f"{path} {problem} (a folder of images/videos, or one video file)"
    )


def _positive(key: str, value: float) -> None:
    if value is None or value <= 0:
        raise ConfigError(key, f"{value} must be > 0")


def _choice(key: str, value: str, choices: type[Enum]) -> None:
    """``value`` is one of the ``choices`` enum's values (composition already checks this for
    a composed config; a config built in Python is checked here)."""
    allowed = [str(m.value) for m in choices]
    if value not in allowed:
        raise ConfigError(key, f"{value!r}: use one of {allowed}")
