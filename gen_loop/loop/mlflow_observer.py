"""The loop's MLflow record: one parent run per loop, one child run per trial.

:class:`MlflowObserver` turns the loop's events (:mod:`gen_loop.loop.observer`) into calls
of a :class:`~gen_loop.tracking.Tracker`, which owns the runs and counts what an unreachable
store loses. Each trial's sample grid is drawn, PNG-encoded and logged by a background thread
while the next trial runs (it was the largest cost of a trial outside generate + embed, and
the encoder releases the GIL: experiments/throughput/RESULTS.md); all are logged when the
observer closes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from gen_loop._git import git_commit
from gen_loop._secrets import mask_url
from gen_loop.config.schema import TrackingConfig
from gen_loop.loop.mlflow_view import parent_run_name, target_label, view_tags
from gen_loop.loop.observer import FinishOutputs, LoopObserver, RunStart, TrialEnd, TrialStart
from gen_loop.loop.run_note import NOTE_TAG, REPORT_ARTIFACT, result_note, start_note
from gen_loop.loop.summary import MlflowInfo, RunSummary
from gen_loop.search.attribution import label, named
from gen_loop.search.uncertainty import ParamUncertainty
from gen_loop.tracking import Tracker, TrialRun, image_grid

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

#: The run folder's record of its MLflow parent run (a resumed run continues it).
RUN_ID_FILE = "mlflow_run_id"


def store_uri(cfg: TrackingConfig) -> str:
    """``tracking.uri``, or the SQLite store ``mlflow.db`` in the working directory."""
    return cfg.uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def open_tracker(cfg: TrackingConfig, run_dir: Path) -> Tracker:
    """The tracker of a run folder: a new parent run, or the folder's earlier one resumed."""
    marker = run_dir / RUN_ID_FILE
    return Tracker(
        store_uri(cfg),
        cfg.experiment,
        run_dir.name,
        artifact_location=cfg.artifact_location,
        resume_run_id=marker.read_text().strip() if marker.exists() else None,
        parent_run_id=cfg.parent_run_id,
    )


