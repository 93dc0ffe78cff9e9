"""What the user sees on the console: a line per trial and a final table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from gen_loop.loop.mlflow_view import VIEW_KEY
from gen_loop.loop.observer import FinishOutputs, LoopObserver, RunStart, TrialEnd
from gen_loop.loop.summary import RunSummary
from gen_loop.search.attribution import label, named
from gen_loop.search.bounds import bounds_line
from gen_loop.search.floor_quality import FloorQuality
from gen_loop.search.uncertainty import uncertainty_line
from gen_loop.tracking.links import runs_table_url, ui_command

#: The stop reason of a search the user interrupted with Ctrl-C.
INTERRUPTED = "interrupted by the user"


def format_params(params: Mapping[str, object]) -> str:
    """``name=value`` pairs, numbers to 3 significant digits."""
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def trial_line(
    number: int,
    distance: float | None,
    best: float,
    best_trial: int | None,
    floor: float,
    params: Mapping[str, object],
    error: str | None = None,
) -> str:
    """One progress line per trial."""
    value = f"{distance:8.4f}" if distance is not None else "  failed"
    mark = "*" if best_trial == number else " "
    line = (
        f"trial {number:4d} | dist {value}{mark}| best {best:8.4f} (#{best_trial}) "
        f"| floor {floor:.4f} | {format_params(params)}"
    )
    return line + (f" | error: {error}" if error else "")


def _floor_uncertainty(quality: FloorQuality) -> str:
    size = f"target of {quality.target_images} images, floor batch {quality.floor_batch}"
    stop = "" if quality.stop_at_floor else ", not stopped on"
    return f"±{quality.rel_std:.0%} ({size}{stop})"


def finalised_line(holder: Mapping[str, object]) -> str:
    """Who took the study's final stage: a live worker still at it, or one that completed it
    (whose process may be long gone: it is not named as if it were running)."""
    where = f"{holder['host']}:{holder['pid']}"
    if holder.get("done"):
        return (
            f"another worker finalised the study: the run in {holder['run_dir']} (process "
            f"{where}, finished); its summary.json has the selection and the evaluation"
        )
    return f"another worker finalises the study: {where} ({holder['run_dir']})"


def map50_rows(evaluation: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The target mAP50 (and mAP50-95) before and after fine-tuning, as table rows, where the
    evaluation has them (the console's table and the MLflow description)."""
    rows = []
    for stage in ("before", "after", "control"):
        metrics = evaluation.get(stage)
        if metrics:
            text = f"{metrics['map50']:.4f} (mAP50-95 {metrics['map50_95']:.4f})"
            name = "randomised control" if stage == "control" else stage
            rows.append((f"target mAP50 {name}", text))
    return rows


def final_table(summary: RunSummary) -> str:
    """The end-of-run table: best params, distances, stop reason, selection, fine-tune."""
    floor = summary.noise_floor
    rows: list[tuple[str, str]] = [
        ("best distance", f"{summary.best_distance:.4f} (trial {summary.best_trial})"),
        ("default params distance", f"{summary.default_distance:.4f}"),
        ("noise floor", f"{floor.mean:.4f} ± {floor.std:.4f} at batch {floor.batch_size}"),
        ("best / floor", f"{summary.best_over_floor:.2f}x"),
        ("trials", f"{summary.n_trials} ({summary.n_failed} failed)"),
        ("stopped because", summary.stop_reason),
        ("selected samples", f"{summary.selected_count} of {summary.pool_size}"),
    ]
    if summary.left_basins:
        left = ", ".join(
            f"trial {b['best_trial']} ({b['distance'] / floor.mean:.1f}x)"
            for b in summary.left_basins
        )
        rows.insert(6, ("left basins", left))
    quality = summary.floor_quality
    if quality is not None:
        rows.insert(3, ("floor uncertainty", _floor_uncertainty(quality)))
    final = summary.final_stage
    if final is not None and final.n_trials != summary.n_trials:
        rows.append(
            (
                "selection / fine-tune",
                f"from the earlier finish at {final.n_trials} trials (best trial "
                f"{final.best_trial}); redone when this search finishes",
            )
        )
    hidden_params = summary.target_hidden_params or {}
    for name, value in summary.best_params.items():
        hidden = hidden_params.get(name)
        extra = f"   (hidden {hidden:.4g})" if isinstance(hidden, float) else ""
        rows.append(
            (f"  {name}", f"{value:.4g}{extra}" if isinstance(value, float) else str(value))
        )
    evaluation = summary.evaluation
    rows.extend(map50_rows(evaluation))
    if evaluation.get("skipped"):
        rows.append(("evaluation", evaluation["skipped"]))
    if summary.verdict.message:
        rows.append(("verdict", summary.verdict.message))
    analysis = summary.analysis
    if analysis is not None and analysis.error:
        rows.append(("analysis", f"failed: {analysis.error}"))
    elif analysis is not None:
        rows.extend(
            ("population" if i == 0 else "", line) for i, line in enumerate(analysis.lines)
        )
        rows.append(("report", analysis.report))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)} : {v}" for k, v in rows)


