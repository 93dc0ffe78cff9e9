"""How the loop's runs look in the MLflow UI: the runs table's columns and the runs' names.

MLflow 3.17's runs table shows no metric by default (its default columns are Source, Models
and Dataset). An experiment tag ``mlflow.sharedViewState.<key>`` holding a view state (JSON:
the UI state's ``selectedColumns``, optionally search facets such as ``orderByKey``) is what
the UI applies when the URL carries ``viewStateShareKey=<key>``; the printed link carries it
(:func:`gen_loop.tracking.links.runs_table_url`). The trial runs are tagged
``mlflow.runType=evaluation`` (:mod:`gen_loop.tracking.tracker`): on a browser's first visit
the UI expands the parents of such runs, so the table opens with the trials listed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from gen_loop.config.schema import TargetConfig
from gen_loop.tracking.links import SHARED_VIEW_PREFIX

#: The key of the loop's shared view of the runs table.
VIEW_KEY = "gen_loop"

#: Metrics shown as columns, in this order: the parent's result, the children's distance.
VIEW_METRICS = ("best_distance", "best_over_floor", "distance", "default_distance", "after_map50")

#: Tags shown as columns (a child's best mark, the parent's verdict).
VIEW_TAGS = ("gen_loop.best", "gen_loop.verdict")


def _column(kind: str, key: str) -> str:
    """A column key as the UI writes it: ``metrics.`distance```."""
    return f"{kind}.`{key}`"


def view_state(searched: Sequence[str]) -> str:
    """The runs table's view (JSON): the loop's metrics, tags and the searched parameters.

    ``columnOrder`` keeps this order (without it the UI sorts each group by name).
    """
    columns = [
        *(_column("metrics", m) for m in VIEW_METRICS),
        *(_column("tags", t) for t in VIEW_TAGS),
        *(_column("params", p) for p in searched),
    ]
    return json.dumps({"selectedColumns": columns, "columnOrder": columns})


def view_tags(searched: Sequence[str]) -> dict[str, str]:
    """The experiment tag holding the loop's view of the runs table."""
    return {SHARED_VIEW_PREFIX + VIEW_KEY: view_state(searched)}


def target_label(cfg: TargetConfig) -> str:
    """A few words for the target: ``demo camera``, ``folder clientcam``, ``video a.mp4``."""
    if cfg.path is None:
        return "demo camera"
    path = Path(cfg.path)
    kind = "video" if path.is_file() else "folder"
    return f"{kind} {path.name or path}"


def parent_run_name(target: str, n_searched: int, when: datetime) -> str:
    """The parent run's name: what was searched against what, and when it started."""
    return f"{target}: {n_searched} params, {when:%Y-%m-%d %H:%M}"