class MlflowObserver(LoopObserver):
    """Logs the loop to MLflow through ``tracker`` (already entered).

    Use as a context manager inside the tracker's ``with``: leaving it waits for the sample
    grids still being drawn and for the tracker's background writer to send every record.

    Args:
        tracker: the parent run's tracker.
        trial_images: images in each trial's sample grid (0: no grid).
        experiment: the experiment name, for the summary.
    """

    def __init__(self, tracker: Tracker, trial_images: int, experiment: str = "") -> None:
        self.tracker = tracker
        self.trial_images = trial_images
        self.experiment = experiment
        self._grids = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gen_loop-grid")
        self._trials: dict[int, tuple[ExitStack, TrialRun]] = {}
        self._plots: list[str] = []  # the plots' artifact paths, for the description

    def __enter__(self) -> MlflowObserver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for stack, _ in self._trials.values():  # a trial an exception left open
            stack.__exit__(exc_type, exc, tb)
        self._trials.clear()
        self._grids.shutdown(wait=True)
        self.tracker.flush()  # every trial's record is in the store when the search returns

    def info(self) -> MlflowInfo:
        """Where the run is logged, and what an outage lost so far."""
        t = self.tracker
        return MlflowInfo(t.run_id, t.tracking_uri, t.experiment_id, self.experiment, t.lost_logs)

    def on_start(self, start: RunStart) -> None:
        cfg, tracker = start.cfg, self.tracker
        (start.run_dir / RUN_ID_FILE).write_text(tracker.run_id)
        searched = list(cfg.search.space)
        if not tracker.resumed:  # a continued run keeps its name (the user may have renamed it)
            name = parent_run_name(target_label(cfg.target), len(searched), datetime.now())
            tracker.set_tags({"mlflow.runName": name})
        tracker.set_experiment_tags(view_tags(searched))
        images = len(start.target.images.images)
        note = start_note(
            start.target.description,
            images,
            searched,
            cfg.search.n_trials,
            start.floor,
            tracker.experiment_id,
        )
        tracker.set_tags({NOTE_TAG: note})
        params = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)
        assert isinstance(params, dict)
        for group, key in (("search", "storage"), ("tracking", "uri")):
            if params[group][key]:  # no database password in MLflow params
                params[group][key] = mask_url(params[group][key])
        changed = tracker.log_params({str(k): v for k, v in params.items()})
        if changed:  # a resumed run with other settings: config.yaml holds the new ones
            tracker.set_tags({"gen_loop.changed_on_resume": ", ".join(changed)})
        tracker.log_artifact(start.run_dir / "config.yaml")
        tracker.set_tags(
            {
                "gen_loop.target_fingerprint": start.target.images.fingerprint,
                "gen_loop.target": start.target.description,
                "gen_loop.embedder": start.embedder_fingerprint,
                "gen_loop.study": start.study,
                "gen_loop.run_dir": str(start.run_dir),
                "mlflow.source.git.commit": git_commit(Path(__file__)) or "unknown",
                **{f"gen_loop.env.{key}": value for key, value in start.environment.items()},
            }
        )
        if start.floor_quality is not None:  # a small target or an uncertain floor
            tracker.set_tags({"gen_loop.floor_quality": " ".join(start.floor_quality.notes())})
        tracker.log_metrics(
            {
                "noise_floor": start.floor.mean,
                "noise_floor_std": start.floor.std,
                "n_target_images": float(images),
            }
        )

    def on_requeued(self, numbers: Sequence[int]) -> None:
        self.tracker.end_orphan_trials(
            numbers, "the process running this trial was killed; the trial was re-queued"
        )

    def on_trial_start(self, trial: TrialStart) -> None:
        stack = ExitStack()
        child = stack.enter_context(self.tracker.trial(trial.number, trial.params))
        self._trials[trial.number] = (stack, child)
        child.log_params({"stage": trial.stage})
        child.set_tags({"gen_loop.stage": trial.stage})
        if trial.scene_seed is not None:
            child.log_params({"scene_seed": trial.scene_seed})

    def on_trial_end(self, trial: TrialEnd) -> None:
        opened = self._trials.pop(trial.number, None)
        if opened is None:
            return
        stack, child = opened
        if trial.interrupted:  # the child run ends KILLED, as the tracker does for Ctrl-C
            stop = KeyboardInterrupt()
            stack.__exit__(KeyboardInterrupt, stop, None)
            return
        if trial.error is not None:
            child.fail(trial.error)
            stack.close()
            return
        assert trial.distance is not None
        child.log_metrics({"distance": trial.distance, **trial.timings})
        if self.trial_images > 0 and trial.batch is not None:
            k = min(self.trial_images, len(trial.batch))
            batch = trial.batch
            job = self._grids.submit(_log_grid, child, batch.images[:k], batch.labels[:k])
            job.add_done_callback(partial(_report_grid_error, trial.number))
        stack.close()
        self.tracker.queue_metrics(  # off the trial's path, like the child run
            {"distance": trial.distance, "best_distance": trial.best}, step=trial.number
        )

    def on_search_end(self, summary: RunSummary) -> None:
        self.tracker.set_tags({"gen_loop.stop_reason": summary.stop_reason})
        if summary.left_basins:
            left = ", ".join(
                f"trial {b['best_trial']} ({b['distance']:.4g})" for b in summary.left_basins
            )
            self.tracker.set_tags({"gen_loop.left_basins": left})
        if summary.unsearched_suspects:
            chosen = named(summary.unsearched_suspects)
            names = ", ".join(label(s) for s in chosen) or "none"
            self.tracker.set_tags({"gen_loop.unsearched_suspects": names})
            self.tracker.log_metrics(
                {_share_key(s): s["share"] for s in summary.unsearched_suspects}
            )
        if summary.at_range_bounds:
            at = ", ".join(f"{h['name']}={h['side']}" for h in summary.at_range_bounds)
            self.tracker.set_tags({"gen_loop.at_range_bounds": at})
        if summary.parameter_uncertainty:
            found = [ParamUncertainty(**u) for u in summary.parameter_uncertainty]
            self.tracker.log_metrics(
                {f"uncertainty_share.{u.name}": u.share for u in found if u.share is not None}
            )
            loose = ", ".join(u.name for u in found if u.loose) or "none"
            self.tracker.set_tags({"gen_loop.loose_params": loose})
        if summary.advised is not None:
            self.tracker.set_tags({"gen_loop.advised": summary.advised["run_dir"]})
        if summary.best_distance is not None:
            self.tracker.log_metrics(
                {
                    "final_best_distance": summary.best_distance,
                    "default_distance": _or_nan(summary.default_distance),
                    "best_over_floor": summary.best_distance / summary.noise_floor.mean,
                }
            )
        self._describe(summary)

    def on_finish(self, summary: RunSummary, outputs: FinishOutputs) -> None:
        tracker = self.tracker
        for path in outputs.plots.values():
            tracker.log_artifact(path, "plots")
        self._plots = [f"plots/{path.name}" for path in outputs.plots.values()]
        if outputs.manifest is not None:
            tracker.log_artifact(outputs.manifest, "selection")
            tracker.log_metrics(
                {
                    "selected_count": float(summary.selected_count),
                    "selection_threshold": _or_nan(summary.selection_threshold),
                }
            )
        for stage in ("before", "after", "control"):
            if stage in summary.evaluation:
                metrics = summary.evaluation[stage]
                tracker.log_metrics({f"{stage}_{k}": v for k, v in metrics.items()})
        tracker.set_tags({"gen_loop.verdict": summary.verdict.status})
        analysis = summary.analysis
        if analysis is not None and analysis.report:  # the run's population analysis
            folder = REPORT_ARTIFACT.split("/")[0]  # where the description's link points
            tracker.log_artifact(Path(analysis.report).parent, folder)
            tracker.log_metrics({f"analysis.{k}": v for k, v in analysis.metrics.items()})
        if outputs.weights is not None:
            # Rejected weights stay in MLflow, but not under the result's name.
            folder = "finetuned" if summary.verdict.accepted else "rejected"
            tracker.log_artifact(outputs.weights, folder)
        if outputs.control_weights is not None:
            tracker.log_artifact(outputs.control_weights, "control")

    def on_end(self, summary: RunSummary) -> None:
        self.tracker.log_metrics(dict(summary.timings_s))
        self.tracker.log_artifact(Path(summary.run_dir) / "summary.json")
        self._describe(summary)  # the report folder was logged by on_finish

    def _describe(self, summary: RunSummary) -> None:
        """Mark the best trial's child run and write the result into the run's description."""
        tracker = self.tracker
        best_run = None
        if summary.best_trial is not None:
            best_run = tracker.mark_best_trial(summary.best_trial)
        note = result_note(
            summary,
            tracker.experiment_id,
            tracker.run_id,
            self._plots or _plots(summary),
            best_run,
        )
        tracker.set_tags({NOTE_TAG: note})


