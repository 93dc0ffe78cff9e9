"""Configuration: structured schemas, their registration and validation."""

from gen_loop.config.schema import (
    CommandGeneratorConfig,
    DemoTargetConfig,
    EmbedderConfig,
    FinetuneConfig,
    FolderGeneratorConfig,
    GenerateConfig,
    GeneratorConfig,
    GeneratorParamConfig,
    ParamRangeConfig,
    RunConfig,
    ScoreConfig,
    SearchConfig,
    SelectionConfig,
    TargetConfig,
    TrackingConfig,
    TrainBaseConfig,
)
from gen_loop.config.store import CONF_DIR, register_configs

__all__ = [
    "CONF_DIR",
    "CommandGeneratorConfig",
    "DemoTargetConfig",
    "EmbedderConfig",
    "FinetuneConfig",
    "FolderGeneratorConfig",
    "GenerateConfig",
    "GeneratorConfig",
    "GeneratorParamConfig",
    "ParamRangeConfig",
    "RunConfig",
    "ScoreConfig",
    "SearchConfig",
    "SelectionConfig",
    "TargetConfig",
    "TrackingConfig",
    "TrainBaseConfig",
    "register_configs",
]
