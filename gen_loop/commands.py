"""The ``generate`` and ``train-base`` commands."""

from __future__ import annotations

import shutil
from pathlib import Path

from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
from gen_loop.config.commands import GenerateConfig, TrainBaseConfig
from gen_loop.config.validate import check_device
from gen_loop.errors import ConfigError
from gen_loop.generator.yolo_io import write_yolo_dataset
from gen_loop.loop.components import build_generator

# What `generate` writes into `out` (yolo_io.write_yolo_dataset); `overwrite=true` removes these.
_DATASET_ENTRIES = ("images", "labels", "data.yaml", "params.json")


def generate(cfg: GenerateConfig) -> Path:
    """Render ``cfg.n`` images with ``generator.params`` into the YOLO folder ``cfg.out``.

    ``out`` must be missing or empty, so a folder never mixes datasets of two cameras; with
    ``overwrite`` an earlier dataset there is replaced (only what ``generate`` writes: a
    folder holding anything else is refused). Everything is checked before ``out`` is made.
    """
    if cfg.n < 1:
        raise ConfigError("n", f"{cfg.n} must be >= 1")
    out = Path(cfg.out)
    _check_out(out, cfg.overwrite)
    configure_offline()
    generator, params = build_generator(cfg.generator)
    batch = generator.generate(params, cfg.n, cfg.seed)
    if cfg.overwrite:
        for name in _DATASET_ENTRIES:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    data_yaml = write_yolo_dataset(batch, out)
    n_boxes = sum(len(lab) for lab in batch.labels)
    print(f"wrote {cfg.n} images with {n_boxes} boxes to {Path(cfg.out).resolve()}")
    print(f"dataset: {data_yaml}")
    return data_yaml


def _check_out(out: Path, overwrite: bool) -> None:
    """``out`` is a new or empty folder, or (with ``overwrite``) holds only a dataset."""
    if out.exists() and not out.is_dir():
        raise ConfigError("out", f"{out} is a file, not a folder; give a new folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        return
    if not overwrite:
        raise ConfigError(
            "out",
            f"{out} is not empty ({len(entries)} entries: {', '.join(entries[:4])}"
            f"{', ...' if len(entries) > 4 else ''}); give a new folder, or overwrite=true to "
            "replace the dataset in it",
        )
    foreign = [name for name in entries if name not in _DATASET_ENTRIES]
    if foreign:
        raise ConfigError(
            "out",
            f"{out} holds files `generate` did not write ({', '.join(foreign[:4])}); "
            "overwrite=true replaces only a dataset: give a new folder",
        )


def train_base_command(cfg: TrainBaseConfig) -> Path:
    """Train the base detector; with ``install`` copy it where ``embedder.weights=base`` looks."""
    from gen_loop.embedder.weights import BASE_WEIGHTS_NAME, shipped_base_weights
    from gen_loop.embedder.yolo import resolve_device
    from gen_loop.finetune.base import train_base

    check_device("device", cfg.device)
    if cfg.install not in ("none", "cache", "package"):
        raise ConfigError("install", f"{cfg.install!r}: use none, cache or package")
    if cfg.data is not None and not Path(cfg.data).is_file():
        raise ConfigError("data", f"{cfg.data} is not a YOLO data.yaml file")
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    configure_offline(cache_dir)
    configure_ultralytics()
    generator, _ = build_generator(cfg.generator)
    device = resolve_device(cfg.device)
    best = train_base(
        generator,
        Path(cfg.out),
        cfg.n_train,
        cfg.n_val,
        cfg.seed,
        cfg.embedder.model,
        cfg.epochs,
        cfg.embedder.imgsz,
        cfg.batch,
        "cpu" if device.type == "cpu" else str(device.index or 0),
        Path(cfg.data) if cfg.data else None,
    )
    print(f"base detector: {best}")
    if cfg.install != "none":
        dest = (
            cache_dir / "base" / BASE_WEIGHTS_NAME
            if cfg.install == "cache"
            else shipped_base_weights()
        )
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best, dest)
        print(f"installed as the base model: {dest}")
    return best
