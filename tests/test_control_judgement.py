"""The loop's verdict against the domain-randomised control (``finetune.control=randomised``):
what the summary says when the control beats it, loses to it, or its fine-tune fails.

The control's fine-tune itself runs in tests/test_run_verdict.py (a real one, end to end);
here ``judge_against_control`` gets its outcome directly, so each branch is checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gen_loop.errors import FinetuneError
from gen_loop.finetune.verdict import BELOW_CONTROL, IMPROVED, control_stands, gain_verdict
from gen_loop.loop.control_stage import ControlResult, judge_against_control
from gen_loop.loop.summary import RunSummary

EVALUATION = {"before": {"map50": 0.20}, "after": {"map50": 0.50}}


def _improved(make_summary: Callable[..., RunSummary]) -> RunSummary:
    summary = make_summary(evaluation=dict(EVALUATION))
    summary.verdict = gain_verdict(summary.evaluation, 0.01, True)
    assert summary.verdict.status == IMPROVED and summary.verdict.accepted
    return summary


def _control(map50: float, weights: Path) -> Callable[[], ControlResult]:
    return lambda: ControlResult({"map50": map50, "map50_95": map50 / 2}, weights, 64, 8)


def test_a_loop_result_above_the_control_stays_accepted(
    make_summary: Callable[..., RunSummary], tmp_path: Path
) -> None:
    summary = _improved(make_summary)
    weights = judge_against_control(summary, _control(0.30, tmp_path / "c.pt"), True)
    assert weights == tmp_path / "c.pt"
    assert summary.verdict.accepted and summary.verdict.status == IMPROVED
    assert summary.verdict.control == pytest.approx(0.30)
    assert summary.evaluation["control"]["map50"] == pytest.approx(0.30)
    assert summary.evaluation["control_set"] == {"images": 64, "cameras": 8}
    assert not control_stands(summary.verdict)


def test_a_control_as_good_as_the_loop_rejects_it_and_stands_as_the_result(
    make_summary: Callable[..., RunSummary], tmp_path: Path
) -> None:
    summary = _improved(make_summary)
    judge_against_control(summary, _control(0.55, tmp_path / "c.pt"), True)
    assert summary.verdict.status == BELOW_CONTROL and not summary.verdict.accepted
    assert "domain-randomised control map50 0.5500" in summary.verdict.message
    assert control_stands(summary.verdict)  # it beat the base: the run's result


def test_a_failed_control_fine_tune_keeps_the_verdict_and_says_so(
    make_summary: Callable[..., RunSummary], caplog: pytest.LogCaptureFixture
) -> None:
    summary = _improved(make_summary)
    before = summary.verdict

    reason = "ultralytics training failed: CUDA out of memory"

    def fails() -> Any:
        raise FinetuneError(f"{reason}\n(traceback)")

    assert judge_against_control(summary, fails, True) is None
    assert summary.verdict.accepted and summary.verdict.status == before.status
    assert summary.verdict.control is None
    assert summary.evaluation["control_failed"] == reason
    assert summary.verdict.message.endswith(
        f"not compared with the domain-randomised control (its fine-tune failed: {reason})"
    )
    assert "control's fine-tune failed" in caplog.text
    assert not control_stands(summary.verdict)
