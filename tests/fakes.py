"""Small fakes for tests: real components wrapped to fail on purpose."""

from __future__ import annotations

from collections.abc import Mapping

from gen_loop.generator import Batch, ProceduralGenerator
from gen_loop.generator.params import ParamValue


class FlakyGenerator(ProceduralGenerator):
    """The procedural generator, except that it raises when ``fisheye`` exceeds ``fail_above``
    (a simulator that crashes on some settings)."""

    def __init__(self, width: int, height: int, fail_above: float) -> None:
        super().__init__(width, height)
        self.fail_above = fail_above

    def generate(self, params: Mapping[str, ParamValue], n: int, seed: int) -> Batch:
        if float(params.get("fisheye", 0.0)) > self.fail_above:
            raise RuntimeError(f"simulator crashed at fisheye={params['fisheye']}")
        return super().generate(params, n, seed)
