"""Tracking stage: the MLflow parent/child runs of a loop and the pictures logged to them."""

from __future__ import annotations

from gen_loop.tracking._run_logger import ERROR_TAG, PARENT_TAG, TRIAL_TAG
from gen_loop.tracking._server import check_server
from gen_loop.tracking._sqlite import check_writable
from gen_loop.tracking.plots import (
    CLASS_COLORS,
    history_figure,
    image_grid,
    importance_figure,
    save_png,
    side_by_side,
)
from gen_loop.tracking.tracker import Tracker
from gen_loop.tracking.trial_run import TrialRun

__all__ = [
    "CLASS_COLORS",
    "ERROR_TAG",
    "PARENT_TAG",
    "TRIAL_TAG",
    "Tracker",
    "TrialRun",
    "check_server",
    "check_writable",
    "history_figure",
    "image_grid",
    "importance_figure",
    "save_png",
    "side_by_side",
]
