"""The composed config as settings, and Hydra's and OmegaConf's errors as one-line config errors.

Hydra prints a failed composition itself (several lines, exit code 1); the command line asks
Hydra to raise instead and reports :func:`composition_error`'s one line with exit code 2, like
every other user error. The config reaches a command through :func:`to_settings`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from gen_loop.config.keys import check_known_keys, first_line, unknown_key_error
from gen_loop.errors import ConfigError, GenLoopError


def to_settings(cfg: DictConfig) -> Any:
    """``OmegaConf.to_object`` of a composed config, after :func:`check_known_keys`.

    Raises:
        ConfigError: a key the schema lacks (``+search.n_trial=5``), a ``???`` left unset, an
            interpolation that does not resolve, a value of the wrong type; naming the key.
    """
    check_known_keys(cfg)
    try:
        return OmegaConf.to_object(cfg)
    except MissingMandatoryValue as err:  # a `???` left unset, e.g. target=folder alone
        raise ConfigError(str(err.full_key), f"must be given: add {err.full_key}=...") from None
    except OmegaConfBaseException as err:
        raise _omegaconf_error(err) from None


def composition_error(err: BaseException) -> GenLoopError | None:
    """The one-line error for a failure of Hydra to compose the config; None for any other
    exception (a bug: its traceback is shown)."""
    if isinstance(err, MissingConfigException):
        return _missing_option(err)
    if isinstance(err, OverrideParseException):
        return GenLoopError(f"cannot parse override {err.override!r}: {_one_line(err.message)}")
    cause = err.__cause__
    if isinstance(err, HydraException) and isinstance(cause, OmegaConfBaseException):
        return _omegaconf_error(cause, hint=_one_line(str(err)))
    if isinstance(err, HydraException):
        return GenLoopError(f"cannot compose the config: {_one_line(str(err))}")
    if isinstance(err, OmegaConfBaseException):
        return _omegaconf_error(err)
    return None


def _omegaconf_error(err: OmegaConfBaseException, hint: str = "") -> ConfigError:
    key = str(err.full_key or err.key or "")
    parent = err.parent_node
    if isinstance(err, ConfigAttributeError | ConfigKeyError) and isinstance(parent, DictConfig):
        schema = OmegaConf.get_type(parent)
        if dataclasses.is_dataclass(schema):
            return unknown_key_error(key, [f.name for f in dataclasses.fields(schema)])
        # A free dict (generator.params): Hydra's "To append to your config use +key=value".
        append = hint.split(". ", 1)[1] if ". To append" in hint else ""
        return unknown_key_error(key, [str(k) for k in parent], add_hint=append.lower())
    return ConfigError(key or "?", first_line(err))


def _missing_option(err: MissingConfigException) -> GenLoopError:
    """``search=nope``: the group, the option and the group's options (not the schemas)."""
    missing = str(err.missing_cfg_file or "")
    group, _, option = missing.rpartition("/")
    options = [o for o in (err.options or []) if not o.startswith("base_")]
    if group and options:
        return ConfigError(
            group, f"no option {option!r}; the options are {', '.join(sorted(options))}"
        )
    return GenLoopError(f"cannot compose the config: {_one_line(str(err))}")


def _one_line(text: str) -> str:
    """Hydra's message without its search-path listing and links, as one line."""
    lines = [line.strip() for line in text.splitlines()]
    kept = [line for line in lines if line and not line.startswith(("See https://", "Config "))]
    return " ".join(kept)
