"""A Hydra callback that makes one MLflow *sweep run* and nests each job's parent run under it.

Enabled in ``conf/run.yaml`` (``hydra.callbacks.sweep_run``); it acts only in ``--multirun``.
The sweep run's id reaches the jobs through a file in the sweep folder, because jobs of the
joblib launcher run in other processes; each job reads it into the ``GEN_LOOP_SWEEP_RUN_ID``
environment variable, which ``conf/tracking/mlflow.yaml`` reads into ``tracking.parent_run_id``.
"""

from __future__ import annotations

import atexit
import logging
import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import OmegaConf

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from gen_loop.tracking import Tracker

__all__ = ["SWEEP_RUN_ENV", "SWEEP_RUN_FILE", "SweepRunCallback"]

SWEEP_RUN_ENV = "GEN_LOOP_SWEEP_RUN_ID"
SWEEP_RUN_FILE = "mlflow_sweep_run_id"

log = logging.getLogger(__name__)


def _is_multirun(config: DictConfig) -> bool:
    return bool(config.hydra.mode == RunMode.MULTIRUN)


class SweepRunCallback(Callback):
    """Create the sweep run at the start of a multirun, end it (with the report) at the end.

    The sweep run lives in ``tracking.experiment`` at ``tracking.uri`` (the same default store as
    the jobs: ``mlflow.db`` in the working directory), is named after the sweep folder, holds the
    sweep's overrides as a param and, at the end, ``sweep_report.md``/``.csv`` as artifacts.
    A sweep that stops early (a job failed: Hydra then skips ``on_multirun_end``) leaves the
    sweep run FAILED when the process exits, instead of RUNNING forever.
    """

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._tracker: Tracker | None = None
        self._sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Create the sweep run and publish its id (file in the sweep folder + env variable)."""
        from gen_loop.tracking import Tracker

        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        uri = config.tracking.uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
        tracker = Tracker(
            str(uri),
            str(config.tracking.experiment),
            f"sweep-{sweep_dir.name}",
            artifact_location=config.tracking.artifact_location,
        )
        self._tracker = self._stack.enter_context(tracker)
        atexit.register(self._end_unfinished)
        self._sweep_dir = sweep_dir
        # Unresolved: an override may hold an interpolation of a job's value (${hydra:job.num}).
        overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        assert isinstance(overrides, list)
        tracker.log_params({"sweep.overrides": " ".join(str(o) for o in overrides)})
        tracker.set_tags({"gen_loop.role": "sweep", "gen_loop.sweep_dir": str(sweep_dir)})
        (sweep_dir / SWEEP_RUN_FILE).write_text(tracker.run_id)
        os.environ[SWEEP_RUN_ENV] = tracker.run_id
        log.info("MLflow sweep run %s (%s)", tracker.run_id, sweep_dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """In a sweep job's process, read the sweep run id into the environment."""
        if not _is_multirun(config):
            return
        marker = Path(str(config.hydra.sweep.dir)) / SWEEP_RUN_FILE
        if marker.exists():
            os.environ[SWEEP_RUN_ENV] = marker.read_text().strip()
        else:  # e.g. the sweep folder's name changed between processes
            log.warning("no %s in the sweep folder; this job's run is not nested", marker)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write the sweep report, log it to the sweep run and end the run."""
        from gen_loop.sweep.report import collect_jobs, write_report

        try:
            if self._tracker is not None and self._sweep_dir is not None:
                md_path, csv_path, _ = write_report(self._sweep_dir)
                self._tracker.log_artifact(md_path)
                self._tracker.log_artifact(csv_path)
                rows = collect_jobs(self._sweep_dir)
                done = [r for r in rows if r["best_distance"] is not None]
                self._tracker.log_metrics(
                    {"n_jobs": float(len(rows)), "n_jobs_with_summary": float(len(done))}
                )
                if done:
                    best = min(float(r["best_distance"]) for r in done)
                    self._tracker.log_metrics({"best_distance": best})
                print(f"sweep report: {md_path}", flush=True)
        finally:
            os.environ.pop(SWEEP_RUN_ENV, None)
            self._tracker = None
            self._stack.close()
            atexit.unregister(self._end_unfinished)

    def _end_unfinished(self) -> None:
        if self._tracker is None:
            return
        self._tracker = None
        error = RuntimeError("the sweep stopped before its end: a job failed or was interrupted")
        self._stack.__exit__(RuntimeError, error, None)  # the Tracker ends the run FAILED
