"""What the search could not fix: the remaining residual attributed to unsearched parameters.

When the search stops above the noise floor, the target differs in something the search
space does not contain. Each numeric generator parameter that was neither searched nor fixed
is moved by a small step from the best trial's parameters (one render each), and so is each
searched parameter; the share of the remaining residual's squared norm that a candidate's
finite-difference effect adds to the searched parameters' linear fit ranks the suspects.
The top ones are printed with the override that adds them to the search.
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
        share: the share of the residual's squared norm that moving it alone removes.
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


def attribute(
    residual: np.ndarray,
    params: Mapping[str, ParamValue],
    candidates: Mapping[str, ParamSpec],
    searched: Mapping[str, tuple[float, float]],
    evaluate: Callable[[dict[str, ParamValue]], np.ndarray],
) -> list[Suspect]:
    """Rank ``candidates`` by the share of ``residual`` (at ``params``) each one explains.

    The searched parameters have already absorbed what they could, often by compensating for
    the unsearched difference (a higher contrast for a gamma): a candidate's share is what it
    adds to the searched parameters' own linear fit of the residual, so a parameter whose
    effect the searched ones can mimic is not blamed for what they cannot fix.

    Args:
        residual: the best trial's residual vector.
        params: the best trial's full parameter set.
        candidates: the unsearched parameters to try (:func:`unsearched_numeric`).
        searched: the searched numeric parameters' ranges.
        evaluate: renders a full parameter set and returns its residual (one batch each:
            one per searched parameter and one per candidate).

    Returns:
        Every candidate, largest share first.
    """
    r = np.asarray(residual, dtype=np.float64)
    norm2 = float(r @ r)

    def effect(name: str, low: float, high: float) -> np.ndarray:
        value = float(params[name])
        h = STEP * (high - low)
        if value + h > high:
            h = -h
        moved = np.asarray(evaluate({**params, name: value + h}), dtype=np.float64)
        return (moved - r) / h

    base = np.stack([effect(n, lo, hi) for n, (lo, hi) in searched.items()], axis=1)
    base_fit = _explained(base, r)
    out = []
    for name, spec in candidates.items():
        assert spec.low is not None and spec.high is not None
        column = effect(name, spec.low, spec.high) if name in params else None
        if column is None or norm2 == 0.0 or not np.any(column):
            out.append(Suspect(name, 0.0, 0, spec.low, spec.high))
            continue
        share = max(_explained(np.column_stack([base, column]), r) - base_fit, 0.0) / norm2
        # The fit moves the candidate by -coef: the target looks like the other direction.
        coef = np.linalg.lstsq(np.column_stack([base, column]), r, rcond=None)[0][-1]
        direction = 1 if coef < 0 else -1
        value = float(params[name])
        if (direction < 0 and value <= spec.low) or (direction > 0 and value >= spec.high):
            share = 0.0  # the fit wants it past its bound (e.g. blur below 0): not the cause
        out.append(Suspect(name, share, direction, spec.low, spec.high))
    return sorted(out, key=lambda s: -s.share)


def _explained(columns: np.ndarray, r: np.ndarray) -> float:
    """The squared norm of ``r``'s projection on the span of ``columns``."""
    coef = np.linalg.lstsq(columns, r, rcond=None)[0]
    fitted = columns @ coef
    return float(fitted @ fitted)


def named(suspects: Sequence[Mapping[str, Any]], top: int = 2) -> list[Mapping[str, Any]]:
    """The suspects worth naming (``Suspect.to_dict`` forms, largest share first): the ``top``
    largest shares of at least :data:`MIN_SHARE`."""
    return [s for s in suspects[:top] if s["share"] >= MIN_SHARE]
