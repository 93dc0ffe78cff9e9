"""Shared fixtures: the real Hydra config, composed with every output under ``tmp_path``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gen_loop.config import CONF_DIR, RunConfig, register_configs


@pytest.fixture
def compose_run(tmp_path: Path) -> Callable[[list[str]], RunConfig]:
    """A function that composes ``conf/run.yaml`` with Hydra overrides into a ``RunConfig``.

    ``run_dir`` points at the test's ``tmp_path`` (later overrides win); nothing else is
    changed, so pass ``debug=smoke`` for the seconds-long profile.
    """
    register_configs()

    def _compose(overrides: list[str]) -> RunConfig:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("run", overrides=[f"run_dir={tmp_path}", *overrides])
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]

    return _compose
