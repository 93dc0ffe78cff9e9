"""MLflow's limits on keys, values and batches, and the entries and batches that respect them.

Every param, tag and metric goes through here on the caller's thread, so a bad key or an
over-long value is fixed (with a warning) before anything is queued or sent.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

_logger = logging.getLogger(__name__)

# Limits of MLflow 3.x (mlflow.utils.validation); read from mlflow when it has them.
_MAX_PARAM_VAL_LENGTH = 6000
_MAX_TAG_VAL_LENGTH = 8000
_MAX_KEY_LENGTH = 250
_MAX_PARAMS_TAGS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000
_MAX_ENTITIES_PER_BATCH = 1000

# Characters MLflow accepts in param, metric and tag keys (POSIX rule, colon included).
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def _limit(name: str, default: int) -> int:
    try:
        from mlflow.utils import validation
    except ImportError:  # pragma: no cover - mlflow is a dependency
        return default
    return int(getattr(validation, name, default))


def _flatten(params: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _sanitize_key(key: str) -> str:
    """Make ``key`` acceptable to MLflow: allowed characters, a normalised relative path."""
    cleaned = _BAD_KEY_CHARS.sub("_", key)[:_MAX_KEY_LENGTH]
    # MLflow rejects names that change under posixpath.normpath ("a//b", "./a", "a/", "/a")
    # and names that start with ".." ("..0").
    parts = [p if p not in (".", "..") else p.replace(".", "_") for p in cleaned.split("/") if p]
    cleaned = "/".join(parts) or "_"
    return "_" + cleaned[1:] if cleaned.startswith("..") else cleaned


def _truncate(value: str, limit: int, what: str) -> str:
    if len(value) <= limit:
        return value
    _logger.warning("%s is %d characters; truncated to MLflow's %d.", what, len(value), limit)
    return value[:limit]


def param_entries(params: Mapping[str, object]) -> dict[str, str]:
    """Flattened, sanitised keys to ``str()``-ed, truncated values (first of colliding keys)."""
    limit = _limit("MAX_PARAM_VAL_LENGTH", _MAX_PARAM_VAL_LENGTH)
    entries: dict[str, str] = {}
    for raw_key, value in _flatten(params).items():
        key = _sanitize_key(raw_key)
        if key in entries:
            _logger.warning("Param %r collides with another key after sanitising.", raw_key)
            continue
        entries[key] = _truncate(str(value), limit, f"Param {key!r}")
    return entries


def tag_entries(tags: Mapping[str, object]) -> list[RunTag]:
    """Tags with sanitised keys and ``str()``-ed, truncated values."""
    from mlflow.entities import RunTag

    limit = _limit("MAX_TAG_VAL_LENGTH", _MAX_TAG_VAL_LENGTH)
    return [
        RunTag(_sanitize_key(k), _truncate(str(v), limit, f"Tag {k!r}")) for k, v in tags.items()
    ]


def metric_entries(metrics: Mapping[str, float], step: int | None) -> list[Metric]:
    """Finite metric values stamped now at ``step`` (0 when None); others skipped, warned."""
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    entries = []
    for key, value in metrics.items():
        number = float(value)
        if not math.isfinite(number):
            _logger.warning("Metric %r = %r is not finite; not logged.", key, value)
            continue
        entries.append(Metric(_sanitize_key(key), number, timestamp, step or 0))
    return entries


def batches(
    params: list[Param], tags: list[RunTag], metrics: list[Metric]
) -> Iterator[tuple[list[Param], list[RunTag], list[Metric]]]:
    """Split entries into ``log_batch`` calls within MLflow's per-call limits, order kept."""
    per_kind = _limit("MAX_PARAMS_TAGS_PER_BATCH", _MAX_PARAMS_TAGS_PER_BATCH)
    per_metrics = _limit("MAX_METRICS_PER_BATCH", _MAX_METRICS_PER_BATCH)
    per_call = _limit("MAX_ENTITIES_PER_BATCH", _MAX_ENTITIES_PER_BATCH)
    while params or tags or metrics:
        p, t = params[:per_kind], tags[:per_kind]
        m = metrics[: max(0, min(per_metrics, per_call - len(p) - len(t)))]
        yield p, t, m
        params, tags, metrics = params[len(p) :], tags[len(t) :], metrics[len(m) :]


def write_batch(
    client: MlflowClient,
    run_id: str,
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
    metrics: Sequence[Metric] = (),
) -> None:
    """Send entries to one run in as few ``log_batch`` calls as the limits allow."""
    for p, t, m in batches(list(params), list(tags), list(metrics)):
        client.log_batch(run_id, metrics=m, params=p, tags=t)
