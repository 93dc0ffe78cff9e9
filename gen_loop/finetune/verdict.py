"""Did fine-tuning help? The loop calls a result better only if target mAP rose on labeled data.

A lower embedding distance has not always bought detector accuracy, so the loop measures the
downstream effect where labeled target images exist (the demo target's labels, or
``target.labels``) and refuses to call the fine-tuned detector an improvement when its mAP50
did not rise by more than ``finetune.min_gain``. Without labels the verdict is ``unknown``;
when the fine-tune itself failed (``finetune=command``: the trainer exited non-zero or wrote
no usable result), ``failed``. With ``finetune.control=randomised`` an improvement must also
beat a domain-randomised control by that margin, or the verdict is ``below_control``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

IMPROVED = "improved"
NOT_IMPROVED = "not_improved"
UNKNOWN = "unknown"
FAILED = "failed"
BELOW_CONTROL = "below_control"


@dataclass(frozen=True)
class Verdict:
    """The fine-tune's verdict on the labeled target holdout.

    Attributes:
        status: ``improved``, ``not_improved``, ``unknown`` (no labeled data, no fine-tune),
            ``failed`` (the fine-tune did not produce weights) or ``below_control`` (better
            than the base, not than the domain-randomised control).
        improved: True, False, or None when unknown.
        metric: the metric compared (``map50``).
        before: the base detector's value on the holdout (None when unknown).
        after: the fine-tuned detector's value (None when unknown).
        gain: ``after - before`` (None when unknown).
        min_gain: the margin the gain had to exceed.
        accepted: whether the fine-tuned weights are the run's result (False when the gain
            was required and missed, or the fine-tune failed).
        message: one plain sentence for the console.
        control: the domain-randomised control's value (``finetune.control=randomised``).
    """

    status: str
    improved: bool | None
    metric: str
    before: float | None
    after: float | None
    gain: float | None
    min_gain: float
    accepted: bool
    message: str
    control: float | None = None


def unknown_verdict(reason: str, min_gain: float = 0.0, metric: str = "map50") -> Verdict:
    """A verdict that cannot be given, with the reason."""
    return Verdict(UNKNOWN, None, metric, None, None, None, min_gain, True, reason)


def failed_verdict(reason: str, min_gain: float = 0.0, metric: str = "map50") -> Verdict:
    """The verdict of a fine-tune that failed: no fine-tuned weights, the base detector stands."""
    return Verdict(
        FAILED,
        None,
        metric,
        None,
        None,
        None,
        min_gain,
        False,
        f"fine-tune failed: {reason}; the base detector stands",
    )


def gain_verdict(
    evaluation: Mapping[str, Any],
    min_gain: float,
    require_gain: bool,
    metric: str = "map50",
) -> Verdict:
    """Compare ``evaluation['after'][metric]`` with ``evaluation['before'][metric]``.

    Args:
        evaluation: ``{"before": metrics, "after": metrics}`` as written by the fine-tune
            step, or without them (``skipped``) when there was no labeled target data.
        min_gain: the fine-tune counts as an improvement only if ``after - before > min_gain``
            (absolute, in metric units: 0.01 is one mAP point).
        require_gain: when True, weights that did not improve are not accepted as the result.
        metric: the key compared, ``map50`` by default.
    """
    before = (evaluation.get("before") or {}).get(metric)
    after = (evaluation.get("after") or {}).get(metric)
    if before is None or after is None:
        reason = evaluation.get("skipped") or "no before/after evaluation on labeled target data"
        return unknown_verdict(
            f"unknown: {reason}; the embedding distance alone does not show the detector got "
            "better",
            min_gain,
            metric,
        )
    gain = float(after) - float(before)
    change = f"target {metric} {before:.4f} -> {after:.4f} ({gain:+.4f}, needed > {min_gain:+.4f})"
    if gain > min_gain + 1e-9:  # "by more than": a gain equal to the margin (in float) is not
        return Verdict(
            IMPROVED, True, metric, before, after, gain, min_gain, True, f"improved: {change}"
        )
    if require_gain:
        message = (
            f"NOT improved: {change}; the fine-tuned weights are rejected and the base detector "
            "stands (finetune.require_gain=true)"
        )
    else:
        message = (
            f"NOT improved: {change}; the fine-tuned weights are kept only because "
            "finetune.require_gain=false"
        )
    return Verdict(
        NOT_IMPROVED, False, metric, before, after, gain, min_gain, not require_gain, message
    )


def control_verdict(verdict: Verdict, control: float, require_gain: bool) -> Verdict:
    """``verdict`` measured against the domain-randomised control's ``control`` value too.

    An improvement on the base stands only if ``after - control > min_gain``; otherwise the
    status is ``below_control`` and, with ``require_gain``, the loop's weights are not
    accepted: randomising the camera without any search did as well.
    """
    versus = f"domain-randomised control {verdict.metric} {control:.4f}"
    if verdict.status != IMPROVED or verdict.after is None:
        return replace(verdict, control=control, message=f"{verdict.message}; {versus}")
    margin = verdict.after - control
    if margin > verdict.min_gain + 1e-9:
        return replace(
            verdict, control=control, message=f"{verdict.message}, and beats the {versus}"
        )
    if not require_gain:
        kept = "kept only because finetune.require_gain=false"
    elif control - (verdict.before or 0.0) > verdict.min_gain + 1e-9:
        kept = "rejected; the control's weights are the run's result"
    else:
        kept = "rejected; the base detector stands"
    return replace(
        verdict,
        status=BELOW_CONTROL,
        improved=False,
        accepted=not require_gain,
        control=control,
        message=(
            f"NOT better than randomising the camera: target {verdict.metric} "
            f"{verdict.after:.4f} against the {versus} ({margin:+.4f}, needed > "
            f"{verdict.min_gain:+.4f}; base {verdict.before:.4f}); the fine-tuned weights are "
            f"{kept}"
        ),
    )


def control_stands(verdict: Verdict) -> bool:
    """Whether the domain-randomised control's weights are the run's result: the loop's were
    rejected as no better than the control, and the control itself beat the base."""
    if verdict.status != BELOW_CONTROL or verdict.accepted or verdict.control is None:
        return False
    return verdict.control - (verdict.before or 0.0) > verdict.min_gain + 1e-9
