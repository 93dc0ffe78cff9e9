"""What the search could not fix: the remaining residual attributed to unsearched parameters.

When the search stops above the noise floor, the target differs in something the search
space does not contain. Each numeric generator parameter that was neither searched nor fixed
is moved by a small step from the best trial's parameters (one render each), and so is each
searched parameter (:func:`measure_effects`); a bounded linear fit of the remaining residual
on these effects, extended one suspect at a time (:func:`rank`), ranks the suspects by the
share of the residual's squared norm each one adds. The top ones are printed with the
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
        share: the share of the residual's squared norm that moving it removes, beyond the
            searched parameters and the suspects ranked before it.
        direction: +1 if the target looks like a larger value, -1 a smaller one.
        low: the generator's range, for the suggested override.
        high: see ``low``.
    """

    name: str
    share: float
    direction: int
    low: float
    high: float

    @property
    def override(self) -> str:
        """The Hydra override that adds the parameter to the search."""
        return f"+search.space.{self.name}={{low: {self.low:g}, high: {self.high:g}}}"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "override": self.override}


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
            the parameter is not in the point (nothing to move).
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
) -> Effects:
    """Move each searched and each candidate parameter by :data:`STEP` of its range from
    ``params`` (inwards at an upper bound), one ``evaluate`` each."""
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
    return Effects(
        r,
        columns,
        np.array([lo for _, lo, _ in measured]),
        np.array([hi for _, _, hi in measured]),
        out,
    )


def rank(effects: Effects) -> list[Suspect]:
    """Rank the candidates by what each adds, in turn, to the fit of the residual.

    The searched parameters have already absorbed what they could, often by compensating for
    the unsearched difference (a higher contrast for a gamma): the fit starts from them. Then,
    greedily (forward stepwise selection), the candidate that removes the most of what is
    left comes next, and its share is what it adds to the searched ones and the suspects
    before it. So two candidates with the same effect are not both blamed, and the second
    suspect is the one that explains what the first cannot. Every fit is a bounded linear
    least squares: no parameter moves past its range (a blur below 0 explains nothing).
    """
    r = effects.residual
    norm2 = float(r @ r)
    columns, low, high = effects.searched, effects.searched_low, effects.searched_high
    left = {n: c for n, c in effects.candidates.items() if c[0] is not None and np.any(c[0])}
    explained = _bounded_explained(columns, low, high, r)
    out: list[Suspect] = []
    while left and norm2 > 0.0:
        gains = {}
        for name, (column, lo, hi, _) in left.items():
            assert column is not None
            fit = np.column_stack([columns, column])
            gains[name] = _bounded_fit(fit, np.append(low, lo), np.append(high, hi), r)
        name = max(gains, key=lambda n: gains[n][0])
        gain, move = gains[name]
        column, lo, hi, spec = left.pop(name)
        assert spec.low is not None and spec.high is not None and column is not None
        share = max(gain - explained, 0.0) / norm2
        direction = 1 if move > 0 else -1 if move < 0 else 0
        out.append(Suspect(name, share, direction, spec.low, spec.high))
        columns = np.column_stack([columns, column])
        low, high = np.append(low, lo), np.append(high, hi)
        explained = max(gain, explained)
    for name, (_, _, _, spec) in effects.candidates.items():
        if name not in {s.name for s in out}:
            assert spec.low is not None and spec.high is not None
            out.append(Suspect(name, 0.0, 0, spec.low, spec.high))
    return out


def attribute(
    residual: np.ndarray,
    params: Mapping[str, ParamValue],
    candidates: Mapping[str, ParamSpec],
    searched: Mapping[str, tuple[float, float]],
    evaluate: Callable[[dict[str, ParamValue]], np.ndarray],
) -> list[Suspect]:
    """Rank ``candidates`` by the share of ``residual`` (at ``params``) each one explains.

    Args:
        residual: the best trial's residual vector.
        params: the best trial's full parameter set.
        candidates: the unsearched parameters to try (:func:`unsearched_numeric`).
        searched: the searched numeric parameters' ranges.
        evaluate: renders a full parameter set and returns its residual (one batch each:
            one per searched parameter and one per candidate).

    Returns:
        Every candidate, the most responsible first (:func:`rank`).
    """
    return rank(measure_effects(residual, params, candidates, searched, evaluate))


def _bounded_fit(
    columns: np.ndarray, low: np.ndarray, high: np.ndarray, r: np.ndarray
) -> tuple[float, float]:
    """How much of ``|r|^2`` the best bounded move of ``columns`` removes, and the last
    column's move (``r + columns @ move`` is minimised)."""
    from scipy.optimize import lsq_linear

    if columns.shape[1] == 0:
        return 0.0, 0.0
    move = lsq_linear(columns, -r, bounds=(low, high + 1e-12)).x
    rest = r + columns @ move
    return float(r @ r - rest @ rest), float(move[-1])


def _bounded_explained(
    columns: np.ndarray, low: np.ndarray, high: np.ndarray, r: np.ndarray
) -> float:
    return _bounded_fit(columns, low, high, r)[0]


def named(suspects: Sequence[Mapping[str, Any]], top: int = 2) -> list[Mapping[str, Any]]:
    """The suspects worth naming (``Suspect.to_dict`` forms, largest share first): the ``top``
    largest shares of at least :data:`MIN_SHARE`."""
    return [s for s in suspects[:top] if s["share"] >= MIN_SHARE]
