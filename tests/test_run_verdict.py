"""`run` end to end (smoke profile): the fine-tune's verdict on the demo target's labels."""

from __future__ import annotations

import json
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from mlflow.tracking import MlflowClient

from gen_loop.embedder.weights import shipped_base_weights
from gen_loop.loop.summary import RunSummary
from tests.cli import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(tmp_path: Path, name: str, *overrides: str) -> tuple[CompletedProcess[str], RunSummary]:
    """A smoke ``run`` into ``runs/<name>`` that must succeed; the process and its summary."""
    proc = run_cli(tmp_path, "run", "debug=smoke", *overrides, f"hydra.run.dir=runs/{name}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, RunSummary.load(tmp_path / "runs" / name / "summary.json")


def _assert_logged(summary: RunSummary, verdict: str, kept: str, dropped: str) -> None:
    """The run's MLflow run is tagged with ``verdict`` and logged the weights folder ``kept``,
    not ``dropped``."""
    client = MlflowClient(summary.mlflow.tracking_uri)
    run = client.get_run(summary.mlflow.run_id)
    assert run.data.tags["gen_loop.verdict"] == verdict
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert kept in artifacts and dropped not in artifacts


def test_a_fine_tune_that_misses_the_required_gain_is_rejected(tmp_path: Path) -> None:
    # No fine-tune can raise mAP50 by more than 0.99: the verdict must be "not improved".
    proc, summary = _run(tmp_path, "reject", "finetune.min_gain=0.99")
    verdict, evaluation = summary.verdict, summary.evaluation
    assert verdict.status == "not_improved" and verdict.improved is False
    assert verdict.accepted is False and verdict.min_gain == 0.99
    assert verdict.before == evaluation["before"]["map50"]
    assert verdict.after == evaluation["after"]["map50"]
    assert verdict.gain == pytest.approx(verdict.after - verdict.before)
    # The fine-tuned weights exist but are not the result: the base detector stands.
    assert Path(summary.finetuned_weights).is_file()
    assert Path(summary.result_weights).name == shipped_base_weights().name
    assert "verdict: NOT improved" in proc.stdout
    _assert_logged(summary, "not_improved", kept="rejected", dropped="finetuned")


def test_a_fine_tune_within_the_margin_is_accepted(tmp_path: Path) -> None:
    # A margin of -0.99 accepts any change the smoke fine-tune can make.
    proc, summary = _run(tmp_path, "accept", "finetune.min_gain=-0.99")
    assert summary.verdict.status == "improved" and summary.verdict.accepted
    assert summary.result_weights == summary.finetuned_weights
    assert "verdict: improved" in proc.stdout
    _assert_logged(summary, "improved", kept="finetuned", dropped="rejected")


def test_without_a_fine_tune_the_verdict_is_unknown(tmp_path: Path) -> None:
    proc, summary = _run(tmp_path, "off", "finetune.enabled=false")
    assert summary.verdict.status == "unknown" and summary.verdict.improved is None
    assert "fine-tuning disabled" in summary.verdict.message
    assert "verdict: unknown" in proc.stdout


def test_min_gain_out_of_range_is_a_config_error(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", "debug=smoke", "finetune.min_gain=2")
    assert proc.returncode != 0
    assert "finetune.min_gain" in proc.stdout + proc.stderr


def test_the_randomised_control_is_fine_tuned_and_judged_against(tmp_path: Path) -> None:
    from gen_loop.finetune.verdict import BELOW_CONTROL, IMPROVED, NOT_IMPROVED

    proc, summary = _run(
        tmp_path, "control", "finetune.control=randomised", "analysis.enabled=false"
    )
    verdict, evaluation = summary.verdict, summary.evaluation
    control = evaluation["control"]["map50"]
    assert verdict.control == control
    assert evaluation["control_set"] == {"images": summary.selected_count, "cameras": 16}
    run_dir = tmp_path / "runs" / "control"
    manifest = json.loads((run_dir / "control" / "selected" / "manifest.json").read_text())
    assert len(manifest["samples"]) == summary.selected_count
    assert len({c["color_temp_k"] for c in manifest["cameras"]}) == 16  # 16 random cameras
    # The verdict follows the rule on the logged numbers.
    gain, margin = verdict.after - verdict.before, verdict.after - control
    if gain <= verdict.min_gain:
        assert verdict.status == NOT_IMPROVED
    elif margin <= verdict.min_gain:
        assert verdict.status == BELOW_CONTROL and not verdict.accepted
    else:
        assert verdict.status == IMPROVED and verdict.accepted
    expected = {
        "finetune": summary.finetuned_weights,
        "control": str(run_dir / "control" / "finetune" / "train" / "weights" / "best.pt"),
        "base": str(shipped_base_weights()),
    }
    assert summary.result_weights in expected.values()
    assert "target mAP50 randomised control" in proc.stdout
    client = MlflowClient(summary.mlflow.tracking_uri)
    run = client.get_run(summary.mlflow.run_id)
    assert run.data.metrics["control_map50"] == pytest.approx(control)
    assert "control" in {a.path for a in client.list_artifacts(run.info.run_id)}
