"""What the search could not fix: the remaining residual attributed to unsearched parameters.

When the search stops above the noise floor, the target differs in something the search
space does not contain. Each numeric generator parameter that was neither searched nor fixed
is moved by a small step from the best trial's parameters (one render each), each unsearched
categorical parameter is switched to each of its other choices (one render each: a fog the
search space lacks), and each searched parameter is moved too (:func:`measure_effects`); the
share of the remaining residual's squared norm that a candidate's effect adds to the searched
parameters' linear fit ranks the suspects (:func:`rank`). The top ones are printed with the
override that adds them to the search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gen_loop.generator.params import ParamSpec, ParamValue

#: The finite-difference step, a fraction of each parameter's range.
STEP = 0.1
#: A suspect is named when moving it alone removes at least this share of the residual.
MIN_SHARE = 0.1


@dataclass(frozen=True)
class Suspect:
    """One unsearched parameter's part in the remaining residual.

    Attributes:
        name: the generator parameter.
        share: the share of the residual's squared norm that moving it (and the searched
            parameters) removes, beyond what the searched parameters alone remove.
        direction: +1 if the target looks like a larger value (or like ``choice``), -1 a
            smaller one.
        low: the generator's range, for the suggested override (0 for a categorical one).
        high: see ``low``.
        choice: for a categorical parameter, the other choice it was switched to (the target
            looks like it when ``share`` is large); None for a numeric one.
        choices: a categorical parameter's choices, for the suggested override.
    """

    name: str
    share: float
    direction: int
    low: float
    high: float
    choice: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        """The name as the console prints it: ``fisheye``, ``weather (fog)``."""
        return self.name if self.choice is None else f"{self.name} ({self.choice})"

    @property
    def override(self) -> str:
        """The Hydra override that adds the parameter to the search."""
        if self.choices is not None:
            listed = ", ".join(self.choices)
            return f"+search.space.{self.name}={{type: categorical, choices: [{listed}]}}"
        return f"+search.space.{self.name}={{low: {self.low:g}, high: {self.high:g}}}"

    def to_dict(self) -> dict[str, object]:
        out = {**asdict(self), "label": self.label, "override": self.override}
        out["choices"] = None if self.choices is None else list(self.choices)
        return out


def unsearched_choices(
    specs: Mapping[str, ParamSpec], searched: set[str], fixed: set[str]
) -> dict[str, ParamSpec]:
    """The generator's categorical parameters (two choices or more) that are neither searched
    nor fixed."""
    return {
        name: spec
        for name, spec in specs.items()
        if spec.choices and len(spec.choices) > 1 and name not in searched and name not in fixed
    }


def unsearched_numeric(
    specs: Mapping[str, ParamSpec], searched: set[str], fixed: set[str]
) -> dict[str, ParamSpec]:
    """The generator's numeric parameters that are neither searched nor fixed."""
    return {
        name: spec
        for name, spec in specs.items()
        if not spec.choices
        and spec.low is not None
        and spec.high is not None
        and spec.high > spec.low
        and name not in searched
        and name not in fixed
    }


@dataclass(frozen=True)
class Effects:
    """The finite-difference effects of moving each parameter from the best trial's point.

    Columns are the change of the residual per unit of each parameter's *range* (so the fit's
    coefficients are fractions of the range); ``low``/``high`` bound each move within the
    parameter's range (a searched parameter at its bound can only move inwards).

    Attributes:
        residual: the best trial's residual vector (D,).
        searched: (D, S) columns of the searched parameters.
        searched_low: (S,) lowest move of each, a fraction of its range (<= 0).
        searched_high: (S,) highest move (>= 0).
        candidates: each unsearched candidate's (column, low, high, spec); column None when
            the parameter is not in the point (nothing to move). A categorical parameter has
            one candidate per other choice, keyed ``name=choice``, its column the effect of the
            switch (low 0, high 1).
    """

    residual: np.ndarray
    searched: np.ndarray
    searched_low: np.ndarray
    searched_high: np.ndarray
    candidates: dict[str, tuple[np.ndarray | None, float, float, ParamSpec]]


