"""What the loop tells the outside world, and the interface of those who listen.

The loop's control flow (score the target, search, select, fine-tune) calls a
:class:`LoopObserver` at each step and never logs or prints itself. Two observers ship:
:class:`~gen_loop.loop.console.ConsoleObserver` (the progress lines and the final table) and
:class:`~gen_loop.loop.mlflow_observer.MlflowObserver` (the parent run, a child run per trial,
plots and artifacts). :class:`Observers` hands every event to several in turn. The shape
follows the callback lists of trainers (lightning's loggers, ultralytics' callback dict):
a new kind of output is a new observer, not a change to the loop.

Contract: observers must not raise for a problem of their own (an unreachable MLflow store is
counted, not raised, by the tracker); an exception from an observer is a bug and ends the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gen_loop.config.schema import RunConfig
    from gen_loop.generator.base import Batch
    from gen_loop.generator.params import ParamValue
    from gen_loop.loop.summary import RunSummary
    from gen_loop.loop.target_data import TargetData
    from gen_loop.score.scorer import NoiseFloor
    from gen_loop.search.floor_quality import FloorQuality


@dataclass(frozen=True)
class RunStart:
    """The run about to search.

    Attributes:
        cfg: the resolved run config.
        run_dir: the run folder (holds ``config.yaml``).
        target: the loaded target.
        floor: the target's noise floor.
        embedder_fingerprint: identifies the embedder (model, weights, layers).
        study: ``name @ storage`` (password masked).
        floor_quality: how well the floor is known (None: well enough, nothing to say).
        environment: the machine and package versions this session runs on
            (:func:`gen_loop._environment.environment`; empty: not recorded).
    """

    cfg: RunConfig
    run_dir: Path
    target: TargetData
    floor: NoiseFloor
    embedder_fingerprint: str
    study: str
    floor_quality: FloorQuality | None = None
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialStart:
    """A trial about to render.

    Attributes:
        number: the Optuna trial number.
        params: the searched parameters as the trial suggested them.
        stage: what proposed it (``sampler``, ``refine``, ``start``, ``prior``).
        scene_seed: its scene seed when trials render their own scenes (``search.scene_seeds
            =fresh``); None for common scenes (the run's ``search.scene_seed``).
    """

    number: int
    params: Mapping[str, ParamValue]
    stage: str
    scene_seed: int | None = None


@dataclass(frozen=True)
class TrialEnd:
    """A trial that ended: completed (``distance`` set), failed (``error``) or interrupted.

    Attributes:
        number: the Optuna trial number.
        params: the searched parameters.
        distance: the batch's distance (None unless completed).
        error: ``Type: message`` of a failed trial.
        interrupted: the user pressed Ctrl-C during the trial.
        best / best_trial: the study's best distance and trial after this one.
        noise_floor: the floor at the trial batch size (what the stop rule compares with).
        timings: seconds in generate, embed and score.
        batch: the rendered batch (completed trials).
    """

    number: int
    params: Mapping[str, ParamValue]
    distance: float | None = None
    error: str | None = None
    interrupted: bool = False
    best: float = float("inf")
    best_trial: int | None = None
    noise_floor: float = float("nan")
    timings: Mapping[str, float] = field(default_factory=dict)
    batch: Batch | None = None

    @property
    def completed(self) -> bool:
        """True when the trial produced a distance."""
        return self.distance is not None


@dataclass(frozen=True)
class FinishOutputs:
    """Files made by the final stage, for observers to log.

    Attributes:
        plots: name -> PNG in the run folder (optimisation history, importances, target vs best).
        manifest: the selected dataset's manifest (None when nothing was selected).
        weights: the fine-tuned checkpoint (None when not fine-tuned).
        control_weights: the domain-randomised control's (``finetune.control=randomised``).
    """

    plots: Mapping[str, Path] = field(default_factory=dict)
    manifest: Path | None = None
    weights: Path | None = None
    control_weights: Path | None = None


class LoopObserver:
    """Receives the loop's events; every method does nothing unless overridden.

    Order: :meth:`on_start`; :meth:`on_requeued` when the search starts with a killed
    process's trials; per trial :meth:`on_trial_start` then :meth:`on_trial_end`
    (also for a failed or interrupted trial); :meth:`on_refine` when the least-squares stage
    starts and ends; :meth:`on_search_end` with the summary of the search; :meth:`on_finish`
    after selection and fine-tuning (only the worker that finalises the study); :meth:`on_end`
    with the final summary, once ``summary.json`` is written.
    """

    def on_start(self, start: RunStart) -> None:
        """The target is scored and the study is about to be opened."""

    def on_trial_start(self, trial: TrialStart) -> None:
        """A trial's parameters are suggested; rendering starts."""

    def on_trial_end(self, trial: TrialEnd) -> None:
        """A trial ended (completed, failed or interrupted); the study has been told."""

    def on_requeued(self, numbers: Sequence[int]) -> None:
        """Trials an earlier process left running (it was killed) were failed and re-queued."""

    def on_refine(self, message: str) -> None:
        """The refinement stage started or ended (one plain sentence)."""

    def on_search_end(self, summary: RunSummary) -> None:
        """The search stopped (``summary.stop_reason``); the final stage has not run."""

    def on_finish(self, summary: RunSummary, outputs: FinishOutputs) -> None:
        """Selection and fine-tuning are done (``summary.verdict`` is set)."""

    def on_end(self, summary: RunSummary) -> None:
        """The run is complete and ``summary.json`` is written."""


class Observers(LoopObserver):
    """Several observers, called in the order given."""

    def __init__(self, observers: Sequence[LoopObserver]) -> None:
        self.observers = tuple(observers)

    def _each(self, event: str, *args: object) -> None:
        for observer in self.observers:
            getattr(observer, event)(*args)

    def on_start(self, start: RunStart) -> None:
        self._each("on_start", start)

    def on_trial_start(self, trial: TrialStart) -> None:
        self._each("on_trial_start", trial)

    def on_trial_end(self, trial: TrialEnd) -> None:
        self._each("on_trial_end", trial)

    def on_requeued(self, numbers: Sequence[int]) -> None:
        self._each("on_requeued", numbers)

    def on_refine(self, message: str) -> None:
        self._each("on_refine", message)

    def on_search_end(self, summary: RunSummary) -> None:
        self._each("on_search_end", summary)

    def on_finish(self, summary: RunSummary, outputs: FinishOutputs) -> None:
        self._each("on_finish", summary, outputs)

    def on_end(self, summary: RunSummary) -> None:
        self._each("on_end", summary)
