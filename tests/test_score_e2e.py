"""`python -m gen_loop run score=<option>` end to end (smoke profile) for the distribution
scorers: the noise floor, the search and the selection all go through each scorer."""

from __future__ import annotations

from pathlib import Path

import pytest

from gen_loop.loop.summary import RunSummary
from tests.cli import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("option", ["frechet", "kid", "prdc"])
def test_run_with_a_distribution_scorer(tmp_path: Path, option: str) -> None:
    proc = run_cli(
        tmp_path,
        "run",
        "debug=smoke",
        f"score={option}",
        "finetune.enabled=false",
        "hydra.run.dir=runs/r",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = RunSummary.load(tmp_path / "runs" / "r" / "summary.json")
    config = (tmp_path / "runs" / "r" / "config.yaml").read_text()
    assert "metric: " + ("mmd" if option == "kid" else option) in config
    assert summary.n_trials == 6 and summary.n_failed == 0
    assert summary.noise_floor.mean > 0 and summary.noise_floor.batch_size == 8
    assert 0 <= summary.best_distance <= summary.default_distance
    # Selection used the scorer's per-sample distances and the target's own quantile.
    assert 0 < summary.selected_count <= summary.pool_size == 24
    assert summary.selection_threshold > 0
