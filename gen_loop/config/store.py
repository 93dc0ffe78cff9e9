"""Register the structured configs in Hydra's ConfigStore (the YAML under conf/ extends them)."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from gen_loop.config import commands, schema

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

_GROUP_SCHEMAS = {
    ("generator", "base_procedural"): schema.GeneratorConfig,
    ("generator", "base_folder"): schema.FolderGeneratorConfig,
    ("generator", "base_command"): schema.CommandGeneratorConfig,
    ("embedder", "base_yolov7_tiny"): schema.EmbedderConfig,
    ("embedder", "base_onnx"): schema.OnnxEmbedderConfig,
    ("score", "base_centroid"): schema.CentroidScoreConfig,
    ("score", "base_frechet"): schema.FrechetScoreConfig,
    ("score", "base_mmd"): schema.MMDScoreConfig,
    ("score", "base_kid"): schema.KIDScoreConfig,
    ("score", "base_prdc"): schema.PRDCScoreConfig,
    ("search", "base_search"): schema.SearchConfig,
    ("target", "base_target"): schema.TargetConfig,
    ("selection", "base_selection"): schema.SelectionConfig,
    ("finetune", "base_finetune"): schema.FinetuneConfig,
    ("finetune", "base_command"): schema.CommandFinetuneConfig,
    ("tracking", "base_mlflow"): schema.TrackingConfig,
}
_ROOT_SCHEMAS = {
    "base_run": schema.RunConfig,
    "base_generate": commands.GenerateConfig,
    "base_train_base": commands.TrainBaseConfig,
    "base_analyze": commands.AnalyzeConfig,
}
# Dict fields whose keys users name on the command line (`sets.client=/data/x`,
# `search.space.gamma={low: 0.6, high: 1.6}`, no `+` needed): Hydra puts the whole config in
# struct mode, and only a node flagged otherwise accepts new keys. What they hold is checked
# where it is used (an unknown generator parameter is a ConfigError naming the nearest).
_OPEN_DICTS = {"base_analyze": ("sets",), "base_search": ("space", "fixed")}


def _with_open_dicts(node: type, keys: tuple[str, ...]) -> type | DictConfig:
    if not keys:
        return node
    cfg = OmegaConf.structured(node)
    for key in keys:
        OmegaConf.set_struct(cfg[key], False)
    return cfg


def register_configs() -> None:
    """Store every schema and the resolvers; safe to call more than once.

    Resolvers: ``${gen_loop.python:}`` is the running interpreter (so a command config runs
    scripts with the environment gen_loop is installed in, whatever ``python`` is on PATH);
    ``${gen_loop.root:}`` is the folder holding ``conf/`` (the repository of a source checkout).
    """
    OmegaConf.register_new_resolver("gen_loop.python", lambda: sys.executable, replace=True)
    OmegaConf.register_new_resolver("gen_loop.root", lambda: str(CONF_DIR.parent), replace=True)
    store = ConfigStore.instance()
    for (group, name), node in _GROUP_SCHEMAS.items():
        store.store(group=group, name=name, node=_with_open_dicts(node, _OPEN_DICTS.get(name, ())))
    for name, node in _ROOT_SCHEMAS.items():
        store.store(name=name, node=_with_open_dicts(node, _OPEN_DICTS.get(name, ())))
