"""A best value at the edge of its search range: named, with the override that widens it."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from gen_loop.generator.sensor import SENSOR_PARAMETERS
from gen_loop.loop.summary import RunSummary
from gen_loop.search.bounds import AT_BOUND, BoundHit, at_bounds, bounds_line
from tests.cli import one_difference, run_cli

SPECS = {spec.name: spec for spec in SENSOR_PARAMETERS}
SPACE = {
    "color_temp_k": FloatDistribution(3500, 10000),
    "gamma": FloatDistribution(0.5, 2.0),
    "exposure_ev": FloatDistribution(-1.5, 1.5),
}


def test_values_at_a_bound_are_named_and_values_inside_are_not() -> None:
    best = {"color_temp_k": 10000.0, "gamma": 0.5 + 0.5 * AT_BOUND * 1.5, "exposure_ev": 0.3}
    hits = {h.name: h for h in at_bounds(best, SPACE, SPECS)}
    assert set(hits) == {"color_temp_k", "gamma"}
    warm = hits["color_temp_k"]
    assert (warm.side, warm.bound, warm.limit) == ("high", 10000.0, SPECS["color_temp_k"].high)
    # 25 % of the range past the bound, capped at the generator's limit (12000 K)
    assert warm.widened == min(10000 + 0.25 * 6500, SPECS["color_temp_k"].high)
    assert warm.override == f"search.space.color_temp_k.high={warm.widened:g}"
    # gamma's search range starts at the generator's own limit: nothing to widen
    low = hits["gamma"]
    assert (low.side, low.limit, low.widened, low.override) == ("low", 0.5, None, None)
    assert "generator's own limit" in low.message()
    assert not at_bounds({"exposure_ev": 1.5 - 1.1 * AT_BOUND * 3.0}, SPACE, SPECS)


def test_a_narrow_range_is_widened_by_a_quarter_and_ints_stay_ints() -> None:
    space = {
        "exposure_ev": FloatDistribution(-0.5, 0.5),
        "n": IntDistribution(1, 9),
        "weather": CategoricalDistribution(["clear", "fog"]),
    }
    hits = at_bounds({"exposure_ev": -0.5, "n": 9, "weather": "fog"}, space, SPECS)
    assert [(h.name, h.side, h.widened) for h in hits] == [
        ("exposure_ev", "low", -0.75),
        ("n", "high", 11.0),  # no generator spec: no cap
    ]


def test_the_console_line_and_the_summary_form_round_trip() -> None:
    hit = BoundHit("color_temp_k", 10000.0, "high", 10000.0, 12000.0, 11625.0)
    assert BoundHit.from_dict(hit.to_dict()) == hit
    line = bounds_line([hit.to_dict()])
    assert line == (
        "the best camera sits at the edge of the search range: color_temp_k at its upper "
        "bound 10000 (widen with search.space.color_temp_k.high=11625)"
    )


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_whose_camera_lies_past_the_range_says_so_everywhere(tmp_path: Path) -> None:
    # A target that differs from the generator's defaults in exposure alone, +1.5 EV, beyond
    # the top (0 EV) of the only searched range: the best trial ends at the bound, above the
    # floor.
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        "search=tpe",
        "search.space.exposure_ev.high=0",
        *one_difference("exposure_ev", exposure_ev=1.5),
        "finetune.enabled=false",
        "analysis.enabled=false",
        "hydra.run.dir=runs/x",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = RunSummary.load(tmp_path / "runs" / "x" / "summary.json")
    assert not summary.stop_reason.startswith("converged")
    assert summary.best_params["exposure_ev"] == pytest.approx(0.0, abs=AT_BOUND * 1.5)
    hits = {h["name"]: h for h in summary.at_range_bounds or []}
    assert hits["exposure_ev"]["side"] == "high"
    assert hits["exposure_ev"]["override"] == "search.space.exposure_ev.high=0.375"
    assert "exposure_ev at its upper bound 0 (widen with" in proc.stdout
    client = MlflowClient(summary.mlflow.tracking_uri)
    tags = client.get_run(summary.mlflow.run_id).data.tags
    assert tags["gen_loop.at_range_bounds"] == "exposure_ev=high"
