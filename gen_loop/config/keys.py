"""Config keys the user typed that the config does not have, named with the nearest valid key.

Hydra's ``+key=value`` adds a key to any node, even a structured config's, and OmegaConf then
keeps it as a stray attribute: ``+search.n_trial=5`` would be ignored without a word. Every
key of a structured node must be a field of its dataclass (:func:`check_known_keys`).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gen_loop.config.schema import ParamRangeConfig
from gen_loop.errors import ConfigError


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The entry of ``known`` closest to ``name`` (difflib ratio >= 0.6), if any."""
    match = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_key_error(full_key: str, known: Iterable[str], add_hint: str = "") -> ConfigError:
    """The error for ``full_key``, which its parent does not have: the nearest of ``known``
    (difflib), or the list of them; ``add_hint`` (how to add a new key) when none is near."""
    parent, _, name = full_key.rpartition(".")
    known = sorted(str(k) for k in known)
    match = nearest(name, known)
    if match:
        hint = f"did you mean {parent + '.' if parent else ''}{match}?"
    else:
        where = f"'{parent}'" if parent else "the top level"
        hint = f"the keys of {where} are {', '.join(known) or 'none'}"
        if add_hint:
            hint += f"; {add_hint}"
    return ConfigError(full_key, f"no such config key; {hint}")


def check_known_keys(cfg: DictConfig, prefix: str = "") -> None:
    """Every key of every structured node of ``cfg`` is a field of its dataclass.

    Interpolations are not resolved. Free dicts (``generator.params``, ``search.space``) may
    hold any key; what they hold is checked where it is used.

    Raises:
        ConfigError: naming the first stray key and the nearest field.
    """
    schema = OmegaConf.get_type(cfg)
    fields = (
        {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    )
    for key, value in cfg.items_ex(resolve=False):
        full_key = f"{prefix}{key!s}"
        if fields is not None and key not in fields:
            raise unknown_key_error(full_key, fields)
        if isinstance(value, DictConfig):
            check_known_keys(value, f"{full_key}.")


def param_range(key: str, entry: Any) -> ParamRangeConfig:
    """One ``search.space`` entry as a :class:`ParamRangeConfig` (a dict from YAML or the
    command line, or one already), its keys and value types checked.

    Raises:
        ConfigError: naming ``key.<field>`` for an unknown field (with the nearest) or a value
            of the wrong type, ``key`` for an entry that is no mapping.
    """
    if isinstance(entry, ParamRangeConfig):
        return entry
    if not isinstance(entry, Mapping):
        raise ConfigError(key, f"{entry!r}: give a mapping such as {{low: 0.5, high: 1.5}}")
    fields = [f.name for f in dataclasses.fields(ParamRangeConfig)]
    for name in entry:
        if name not in fields:
            raise unknown_key_error(f"{key}.{name}", fields)
    try:
        node = OmegaConf.merge(OmegaConf.structured(ParamRangeConfig), dict(entry))
    except OmegaConfBaseException as err:
        field = f"{key}.{err.key}" if err.key is not None else key
        raise ConfigError(field, first_line(err)) from None
    converted: ParamRangeConfig = OmegaConf.to_object(node)  # type: ignore[assignment]
    return converted


def first_line(err: BaseException) -> str:
    """The first line of an error's message (OmegaConf appends full_key/object_type lines)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
