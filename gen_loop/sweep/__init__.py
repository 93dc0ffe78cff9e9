"""Hydra sweeps: one MLflow sweep run over the jobs of a ``--multirun``, and their report."""

from __future__ import annotations

from gen_loop.sweep.callback import SWEEP_RUN_ENV, SWEEP_RUN_FILE, SweepRunCallback
from gen_loop.sweep.report import collect_jobs, sweep_report_main, write_report

__all__ = [
    "SWEEP_RUN_ENV",
    "SWEEP_RUN_FILE",
    "SweepRunCallback",
    "collect_jobs",
    "sweep_report_main",
    "write_report",
]