class ConsoleObserver(LoopObserver):
    """Prints the run's progress: the target, a line per trial, the verdict, the final table.

    Args:
        stream: where to print (None: ``sys.stdout`` at the time of printing, so that pytest's
            capture and redirections see it).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def _print(self, text: str) -> None:
        print(text, file=self._stream, flush=True)

    def on_start(self, start: RunStart) -> None:
        floor = start.floor
        self._print(f"run folder: {start.run_dir}")
        self._print(
            f"target: {start.target.description} ({len(start.target.images.images)} images)"
        )
        self._print(
            f"noise floor: {floor.mean:.4f} ± {floor.std:.4f} "
            f"(batch {floor.batch_size}, {floor.n_splits} splits)"
        )
        if start.floor_quality is not None:
            for note in start.floor_quality.notes():
                self._print(f"warning: {note}")

    def on_trial_end(self, trial: TrialEnd) -> None:
        if trial.interrupted:
            return  # the run's own message follows
        self._print(
            trial_line(
                trial.number,
                trial.distance,
                trial.best,
                trial.best_trial,
                trial.noise_floor,
                trial.params,
                trial.error,
            )
        )

    def on_refine(self, message: str) -> None:
        self._print(message)

    def on_search_end(self, summary: RunSummary) -> None:
        if summary.stop_reason == INTERRUPTED:
            self._print(
                "interrupted: results so far are kept; run again with the same "
                f"hydra.run.dir={summary.run_dir} to resume"
            )
        if summary.unsearched_suspects is not None:
            self._print(suspects_line(summary.unsearched_suspects))
        if summary.at_range_bounds:
            self._print(bounds_line(summary.at_range_bounds))
        if summary.parameter_uncertainty:
            self._print(uncertainty_line(summary.parameter_uncertainty))
        if summary.advised is not None:
            self._print(advised_line(summary.advised))

    def on_finish(self, summary: RunSummary, outputs: FinishOutputs) -> None:
        self._print(f"verdict: {summary.verdict.message}")

    def on_already_finished(self, summary: RunSummary, run_dir: Path, n_trials: int) -> None:
        """The run folder ``run_dir`` holds a finished study: say so and show its summary."""
        self._print(
            f"this run is finished ({summary.stop_reason}): {run_dir} is left as it "
            f"is. To search on, raise search.n_trials (now {n_trials}) or loosen the stop "
            "rule; to start afresh, give another hydra.run.dir"
        )
        if summary.advised is not None:
            self._print(advised_line(summary.advised))
        self.on_end(summary)

    def on_end(self, summary: RunSummary) -> None:
        holder = summary.finalised_by
        if holder is not None:
            self._print(finalised_line(holder))
        if summary.best_distance is not None:
            self._print("\n" + final_table(summary))
        else:
            self._print(f"\nno trial completed: {summary.stop_reason}")
        self._print(f"\nsummary: {summary.run_dir}/summary.json")
        mlflow = summary.mlflow
        uri = mlflow.tracking_uri
        url = runs_table_url(uri, mlflow.experiment_id, VIEW_KEY)
        command = ui_command(uri)
        if command is None:
            self._print(f"MLflow:  {url}")
        else:  # the link opens the runs table, with the loop's columns, in a fresh browser
            self._print(f"MLflow:  {command}\n         then open {url}")
        if mlflow.lost_anything():
            lost = mlflow.lost_logs or {}
            self._print(
                f"warning: the MLflow store {uri} was unreachable during the run: logs of "
                f"{lost.get('n_trials', 0)} trial(s) and {lost.get('run_logs', 0)} run-level "
                "log call(s) were lost (summary.json: mlflow.lost_logs). The Optuna study has "
                "every trial."
            )


def suspects_line(suspects: list[dict[str, Any]]) -> str:
    """What the console says of the unsearched parameters that explain the remaining distance."""
    chosen = named(suspects)
    if not chosen:
        top = suspects[0] if suspects else None
        largest = f" (largest: {label(top)}, {top['share']:.0%})" if top else ""
        return f"no unsearched generator parameter explains the remaining distance{largest}"
    names = " and ".join(label(s) for s in chosen)
    shares = " / ".join(f"{s['share']:.0%}" for s in chosen)
    overrides = " ".join(f'"{s["override"]}"' for s in chosen)
    return (
        f"the target also differs in {names} (moving each alone removes {shares} of the "
        f"remaining distance^2): add them with {overrides}"
    )


def advised_line(advised: dict[str, Any]) -> str:
    """What the console says of the next round of a run that follows its advice."""
    changes = " ".join(advised["overrides"])
    # a summary from before search.advice_from_best started from the best camera
    start = "the best camera so far" if advised.get("from_best", True) else "a fresh start"
    return (
        f"following that advice (search.advice_rounds): the next round searches with "
        f"{changes}, from {start}, in {advised['run_dir']}"
    )
