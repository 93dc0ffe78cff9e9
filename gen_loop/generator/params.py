"""Named generation parameters with units, ranges and defaults."""

from __future__ import annotations

from dataclasses import dataclass

ParamValue = float | int | str


@dataclass(frozen=True)
class ParamSpec:
    """One generator parameter.

    Attributes:
        name: the parameter's name in configs and params.json.
        default: the value of the "source camera" (the generator's defaults).
        low: the smallest valid value (numeric parameters).
        high: the largest valid value (numeric parameters).
        unit: the physical unit, or "" for a dimensionless factor.
        doc: what the parameter does, in one line.
        choices: the allowed values of a categorical parameter.
    """

    name: str
    default: ParamValue
    low: float | None = None
    high: float | None = None
    unit: str = ""
    doc: str = ""
    choices: tuple[str, ...] = ()

    def validate(self, value: ParamValue) -> ParamValue:
        """``value`` converted to the parameter's type, or ``ValueError`` naming the range."""
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"{self.name}={value!r} is not one of {list(self.choices)}")
            return value
        if isinstance(value, (str, bool)):
            raise ValueError(f"{self.name}={value!r} must be a number")
        number = float(value)
        assert self.low is not None and self.high is not None
        if not self.low <= number <= self.high:
            raise ValueError(
                f"{self.name}={number:g} is outside its range [{self.low:g}, {self.high:g}]"
                + (f" {self.unit}" if self.unit else "")
            )
        return int(number) if isinstance(self.default, int) else number
