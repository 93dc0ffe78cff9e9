"""Components from their structured configs: ``hydra.utils.instantiate`` on ``_target_``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection
from enum import Enum
from typing import TYPE_CHECKING, Any

from hydra.utils import instantiate

from gen_loop.errors import ConfigError, GenLoopError

if TYPE_CHECKING:
    from gen_loop.config.schema import ScoreConfig
    from gen_loop.score import Scorer


def instantiate_component(
    cfg: Any, group: str, exclude: Collection[str] = (), **extra: Any
) -> Any:
    """Build ``cfg._target_`` with the fields of ``cfg`` (but ``exclude``) plus ``extra``.

    The one way every config group becomes a component: generator, embedder and scorer
    options are structured configs with a ``_target_``. Choice enums are passed as their
    plain values.

    Raises:
        GenLoopError: the component's own error about its input (e.g. a generator that found
            a bad dataset), unchanged.
        ConfigError: any other failure to build, naming ``group.<field>`` when the message
            names a field (``embedder.layers`` for "layer 99 ..."), else ``group``.
    """
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in exclude}
    args = {k: v.value if isinstance(v, Enum) else v for k, v in settings.items()}
    try:
        return instantiate({**args, **extra}, _convert_="all")
    except Exception as err:
        cause = err.__cause__ if isinstance(err.__cause__, Exception) else err
        if isinstance(cause, GenLoopError):
            raise cause from None
        message = str(cause)
        fields = (k for k in settings if k != "_target_")
        key = next(
            (f"{group}.{k}" for k in fields if re.search(rf"\b{k.rstrip('s')}s?\b", message)),
            group,
        )
        raise ConfigError(key, f"cannot build {cfg._target_}: {message}") from err


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
    scorer: Scorer = instantiate_component(cfg, "score", cfg.loop_fields)
    return scorer
