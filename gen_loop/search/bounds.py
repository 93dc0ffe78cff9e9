"""After a search that stopped above the floor: searched parameters whose best value sits at
the edge of its search range.

A best value pinned to a bound of the search range says the target may lie beyond it. When
the generator accepts values past the bound, the run names the override that widens the
range; when the bound is the generator's own limit, it says so: the target is then outside
what the generator can render in that parameter, and widening cannot help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from gen_loop.generator.params import ParamSpec, ParamValue

#: A best value within this fraction of its range from a bound is "at" the bound.
AT_BOUND = 0.02
#: How far a suggested override widens the range past the bound: this fraction of the
#: range, capped at the generator's limit.
WIDEN = 0.25


@dataclass(frozen=True)
class BoundHit:
    """One searched parameter whose best value sits at a bound of its search range.

    Attributes:
        name: the generator parameter.
        value: its best value.
        side: ``"low"`` or ``"high"``: which bound.
        bound: the search range's bound it sits at.
        limit: the generator's own limit on that side (None: the generator gives none).
        widened: the bound the suggested override sets (None when the search bound is already
            the generator's limit).
    """

    name: str
    value: float
    side: str
    bound: float
    limit: float | None
    widened: float | None

    @property
    def override(self) -> str | None:
        """The Hydra override that widens the range on this side, if the generator allows."""
        if self.widened is None:
            return None
        return f"search.space.{self.name}.{self.side}={self.widened:g}"

    def message(self) -> str:
        """One clause for the console, e.g. ``color_temp_k at its upper bound 10000 (widen
        with search.space.color_temp_k.high=11625)``."""
        where = "lower" if self.side == "low" else "upper"
        head = f"{self.name} at its {where} bound {self.bound:g}"
        if self.override is None:
            return f"{head}, the generator's own limit (the target lies beyond what it renders)"
        return f"{head} (widen with {self.override})"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "override": self.override}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BoundHit:
        """The hit of :meth:`to_dict` (as summary.json keeps it)."""
        return cls(*(data[f.name] for f in fields(cls)))


def bounds_line(hits: Sequence[Mapping[str, Any]]) -> str:
    """What the console says of the hits (:meth:`BoundHit.to_dict` form)."""
    clauses = "; ".join(BoundHit.from_dict(h).message() for h in hits)
    return f"the best camera sits at the edge of the search range: {clauses}"


def at_bounds(
    best: Mapping[str, ParamValue],
    distributions: Mapping[str, BaseDistribution],
    specs: Mapping[str, ParamSpec],
) -> list[BoundHit]:
    """The numeric searched parameters of ``best`` within :data:`AT_BOUND` of a bound.

    Args:
        best: the best trial's parameters.
        distributions: the search space (``SearchSpace.distributions``).
        specs: the generator's parameters (their valid ranges).
    """
    hits = []
    for name, dist in distributions.items():
        value = best.get(name)
        if not isinstance(dist, FloatDistribution | IntDistribution) or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        low, high = float(dist.low), float(dist.high)
        span = high - low
        if span <= 0:
            continue
        spec = specs.get(name)
        for side, bound, outward in (("low", low, -1.0), ("high", high, 1.0)):
            if abs(float(value) - bound) > AT_BOUND * span:
                continue
            limit = None if spec is None else (spec.low if side == "low" else spec.high)
            hits.append(
                BoundHit(
                    name,
                    float(value),
                    side,
                    bound,
                    limit,
                    _widened(dist, bound, outward * span, limit),
                )
            )
    return hits


def _widened(
    dist: FloatDistribution | IntDistribution, bound: float, outward: float, limit: float | None
) -> float | None:
    """The bound moved ``WIDEN * outward`` outwards, capped at the generator's ``limit``; None
    when the bound is already at the limit."""
    widened = bound + WIDEN * outward
    if limit is not None:
        widened = min(widened, limit) if outward > 0 else max(widened, limit)
    if isinstance(dist, IntDistribution):
        widened = float(round(widened))
    if abs(widened - bound) <= 1e-9 * max(1.0, abs(bound)):
        return None
    return widened
