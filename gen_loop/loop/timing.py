"""Seconds per stage of a run, as ``summary.json`` ``timings_s`` keeps them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


def timed(timings: dict[str, float], key: str, step: Callable[..., _T], *args: object) -> _T:
    """Run ``step(*args)`` and record its seconds in ``timings[key]``."""
    clock = time.perf_counter()
    result = step(*args)
    timings[key] = time.perf_counter() - clock
    return result
