"""What the user sees on the console: a line per trial and a final table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np


def format_params(params: Mapping[str, object]) -> str:
    """``name=value`` pairs, numbers to 3 significant digits."""
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def trial_line(
    number: int,
    distance: float | None,
    best: float,
    best_trial: int | None,
    floor: float,
    params: Mapping[str, object],
    error: str | None = None,
) -> str:
    """One progress line per trial."""
    value = f"{distance:8.4f}" if distance is not None else "  failed"
    mark = "*" if best_trial == number else " "
    line = (
        f"trial {number:4d} | dist {value}{mark}| best {best:8.4f} (#{best_trial}) "
        f"| floor {floor:.4f} | {format_params(params)}"
    )
    return line + (f" | error: {error}" if error else "")


def final_table(summary: Mapping[str, Any]) -> str:
    """The end-of-run table: best params, distances, stop reason, selection, fine-tune."""
    rows: list[tuple[str, str]] = [
        ("best distance", f"{summary['best_distance']:.4f} (trial {summary['best_trial']})"),
        ("default params distance", f"{summary['default_distance']:.4f}"),
        (
            "noise floor",
            f"{summary['noise_floor']['mean']:.4f} "
            f"± {summary['noise_floor']['std']:.4f} at batch "
            f"{summary['noise_floor']['batch_size']}",
        ),
        ("best / floor", f"{summary['best_distance'] / summary['noise_floor']['mean']:.2f}x"),
        ("trials", f"{summary['n_trials']} ({summary['n_failed']} failed)"),
        ("stopped because", summary["stop_reason"]),
        ("selected samples", f"{summary['selected_count']} of {summary['pool_size']}"),
    ]
    for name, value in summary["best_params"].items():
        hidden = summary.get("target_hidden_params", {}).get(name)
        extra = f"   (hidden {hidden:.4g})" if isinstance(hidden, float) else ""
        rows.append(
            (f"  {name}", f"{value:.4g}{extra}" if isinstance(value, float) else str(value))
        )
    evaluation = summary.get("evaluation") or {}
    for stage in ("before", "after"):
        metrics = evaluation.get(stage)
        if metrics:
            rows.append(
                (
                    f"target mAP50 {stage}",
                    f"{metrics['map50']:.4f}  (mAP50-95 {metrics['map50_95']:.4f})",
                )
            )
    if evaluation.get("skipped"):
        rows.append(("evaluation", evaluation["skipped"]))
    verdict = summary.get("verdict") or {}
    if verdict.get("message"):
        rows.append(("verdict", verdict["message"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)} : {v}" for k, v in rows)


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write summary.json atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=_jsonable))
    tmp.replace(path)


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[call-overload]
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