def measure_effects(
    residual: np.ndarray,
    params: Mapping[str, ParamValue],
    candidates: Mapping[str, ParamSpec],
    searched: Mapping[str, tuple[float, float]],
    evaluate: Callable[[dict[str, ParamValue]], np.ndarray],
    choices: Mapping[str, ParamSpec] | None = None,
) -> Effects:
    """Move each searched and each candidate parameter by :data:`STEP` of its range from
    ``params`` (inwards at an upper bound), one ``evaluate`` each; switch each categorical
    candidate of ``choices`` to each of its other choices, one ``evaluate`` each."""
    r = np.asarray(residual, dtype=np.float64)

    def effect(name: str, low: float, high: float) -> tuple[np.ndarray, float, float]:
        value = float(params[name])
        h = STEP if value + STEP * (high - low) <= high else -STEP
        moved = np.asarray(evaluate({**params, name: value + h * (high - low)}), np.float64)
        at = (value - low) / (high - low)
        return (moved - r) / h, min(-at, 0.0), max(1.0 - at, 0.0)

    measured = [effect(n, lo, hi) for n, (lo, hi) in searched.items()]
    columns = np.stack([c for c, _, _ in measured], axis=1) if measured else np.zeros((r.size, 0))
    out: dict[str, tuple[np.ndarray | None, float, float, ParamSpec]] = {}
    for name, spec in candidates.items():
        assert spec.low is not None and spec.high is not None
        if name not in params:
            out[name] = (None, 0.0, 0.0, spec)
            continue
        column, low, high = effect(name, spec.low, spec.high)
        out[name] = (column, low, high, spec)
    for name, spec in (choices or {}).items():
        assert spec.choices
        for choice in spec.choices:
            if name in params and choice == params[name]:
                continue
            key = f"{name}={choice}"
            if name not in params:
                out[key] = (None, 0.0, 1.0, spec)
                continue
            switched = np.asarray(evaluate({**params, name: choice}), np.float64)
            out[key] = (switched - r, 0.0, 1.0, spec)
    return Effects(
        r,
        columns,
        np.array([lo for _, lo, _ in measured]),
        np.array([hi for _, _, hi in measured]),
        out,
    )


def rank(effects: Effects) -> list[Suspect]:
    """Rank the candidates by the share of the residual each one explains.

    The searched parameters have already absorbed what they could, often by compensating for
    the unsearched difference (a higher contrast for a gamma): a candidate's share is what it
    adds to the searched parameters' own linear fit of the residual, so a parameter whose
    effect the searched ones can mimic is not blamed for what they cannot fix. A candidate
    whose fit wants it past its bound (a blur below 0) gets no share. Bounded fits and a
    stepwise ranking named the right pair no more often (experiments/recovery/ANY_CAMERA.md).
    """
    r = effects.residual
    norm2 = float(r @ r)
    base = effects.searched
    base_fit = explained(base, r)
    out = []
    for key, (column, low, high, spec) in effects.candidates.items():
        name, _, choice = key.partition("=")
        if spec.choices:
            extra: dict[str, Any] = {"choice": choice, "choices": tuple(map(str, spec.choices))}
            bounds = (0.0, 0.0)
        else:
            assert spec.low is not None and spec.high is not None
            extra, bounds = {}, (spec.low, spec.high)
        if column is None or norm2 == 0.0 or not np.any(column):
            out.append(Suspect(name, 0.0, 0, *bounds, **extra))
            continue
        fit = np.column_stack([base, column])
        coef = np.linalg.lstsq(fit, r, rcond=None)[0]
        fitted = fit @ coef
        share = max(float(fitted @ fitted) - base_fit, 0.0) / norm2
        # The fit moves the candidate by -coef: the target looks like the other direction.
        direction = 1 if coef[-1] < 0 else -1
        if (direction < 0 and low >= 0.0) or (direction > 0 and high <= 0.0):
            share = 0.0  # the fit wants it past its bound (or a switch undone): not the cause
        out.append(Suspect(name, share, direction, *bounds, **extra))
    return sorted(out, key=lambda s: -s.share)


def attribute(
    residual: np.ndarray,
    params: Mapping[str, ParamValue],
    candidates: Mapping[str, ParamSpec],
    searched: Mapping[str, tuple[float, float]],
    evaluate: Callable[[dict[str, ParamValue]], np.ndarray],
    choices: Mapping[str, ParamSpec] | None = None,
) -> list[Suspect]:
    """Rank ``candidates`` by the share of ``residual`` (at ``params``) each one explains.

    Args:
        residual: the best trial's residual vector.
        params: the best trial's full parameter set.
        candidates: the unsearched parameters to try (:func:`unsearched_numeric`).
        searched: the searched numeric parameters' ranges.
        evaluate: renders a full parameter set and returns its residual (one batch each:
            one per searched parameter, one per candidate, one per other choice).
        choices: the unsearched categorical parameters to try (:func:`unsearched_choices`).

    Returns:
        Every candidate, largest share first (:func:`rank`).
    """
    return rank(measure_effects(residual, params, candidates, searched, evaluate, choices))


def explained(columns: np.ndarray, r: np.ndarray) -> float:
    """The squared norm of ``r``'s projection on the span of ``columns``."""
    fitted = columns @ np.linalg.lstsq(columns, r, rcond=None)[0]
    return float(fitted @ fitted)


def label(suspect: Mapping[str, Any]) -> str:
    """A suspect's name as it is printed and tagged (``Suspect.to_dict`` form): ``fisheye``,
    ``weather (fog)``; a summary from before categorical suspects has no label."""
    return str(suspect.get("label") or suspect["name"])


def named(suspects: Sequence[Mapping[str, Any]], top: int = 2) -> list[Mapping[str, Any]]:
    """The suspects worth naming (``Suspect.to_dict`` forms, largest share first): the ``top``
    largest shares of at least :data:`MIN_SHARE`."""
    return [s for s in suspects[:top] if s["share"] >= MIN_SHARE]
