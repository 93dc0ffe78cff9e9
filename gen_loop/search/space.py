"""The search space: config entries checked against the generator and turned into Optuna
distributions, with conditional parameters and fixed values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from gen_loop.config.keys import nearest
from gen_loop.config.schema import ParamRangeConfig
from gen_loop.errors import ConfigError
from gen_loop.generator.params import ParamSpec, ParamValue


@dataclass(frozen=True)
class SearchSpace:
    """What the search proposes.

    Attributes:
        distributions: one Optuna distribution per searched parameter, in config order.
        conditions: for a conditional parameter, the values other parameters must have for it
            to be searched (``{"fog": {"weather": "fog"}}``).
        fixed: parameters held at a value for this search.
        priors: extra starting points to enqueue after trial 0 (searched parameters only).
    """

    distributions: dict[str, BaseDistribution]
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    fixed: dict[str, ParamValue] = field(default_factory=dict)
    priors: list[dict[str, ParamValue]] = field(default_factory=list)

    def suggest(self, trial: optuna.Trial) -> dict[str, ParamValue]:
        """Sample the trial's parameters in order, skipping inactive conditional ones."""
        chosen: dict[str, ParamValue] = {}
        for name, dist in self.distributions.items():
            if self.active(name, chosen):
                chosen[name] = _suggest(trial, name, dist)
        return chosen

    def active(self, name: str, chosen: Mapping[str, object]) -> bool:
        """Whether ``name`` is searched given the values chosen before it."""
        return all(chosen.get(k) == v for k, v in self.conditions.get(name, {}).items())

    def restrict(self, params: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
        """The searched, active subset of ``params`` (e.g. to enqueue a starting point)."""
        out: dict[str, ParamValue] = {}
        for name in self.distributions:
            if name in params and self.active(name, out | dict(params)):
                out[name] = params[name]
        return out

    def range_errors(
        self, found: Mapping[str, ParamValue], truth: Mapping[str, ParamValue]
    ) -> dict[str, float]:
        """``|found - truth| / (high - low)`` per searched numeric parameter (how far a search
        landed from known values, e.g. the demo target's hidden camera)."""
        errors = {}
        for name, dist in self.distributions.items():
            low, high = getattr(dist, "low", None), getattr(dist, "high", None)
            if low is None or high is None:
                continue
            errors[name] = abs(float(found[name]) - float(truth[name])) / (high - low)
        return errors


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> ParamValue:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)  # type: ignore[return-value]
    raise TypeError(f"unsupported distribution for {name}: {dist!r}")


def build_space(
    space: Mapping[str, ParamRangeConfig],
    specs: Mapping[str, ParamSpec],
    fixed: Mapping[str, Any] | None = None,
    enqueue: Sequence[Mapping[str, Any]] | None = None,
) -> SearchSpace:
    """The search space of the config; every error names its ``search.*`` key.

    Args:
        space: the searched parameters from the config.
        specs: the generator's parameters (names, valid ranges).
        fixed: parameters held at a value (``search.fixed``).
        enqueue: starting points to try first (``search.enqueue``), searched parameters only.
    """
    if not space:
        raise ConfigError("search.space", "is empty; name at least one generator parameter")
    distributions: dict[str, BaseDistribution] = {}
    conditions: dict[str, dict[str, Any]] = {}
    for name, entry in space.items():
        key = f"search.space.{name}"
        if name not in specs:
            raise _unknown_parameter(key, name, specs)
        distributions[name] = _distribution(key, entry, specs[name])
        if entry.when:
            conditions[name] = _condition(f"{key}.when", dict(entry.when), distributions)
    held: dict[str, ParamValue] = {}
    for name, value in (fixed or {}).items():
        key = f"search.fixed.{name}"
        if name not in specs:
            raise _unknown_parameter(key, name, specs)
        if name in distributions:
            raise ConfigError(key, "is also in search.space; a parameter is fixed or searched")
        held[name] = _check_value(key, specs[name], value)
    priors = []
    for i, point in enumerate(enqueue or []):
        unknown = sorted(set(point) - set(distributions))
        if unknown:
            raise ConfigError(f"search.enqueue[{i}]", f"{unknown} are not in search.space")
        priors.append(
            {k: _check_value(f"search.enqueue[{i}].{k}", specs[k], v) for k, v in point.items()}
        )
    return SearchSpace(distributions, conditions, held, priors)


def _unknown_parameter(key: str, name: str, specs: Mapping[str, ParamSpec]) -> ConfigError:
    match = nearest(name, specs)
    near = f"did you mean {match}? " if match else ""
    return ConfigError(key, f"the generator has no such parameter; {near}known: {sorted(specs)}")


def _condition(
    key: str, when: dict[str, Any], earlier: Mapping[str, BaseDistribution]
) -> dict[str, Any]:
    for other, value in when.items():
        dist = earlier.get(other)
        if not isinstance(dist, CategoricalDistribution):
            raise ConfigError(key, f"'{other}' must be a categorical parameter listed before it")
        if value not in dist.choices:
            raise ConfigError(key, f"{other}={value!r} is not one of {list(dist.choices)}")
    return when


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


def _check_value(key: str, spec: ParamSpec, value: Any) -> ParamValue:
    try:
        return spec.validate(value)
    except ValueError as err:
        raise ConfigError(key, f"{err} (the generator's valid range)") from err
