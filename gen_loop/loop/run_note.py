"""The parent run's description in MLflow (``mlflow.note.content``, Markdown).

At the start it says what is searched against what; when the search ends, and again when the
run ends, it is replaced by the run's result: the final table, the best parameters next to
the defaults, the verdict, the analysis' headline and links to the plots and the report.
Links are routes inside the UI (``#/experiments/...``), so they work on whatever host serves
it. Pure functions of their arguments: tests read the text, MLflow only stores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from gen_loop.loop.console import map50_rows
from gen_loop.loop.summary import RunSummary
from gen_loop.score.scorer import NoiseFloor
from gen_loop.tracking.links import run_route, runs_table_route

#: The parent run's description tag.
NOTE_TAG = "mlflow.note.content"

#: The report's place among the parent run's artifacts.
REPORT_ARTIFACT = "report/report.html"


def _cell(value: object) -> str:
    """A table cell: numbers to 4 significant digits, pipes escaped, one line."""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _floor(floor: NoiseFloor) -> str:
    return f"{floor.mean:.4f} ± {floor.std:.4f} (batch {floor.batch_size})"


def start_note(
    target: str,
    n_images: int,
    searched: Sequence[str],
    n_trials: int,
    floor: NoiseFloor,
    experiment_id: str,
) -> str:
    """The description while the search runs.

    Args:
        target: the target's one-line description.
        n_images: its images.
        searched: the searched parameters.
        n_trials: the trial budget (``search.n_trials``).
        floor: the target's noise floor.
        experiment_id: the experiment, for the link to its runs table.
    """
    names = ", ".join(f"`{p}`" for p in searched)
    return "\n".join(
        [
            f"## gen_loop: searching {len(searched)} camera parameters",
            "",
            f"- **target**: {target} ({n_images} images)",
            f"- **searched**: {names}, up to {n_trials} trials (one child run each)",
            f"- **noise floor**: {_floor(floor)}",
            "",
            "The search is running: this description is replaced by the result when it ends. "
            f"[Runs table]({runs_table_route(experiment_id)})",
        ]
    )


def result_note(
    summary: RunSummary,
    experiment_id: str,
    run_id: str,
    plots: Sequence[str] = (),
    best_run_id: str | None = None,
) -> str:
    """The description of a run whose search ended (and, once it ran, its final stage).

    Args:
        summary: the run's summary.
        experiment_id / run_id: the experiment and the parent run, for links.
        plots: the plots' artifact paths in the parent run (``plots/...png``).
        best_run_id: the best trial's child run, for a link.
    """
    if summary.best_distance is None:
        return "\n".join(
            ["## gen_loop: no trial completed", "", f"stopped because: {summary.stop_reason}"]
        )
    lines = [f"## gen_loop: {_headline(summary)}", ""]
    lines += _table(["result", ""], _result_rows(summary, experiment_id, best_run_id))
    lines += ["", "### Best camera parameters", ""]
    lines += _table(*_param_rows(summary))
    analysis = summary.analysis
    if analysis is not None:
        lines += ["", "### Analysis", ""]
        lines += [f"- {line}" for line in analysis.lines]
        report = run_route(experiment_id, run_id, REPORT_ARTIFACT)
        lines += ["", f"[Report: {REPORT_ARTIFACT}]({report})"]
    links = [(p.rsplit("/", 1)[-1].removesuffix(".png"), p) for p in plots]
    links.append(("summary.json", "summary.json"))
    lines += ["", "### Artifacts", ""]
    lines += [f"- [{name}]({run_route(experiment_id, run_id, path)})" for name, path in links]
    return "\n".join(lines)


def _headline(summary: RunSummary) -> str:
    """``improved; distance 10.86 -> 5.768, 15.0x floor``: the first line the UI shows of the
    description (it folds the rest under "Show more")."""
    assert summary.best_over_floor is not None
    default = summary.default_distance
    moved = f"{default:.4g} -> " if default is not None else ""
    result = f"distance {moved}{summary.best_distance:.4g}, {summary.best_over_floor:.3g}x floor"
    if not summary.has_final_stage:
        return f"search ended; {result}"
    return f"{summary.verdict.status}; {result}"


def _result_rows(
    summary: RunSummary, experiment_id: str, best_run_id: str | None
) -> list[tuple[str, str]]:
    best = f"trial {summary.best_trial}"
    if best_run_id is not None:
        best = f"[{best}]({run_route(experiment_id, best_run_id)})"
    default = summary.default_distance
    rows = [
        ("default params distance", "-" if default is None else f"{default:.4f}"),
        ("best distance", f"{summary.best_distance:.4f} ({best})"),
        ("noise floor", _floor(summary.noise_floor)),
        ("best / floor", f"{summary.best_over_floor:.2f}x"),
        ("trials", f"{summary.n_trials} ({summary.n_failed} failed)"),
        ("stopped because", summary.stop_reason),
    ]
    if not summary.has_final_stage:
        rows.append(("selection / fine-tune", "not run yet"))
        return rows
    rows.append(("selected samples", f"{summary.selected_count} of {summary.pool_size}"))
    evaluation = summary.evaluation
    rows.extend(map50_rows(evaluation))
    for key in ("skipped", "failed", "control_failed"):
        if evaluation.get(key):
            rows.append((f"evaluation {key}", str(evaluation[key])))
    rows.append(("verdict", summary.verdict.message))
    return rows


def _param_rows(summary: RunSummary) -> tuple[list[str], list[list[object]]]:
    hidden: Mapping[str, object] = summary.target_hidden_params or {}
    header = ["parameter", "default", "best"] + (["hidden (demo target)"] if hidden else [])
    rows = []
    for name, value in summary.best_params.items():
        row = [f"`{name}`", summary.default_params.get(name, "-"), value]
        rows.append(row + ([hidden.get(name, "-")] if hidden else []))
    return header, rows
