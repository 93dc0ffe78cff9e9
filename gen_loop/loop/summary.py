"""The run's summary: one typed record, written as ``<run_dir>/summary.json``.

Everything that reads a run's result (the console table, the sweep report, tests, the
experiments) reads this record by attribute, or the JSON file it writes. Fields marked
``optional`` appear in the JSON only once the run has set them (a run that was not fine-tuned
has no ``finetuned_weights`` key), so the file says what happened, not what might have.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen_loop.finetune.verdict import Verdict
from gen_loop.score.scorer import NoiseFloor
from gen_loop.search.floor_quality import FloorQuality

#: Marks a field left out of the JSON while it is None.
_OPTIONAL = {"optional": True}


@dataclass
class TargetInfo:
    """The target the run measured against."""

    description: str
    n_images: int
    skipped: int
    fingerprint: str


@dataclass
class MlflowInfo:
    """Where the run is logged; ``lost_logs`` counts what did not reach the store."""

    run_id: str
    tracking_uri: str
    experiment_id: str
    experiment: str
    lost_logs: dict[str, Any] | None = field(default=None, metadata=_OPTIONAL)

    def lost_anything(self) -> bool:
        """True when trial or run-level logs were lost to a store outage."""
        lost = self.lost_logs or {}
        return bool(lost.get("n_trials") or lost.get("run_logs"))


@dataclass
class StudyInfo:
    """The Optuna study (storage URL with its password masked)."""

    name: str
    storage: str


@dataclass
class Seeds:
    """The seeds that make the run reproducible."""

    scene_seed: int
    pool_seed: int
    search_seed: int


@dataclass
class AnalysisInfo:
    """The run's own population analysis (``analysis.*``, :mod:`gen_loop.loop.analysis_stage`).

    Attributes:
        report: ``report.html`` in the run folder (logged under the parent run's ``report/``).
        lines: the headline, one line per compared set, e.g. "target vs source: separable
            (AUC 1.00)"; the console table, the MLflow description and the sweep quote these.
        metrics: the analysis' numbers, flat (``<set>.auc``, ``<set>.mmd_p``, ...).
        seconds: how long the analysis took.
        error: why the analysis failed (then ``report`` is empty; the run's results stand).
    """

    report: str
    lines: list[str]
    metrics: dict[str, float]
    seconds: float
    error: str | None = field(default=None, metadata=_OPTIONAL)


@dataclass
class FinalStage:
    """When the run's selection and fine-tune were made.

    Attributes:
        budget: the ``search.n_trials`` whose finish they were.
        n_trials: trials of the study then.
        best_trial: the trial whose camera was selected and fine-tuned on.
    """

    budget: int
    n_trials: int
    best_trial: int | None


#: The fields the final stage (selection, fine-tune, evaluation, figures) sets.
FINAL_STAGE_FIELDS = (
    "selected_count",
    "pool_size",
    "evaluation",
    "verdict",
    "param_importances",
    "replay_count",
    "selection_threshold",
    "finetuned_weights",
    "result_weights",
    "final_stage",
    "analysis",
)


@dataclass
class RunSummary:
    """What one ``run`` found and did.

    Attributes:
        best_params: the searched parameters of the best trial.
        all_params: every generator parameter of the best camera (searched or not).
        best_distance: the best trial's distance (None when no trial completed).
        best_trial: its number.
        default_distance: the distance of trial 0, the generator's current settings.
        default_params: those settings, restricted to the searched parameters.
        noise_floor: the target's own noise floor (at the floor's batch size).
        n_trials / n_failed / n_retried / n_refine_trials: trial counts of the study.
        best_stage: what proposed the best trial (sampler, refine, start, prior).
        stop_reason: why the search stopped.
        selected_count / pool_size: the selected samples and the pool they came from.
        evaluation: target mAP before/after fine-tuning, or ``{"skipped": why}``.
        verdict: did the fine-tune help (:class:`~gen_loop.finetune.verdict.Verdict`).
        target / mlflow / study / seeds: what the run ran against and where it is recorded.
        timings_s: seconds per stage.
        run_dir: the run folder.
        target_hidden_params / recovery_error: the demo target's hidden camera and
            ``|found - hidden| / range`` per parameter (demo target only).
        finalised_by: the worker that took the final stage, when it was another one.
        param_importances: Optuna's parameter importances (>= 3 completed trials).
        unsearched_suspects: when the search stopped above the floor, the unsearched generator
            parameters by the share of the remaining residual each explains
            (``gen_loop.loop.unsearched``).
        at_range_bounds: when the search stopped above the floor, the searched parameters
            whose best value sits at a bound of its search range, with the override that
            widens it (:class:`~gen_loop.search.bounds.BoundHit`).
        parameter_uncertainty: one standard deviation per searched continuous parameter at
            the best trial, from a Jacobian measured at the best camera (the polish's, when
            it ran) and the target images' own spread
            (:class:`~gen_loop.search.uncertainty.ParamUncertainty`; None without a residual
            vector, with nothing continuous or with ``search.uncertainty=false``).
        advised: when the run follows its advice (``search.advice_rounds``): the next round's
            ``run_dir`` and the ``overrides`` it applies; this round then has no final stage
            of its own (the last round makes it).
        replay_count / selection_threshold / finetuned_weights / result_weights: the final
            stage's outputs; ``result_weights`` is the base checkpoint when the fine-tune was
            rejected.
        final_stage: when those were made (a search resumed with a larger budget keeps the
            earlier ones until its own final stage replaces them).
        floor_quality: how well the noise floor is known, for a small target or an
            uncertain floor (:class:`~gen_loop.search.floor_quality.FloorQuality`).
        left_basins: the refinements the search ended in a wrong basin
            (``search.refine.restart``, :mod:`gen_loop.search.basins`): the trial each
            started from (``start``) and the basin's best trial and distance.
        analysis: the run's population analysis (:class:`AnalysisInfo`), when it ran.
        environment: the machine and package versions the run ran on
            (:func:`gen_loop._environment.environment`): runs on two machines can differ
            from the fifth digit of a distance on.
    """

    best_params: dict[str, Any]
    all_params: dict[str, Any]
    best_distance: float | None
    best_trial: int | None
    default_distance: float | None
    default_params: dict[str, Any]
    noise_floor: NoiseFloor
    n_trials: int
    n_failed: int
    n_retried: int
    n_refine_trials: int
    best_stage: str | None
    stop_reason: str
    selected_count: int
    pool_size: int
    evaluation: dict[str, Any]
    verdict: Verdict
    target: TargetInfo
    mlflow: MlflowInfo
    study: StudyInfo
    seeds: Seeds
    timings_s: dict[str, float]
    run_dir: str
    target_hidden_params: dict[str, Any] | None = field(default=None, metadata=_OPTIONAL)
    recovery_error: dict[str, float] | None = field(default=None, metadata=_OPTIONAL)
    finalised_by: dict[str, Any] | None = field(default=None, metadata=_OPTIONAL)
    param_importances: dict[str, float] | None = field(default=None, metadata=_OPTIONAL)
    replay_count: int | None = field(default=None, metadata=_OPTIONAL)
    selection_threshold: float | None = field(default=None, metadata=_OPTIONAL)
    finetuned_weights: str | None = field(default=None, metadata=_OPTIONAL)
    result_weights: str | None = field(default=None, metadata=_OPTIONAL)
    unsearched_suspects: list[dict[str, Any]] | None = field(default=None, metadata=_OPTIONAL)
    at_range_bounds: list[dict[str, Any]] | None = field(default=None, metadata=_OPTIONAL)
    advised: dict[str, Any] | None = field(default=None, metadata=_OPTIONAL)
    parameter_uncertainty: list[dict[str, Any]] | None = field(default=None, metadata=_OPTIONAL)
    final_stage: FinalStage | None = field(default=None, metadata=_OPTIONAL)
    floor_quality: FloorQuality | None = field(default=None, metadata=_OPTIONAL)
    left_basins: list[dict[str, Any]] | None = field(default=None, metadata=_OPTIONAL)
    analysis: AnalysisInfo | None = field(default=None, metadata=_OPTIONAL)
    environment: dict[str, str] | None = field(default=None, metadata=_OPTIONAL)

    @property
    def has_final_stage(self) -> bool:
        """Whether a selection/fine-tune result is recorded (summaries before ``final_stage``
        existed: a selection or an evaluation)."""
        return self.final_stage is not None or self.selected_count > 0 or bool(self.evaluation)

    def keeping(self, earlier: RunSummary | None) -> RunSummary:
        """This summary with ``earlier``'s final-stage results, when this one has none.

        A resumed search writes its summary before (and without) a final stage of its own;
        the earlier finish's selection, verdict and weights stay recorded until it has one.
        """
        if earlier is None or self.has_final_stage or not earlier.has_final_stage:
            return self
        kept = {name: getattr(earlier, name) for name in FINAL_STAGE_FIELDS}
        return dataclasses.replace(self, **kept)

    @property
    def best_over_floor(self) -> float | None:
        """The best distance in units of the noise floor."""
        if self.best_distance is None:
            return None
        return self.best_distance / self.noise_floor.mean

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (optional fields only once set)."""
        return _to_jsonable(self)

    def write(self, path: Path) -> None:
        """Write the JSON atomically (a reader never sees half a file)."""
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """The summary of a ``summary.json``; raises ``ValueError`` naming a missing key."""
        nested = {
            "noise_floor": NoiseFloor,
            "verdict": Verdict,
            "target": TargetInfo,
            "mlflow": MlflowInfo,
            "study": StudyInfo,
            "seeds": Seeds,
            "final_stage": FinalStage,
            "floor_quality": FloorQuality,
            "analysis": AnalysisInfo,
        }
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                if f.metadata.get("optional"):
                    continue
                raise ValueError(f"summary has no {f.name!r}")
            value = data[f.name]
            if f.name in nested:
                value = _nested(nested[f.name], value, f.name)
            kwargs[f.name] = value
        return cls(**kwargs)

    @classmethod
    def load(cls, path: Path) -> RunSummary:
        """Read ``path`` (a ``summary.json``); ``ValueError`` names the file when it is bad."""
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, ValueError, TypeError) as err:
            raise ValueError(f"{path}: not a gen_loop summary ({err})") from err


def _nested(kind: type, value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"summary {name!r} is not an object")
    if kind is NoiseFloor:
        value = {**value, "values": tuple(value.get("values", ()))}
    known = {f.name for f in dataclasses.fields(kind)}
    return kind(**{k: v for k, v in value.items() if k in known})


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get("optional"):
                continue
            out[f.name] = _to_jsonable(item)
        return out
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
