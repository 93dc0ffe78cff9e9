"""The search space: config entries checked against the generator and turned into Optuna
distributions."""

from __future__ import annotations

from collections.abc import Mapping

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from gen_loop.config.schema import ParamRangeConfig
from gen_loop.errors import ConfigError
from gen_loop.generator.params import ParamSpec


def build_space(
    space: Mapping[str, ParamRangeConfig], specs: Mapping[str, ParamSpec]
) -> dict[str, BaseDistribution]:
    """Optuna distributions for ``space``; every error names its ``search.space`` key.

    Args:
        space: the searched parameters from the config.
        specs: the generator's parameters (names, valid ranges).
    """
    if not space:
        raise ConfigError("search.space", "is empty; name at least one generator parameter")
    out: dict[str, BaseDistribution] = {}
    for name, entry in space.items():
        key = f"search.space.{name}"
        if name not in specs:
            raise ConfigError(key, f"unknown generator parameter; known: {sorted(specs)}")
        out[name] = _distribution(key, entry, specs[name])
    return out


def _distribution(key: str, entry: ParamRangeConfig, spec: ParamSpec) -> BaseDistribution:
    if entry.type == "categorical":
        if not entry.choices:
            raise ConfigError(f"{key}.choices", "a categorical parameter needs choices")
        for choice in entry.choices:
            _check_value(key, spec, choice)
        return CategoricalDistribution(list(entry.choices))
    if entry.type not in ("float", "int"):
        raise ConfigError(f"{key}.type", f"{entry.type!r}: use float, int or categorical")
    if entry.low is None or entry.high is None:
        raise ConfigError(key, "needs low and high")
    if entry.low >= entry.high:
        raise ConfigError(key, f"low ({entry.low}) must be below high ({entry.high})")
    if entry.log and entry.low <= 0:
        raise ConfigError(f"{key}.low", "must be > 0 on a log scale")
    for bound in (entry.low, entry.high):
        _check_value(key, spec, bound)
    if entry.type == "int":
        return IntDistribution(
            int(entry.low), int(entry.high), log=entry.log, step=int(entry.step or 1)
        )
    return FloatDistribution(entry.low, entry.high, log=entry.log, step=entry.step)


def _check_value(key: str, spec: ParamSpec, value: object) -> None:
    try:
        spec.validate(value)  # type: ignore[arg-type]
    except ValueError as err:
        raise ConfigError(key, f"{err} (the generator's valid range)") from err
