"""Components from their structured configs: ``hydra.utils.instantiate`` on ``_target_``."""

from __future__ import annotations

import dataclasses
import re
from enum import Enum
from typing import TYPE_CHECKING

from hydra.utils import instantiate

from gen_loop.errors import ConfigError

if TYPE_CHECKING:
    from gen_loop.config.schema import ScoreConfig
    from gen_loop.score import Scorer


def instantiate_scorer(cfg: ScoreConfig) -> Scorer:
    """The unfitted scorer of a ``score`` option: its ``_target_`` built with its settings.

    Every field of ``cfg`` not in ``cfg.loop_fields`` (``noise_floor_splits``, and ``metric``
    where the option fixes it) is a constructor argument of ``_target_``: ``score=centroid``
    takes ``score.metric``, ``frechet`` ``score.shrinkage``, ``mmd`` / ``kid`` ``score.kernel``
    and ``score.bandwidth``, ``prdc`` ``score.k_neighbours``. Light to import: the scorer's
    module is imported when the scorer is built.

    Raises:
        ConfigError: when the scorer rejects its settings, naming the setting's key where the
            scorer's message names it (``score.shrinkage``), else ``score``.
    """
    settings = {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if f.name not in cfg.loop_fields
    }
    # Choice enums as their plain values: scorers take strings ("zscore_l2", "rbf").
    args = {k: v.value if isinstance(v, Enum) else v for k, v in settings.items()}
    try:
        scorer: Scorer = instantiate(args, _convert_="all")
    except Exception as err:
        cause = str(err.__cause__ if isinstance(err.__cause__, ValueError) else err)
        key = next((f"score.{k}" for k in settings if re.search(rf"\b{k}\b", cause)), "score")
        raise ConfigError(key, f"cannot build {cfg._target_}: {cause}") from err
    return scorer
