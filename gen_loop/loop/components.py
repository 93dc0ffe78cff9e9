"""Build the loop's components from their configs (the only place that reads configs)."""

from __future__ import annotations

import logging
from pathlib import Path

from gen_loop.config.build import instantiate_component
from gen_loop.config.build import instantiate_scorer as build_scorer
from gen_loop.config.keys import nearest
from gen_loop.config.schema import (
    EmbedderConfig,
    FinetuneConfig,
    GeneratorConfig,
    OnnxEmbedderConfig,
    RunConfig,
)
from gen_loop.embedder.base import Embedder
from gen_loop.embedder.weights import BASE_WEIGHTS_NAME, shipped_base_weights
from gen_loop.errors import ConfigError, InputDataError
from gen_loop.finetune.finetuner import Finetuner
from gen_loop.generator.base import Generator
from gen_loop.generator.params import ParamValue

log = logging.getLogger(__name__)


def build_generator(cfg: GeneratorConfig) -> tuple[Generator, dict[str, ParamValue]]:
    """The generator and its current parameters (defaults overlaid with ``generator.params``).

    Every field of ``cfg`` except ``params`` is a constructor argument of ``_target_`` (a
    generator option's schema, e.g. ``FolderGeneratorConfig``, adds its own fields).
    """
    generator: Generator = instantiate_component(cfg, "generator", ("params",))
    params: dict[str, ParamValue] = {}
    for name, value in cfg.params.items():
        if name not in generator.parameters:
            match = nearest(name, generator.parameters)
            near = f"did you mean generator.params.{match}? " if match else ""
            raise ConfigError(
                f"generator.params.{name}",
                f"unknown parameter; {near}known: {sorted(generator.parameters)}",
            )
        try:
            params[name] = generator.parameters[name].validate(value)
        except ValueError as err:
            raise ConfigError(f"generator.params.{name}", str(err)) from err
    return generator, generator.resolve_params(params)


def resolve_weights(cfg: EmbedderConfig, cache_dir: Path) -> Path | None:
    """The checkpoint ``embedder.weights`` names: a path, the base model, or None (random, or
    ``embedder=onnx``, whose weights are in its file)."""
    if cfg.weights == "random" or isinstance(cfg, OnnxEmbedderConfig):
        return None
    if cfg.weights != "base":
        return Path(cfg.weights)
    if cfg.model != "yolov7-tiny":
        raise ConfigError(
            "embedder.weights",
            f"the base weights are for yolov7-tiny; with embedder.model={cfg.model} give a "
            "checkpoint path or weights=random",
        )
    for candidate in (cache_dir / "base" / BASE_WEIGHTS_NAME, shipped_base_weights()):
        if candidate.is_file():
            return candidate
    raise InputDataError(
        "no base detector found: run `python -m gen_loop train-base install=true`, or give "
        "embedder.weights=PATH (or embedder.weights=random for an untrained network)"
    )


def build_embedder(cfg: EmbedderConfig, weights: Path | None) -> Embedder:
    """The embedder ``embedder._target_`` names, with ``weights`` (resolved by
    :func:`resolve_weights`); bad settings are config errors naming their key."""
    embedder: Embedder
    if isinstance(cfg, OnnxEmbedderConfig):  # its weights are in embedder.model; no seed
        embedder = instantiate_component(cfg, "embedder", ("weights", "seed"))
    else:
        embedder = instantiate_component(cfg, "embedder", ("weights",), weights=weights)
    return embedder


def build_finetuner(cfg: FinetuneConfig) -> Finetuner:
    """The finetuner ``finetune._target_`` names, with the fields of ``cfg`` but the loop's
    (``FinetuneConfig.loop_fields``); bad settings are config errors naming their key."""
    finetuner: Finetuner = instantiate_component(cfg, "finetune", cfg.loop_fields)
    return finetuner


def finetune_weights(cfg: RunConfig, embedder_weights: Path | None) -> tuple[Path | None, str]:
    """The checkpoint fine-tuning starts from, and why there is none when it is None.

    ``finetune.weights`` when given, else the embedder's own checkpoint.
    """
    if cfg.finetune.weights is not None:
        return Path(cfg.finetune.weights), ""
    if isinstance(cfg.embedder, OnnxEmbedderConfig):
        return None, (
            "no torch weights to fine-tune (embedder=onnx; give finetune.weights=PATH.pt, the "
            "checkpoint the ONNX file was exported from)"
        )
    return (
        embedder_weights,
        "" if embedder_weights else "no base weights (embedder.weights=random)",
    )


# build_scorer is config.build.instantiate_scorer (light to import: validation uses it too).
__all__ = [
    "build_embedder",
    "build_finetuner",
    "build_generator",
    "build_scorer",
    "finetune_weights",
    "resolve_weights",
]
