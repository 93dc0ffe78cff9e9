"""Tracking stage: the MLflow parent/child runs of a loop and the pictures logged to them."""

from __future__ import annotations

from gen_loop.tracking.mlflow_tracker import Tracker, TrialRun, check_server, git_commit
from gen_loop.tracking.plots import (
    CLASS_COLORS,
    history_figure,
    image_grid,
    importance_figure,
    save_png,
    side_by_side,
)

__all__ = [
    "CLASS_COLORS",
    "Tracker",
    "TrialRun",
    "check_server",
    "git_commit",
    "history_figure",
    "image_grid",
    "importance_figure",
    "save_png",
    "side_by_side",
]
