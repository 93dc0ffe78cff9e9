"""The fine-tune verdict: a result is called better only if labeled target mAP rose."""

from __future__ import annotations

import pytest

from gen_loop.finetune.verdict import IMPROVED, NOT_IMPROVED, UNKNOWN, gain_verdict


def _evaluation(before: float, after: float) -> dict[str, dict[str, float]]:
    return {"before": {"map50": before, "map50_95": 0.1}, "after": {"map50": after}}


def test_a_gain_above_the_margin_is_improved_and_accepted() -> None:
    verdict = gain_verdict(_evaluation(0.17, 0.54), min_gain=0.01, require_gain=True)
    assert verdict.status == IMPROVED and verdict.improved is True and verdict.accepted
    assert verdict.gain == pytest.approx(0.37)
    assert verdict.before == 0.17 and verdict.after == 0.54
    assert "0.1700 -> 0.5400" in verdict.message


@pytest.mark.parametrize("after", [0.50, 0.505, 0.51, 0.40])
def test_a_gain_at_or_below_the_margin_is_not_improved_and_rejected(after: float) -> None:
    verdict = gain_verdict(_evaluation(0.50, after), min_gain=0.01, require_gain=True)
    assert verdict.status == NOT_IMPROVED and verdict.improved is False
    assert not verdict.accepted
    assert "NOT improved" in verdict.message and "rejected" in verdict.message


def test_without_require_gain_the_weights_are_kept_but_the_verdict_stands() -> None:
    verdict = gain_verdict(_evaluation(0.50, 0.45), min_gain=0.0, require_gain=False)
    assert verdict.status == NOT_IMPROVED and verdict.accepted
    assert "finetune.require_gain=false" in verdict.message


def test_a_negative_margin_tolerates_a_small_loss() -> None:
    verdict = gain_verdict(_evaluation(0.50, 0.49), min_gain=-0.02, require_gain=True)
    assert verdict.status == IMPROVED


@pytest.mark.parametrize(
    "evaluation",
    [
        {"skipped": "no labeled target data: evaluation skipped"},
        {"after": {"map50": 0.5}},
        {},
    ],
)
def test_without_before_and_after_the_verdict_is_unknown(evaluation: dict) -> None:
    verdict = gain_verdict(evaluation, min_gain=0.01, require_gain=True)
    assert verdict.status == UNKNOWN and verdict.improved is None and verdict.accepted
    assert verdict.gain is None
    assert verdict.message.startswith("unknown")
    if "skipped" in evaluation:
        assert "no labeled target data" in verdict.message


def test_another_metric_can_be_compared() -> None:
    evaluation = {
        "before": {"map50": 0.1, "map50_95": 0.3},
        "after": {"map50": 0.9, "map50_95": 0.3},
    }
    verdict = gain_verdict(evaluation, 0.01, True, metric="map50_95")
    assert verdict.status == NOT_IMPROVED and verdict.metric == "map50_95"


def test_an_improvement_must_also_beat_the_randomised_control() -> None:
    from gen_loop.finetune.verdict import BELOW_CONTROL, control_stands, control_verdict

    improved = gain_verdict(_evaluation(0.17, 0.54), min_gain=0.01, require_gain=True)
    beats = control_verdict(improved, 0.48, require_gain=True)
    assert beats.status == IMPROVED and beats.accepted and beats.control == 0.48
    assert "beats the domain-randomised control map50 0.4800" in beats.message
    assert not control_stands(beats)
    # Within the margin of the control: below it; the control's weights are the result.
    below = control_verdict(improved, 0.535, require_gain=True)
    assert below.status == BELOW_CONTROL and below.improved is False and not below.accepted
    assert "NOT better than randomising the camera" in below.message
    assert "control's weights are the run's result" in below.message
    assert control_stands(below)
    kept = control_verdict(improved, 0.60, require_gain=False)
    assert kept.status == BELOW_CONTROL and kept.accepted and not control_stands(kept)


def test_a_control_no_better_than_the_base_leaves_the_base_standing() -> None:
    from gen_loop.finetune.verdict import BELOW_CONTROL, control_stands, control_verdict

    improved = gain_verdict(_evaluation(0.50, 0.53), min_gain=0.02, require_gain=True)
    below = control_verdict(improved, 0.515, require_gain=True)
    assert below.status == BELOW_CONTROL and "base detector stands" in below.message
    assert not control_stands(below)  # the control did not beat the base by the margin
    # A fine-tune that did not beat the base keeps its verdict; the control is only noted.
    worse = gain_verdict(_evaluation(0.50, 0.45), min_gain=0.01, require_gain=True)
    noted = control_verdict(worse, 0.70, require_gain=True)
    assert noted.status == NOT_IMPROVED and noted.control == 0.70
    assert noted.message.endswith("domain-randomised control map50 0.7000")