def _plots(summary: RunSummary) -> Sequence[str]:
    """The plots an earlier finish logged (a resumed search that kept its final stage)."""
    plots = Path(summary.run_dir).glob("*.png") if summary.has_final_stage else ()
    return [f"plots/{p.name}" for p in sorted(plots)]


def _or_nan(value: float | None) -> float:
    """A metric value, NaN when it is missing (0.0 stays 0.0)."""
    return float("nan") if value is None else float(value)


def _log_grid(child: TrialRun, images: np.ndarray, labels: Sequence[np.ndarray]) -> None:
    """Draw and log a trial's sample grid (runs on the background thread)."""
    child.log_image(image_grid(images, ncols=min(len(images), 4), boxes=labels), "samples.png")


def _report_grid_error(number: int, job: Future[None]) -> None:
    error = job.exception()
    if error is not None:  # store failures are counted by the tracker; this is anything else
        log.warning(
            "trial %d: sample grid not logged: %s: %s", number, type(error).__name__, error
        )


def _share_key(suspect: Mapping[str, Any]) -> str:
    """The MLflow metric of a suspect's share: ``unsearched_share.fisheye``,
    ``unsearched_share.weather.fog`` (MLflow metric names take no ``=``)."""
    choice = suspect.get("choice")
    return f"unsearched_share.{suspect['name']}" + (f".{choice}" if choice else "")
