"""The ``metrics.json`` a trainer command writes (``gen_loop/finetune/COMMAND.md``), read and
checked: the fine-tuned weights and the target mAP of the base and fine-tuned detectors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gen_loop.finetune.train import DetectionMetrics

RESULT_FILE = "metrics.json"


def detection_metrics_json(metrics: DetectionMetrics) -> dict[str, Any]:
    """One ``before`` / ``after`` entry of ``metrics.json`` (``n_images`` when known)."""
    entry: dict[str, Any] = {
        "map50": metrics.map50,
        "map50_95": metrics.map50_95,
        "per_class_ap50": dict(metrics.per_class_map50),
    }
    if metrics.n_images >= 0:
        entry["n_images"] = metrics.n_images
    return entry


def read_result(path: Path, evaluated: bool) -> tuple[Path, dict[str, DetectionMetrics], str]:
    """The weights, the ``before``/``after`` metrics and the ``warning`` of ``metrics.json``.

    Args:
        path: the ``metrics.json``; a relative ``weights`` path is relative to its folder.
        evaluated: labeled target data was given, so ``before`` and ``after`` are required
            (otherwise they are not read).

    Raises:
        ValueError: saying what is missing or malformed (the file, a key, a value).
    """
    if not path.is_file():
        raise ValueError(f"wrote no {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(data).__name__}")
    weights = data.get("weights")
    if not isinstance(weights, str) or not weights:
        raise ValueError(f"{path} has no 'weights' (the fine-tuned checkpoint's path)")
    weights_path = Path(weights) if Path(weights).is_absolute() else path.parent / weights
    if not weights_path.is_file() or weights_path.stat().st_size == 0:
        raise ValueError(f"{path} names weights {weights_path}, which is not a non-empty file")
    warning = data.get("warning") or ""
    if not isinstance(warning, str):
        raise ValueError(f"{path}: 'warning' must be a string")
    metrics = {}
    if evaluated:
        for stage in ("before", "after"):
            metrics[stage] = _metrics(data.get(stage), f"{path}: '{stage}'")
    return weights_path, metrics, warning


def _metrics(entry: Any, where: str) -> DetectionMetrics:
    """One ``before`` / ``after`` entry as :class:`DetectionMetrics`."""
    if not isinstance(entry, dict):
        raise ValueError(
            f"{where} is missing: with labeled target data, give the base ('before') and the "
            "fine-tuned ('after') detector's metrics on {{eval_yaml}}"
        )
    per_class = entry.get("per_class_ap50")
    if not isinstance(per_class, dict):
        raise ValueError(f"{where} needs 'per_class_ap50': {{class name: AP50}}")
    n_images = entry.get("n_images", -1)
    if not isinstance(n_images, int) or isinstance(n_images, bool):
        raise ValueError(f"{where}: 'n_images' must be an integer")
    return DetectionMetrics(
        map50=_fraction(entry.get("map50"), f"{where} 'map50'"),
        map50_95=_fraction(entry.get("map50_95"), f"{where} 'map50_95'"),
        per_class_map50={
            str(name): _fraction(value, f"{where} per_class_ap50 {name!r}")
            for name, value in per_class.items()
        },
        n_images=n_images,
    )


def _fraction(value: Any, where: str) -> float:
    """A number in [0, 1] (an AP), or ValueError naming ``where``."""
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ValueError(f"{where} must be a number in [0, 1], got {value!r}")
    return float(value)
