"""``python -m gen_loop sweep-report DIR``: one row per job of a sweep, as Markdown and CSV."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["COLUMNS", "collect_jobs", "markdown_table", "sweep_report_main", "write_report"]

COLUMNS = (
    "job",
    "overrides",
    "best_distance",
    "noise_floor",
    "best_over_floor",
    "default_distance",
    "stop_reason",
    "n_trials",
    "n_failed",
    "rounds",
    "map50_before",
    "map50_after",
    "status",
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _job_row(job_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row["job"] = job_dir.relative_to(sweep_dir).as_posix()
    row["overrides"] = " ".join(str(o) for o in overrides or [])
    summary_file = job_dir / "summary.json"
    if not summary_file.exists():
        row["status"] = "no summary.json (failed or still running)"
        return row
    from gen_loop.loop.summary import RunSummary  # here: it imports the whole package
    from gen_loop.search.advice import ADVISED_DIR

    try:
        summary = RunSummary.load(summary_file)
    except ValueError as err:
        row["status"] = f"unreadable summary.json: {err}"
        return row
    # search.advice_rounds: the job's result is its last round's, its trials all rounds'
    rounds, n_trials, folder = 1, summary.n_trials, job_dir
    while summary.advised is not None:
        folder = folder / ADVISED_DIR
        try:
            summary = RunSummary.load(folder / "summary.json")
        except (OSError, ValueError) as err:
            row["status"] = f"advised round {rounds + 1}: no readable summary.json ({err})"
            return row
        rounds, n_trials = rounds + 1, n_trials + summary.n_trials
    best = _number(summary.best_distance)
    evaluation = summary.evaluation
    row.update(
        best_distance=best,
        noise_floor=_number(summary.noise_floor.mean),
        best_over_floor=_number(summary.best_over_floor),
        default_distance=_number(summary.default_distance),
        stop_reason=summary.stop_reason,
        n_trials=n_trials,
        n_failed=summary.n_failed,
        rounds=rounds,
        map50_before=_number((evaluation.get("before") or {}).get("map50")),
        map50_after=_number((evaluation.get("after") or {}).get("map50")),
        status=evaluation.get("failed") or evaluation.get("skipped", "done"),
    )
    return row


def collect_jobs(sweep_dir: Path) -> list[dict[str, Any]]:
    """Read every job folder of a sweep (any folder holding ``.hydra/overrides.yaml``).

    Args:
        sweep_dir: The sweep folder (``hydra.sweep.dir``).

    Returns:
        One row per job with the keys of :data:`COLUMNS`, sorted by job folder (numerically when
        the folders are job numbers); a job without ``summary.json`` has only ``job``,
        ``overrides`` and ``status``.

    Raises:
        FileNotFoundError: ``sweep_dir`` is missing or holds no job folder.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep_dir} does not exist")
    jobs = sorted(
        (p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")),
        key=lambda d: (int(d.name) if d.name.isdigit() else math.inf, d.as_posix()),
    )
    if not jobs:
        raise FileNotFoundError(
            f"no job folders (with .hydra/overrides.yaml) under {sweep_dir}: give the folder of "
            "a `--multirun` (hydra.sweep.dir, e.g. runs/multirun/<time>)"
        )
    return [_job_row(job, sweep_dir) for job in jobs]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Format the rows of :func:`collect_jobs` as a Markdown table.

    Args:
        rows: Job rows.

    Returns:
        The table, one line per job after the header and separator lines.
    """
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(sweep_dir: Path, out_dir: Path | None = None) -> tuple[Path, Path, str]:
    """Write ``sweep_report.md`` and ``sweep_report.csv`` for the jobs of a sweep.

    Args:
        sweep_dir: The sweep folder.
        out_dir: Where to write the two files; the sweep folder when not given.

    Returns:
        The Markdown path, the CSV path and the Markdown table.
    """
    rows = collect_jobs(sweep_dir)
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    md_path = out / "sweep_report.md"
    md_path.write_text(f"# Sweep {Path(sweep_dir).resolve()}\n\n{table}")
    csv_path = out / "sweep_report.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return md_path, csv_path, table


def sweep_report_main(argv: Sequence[str]) -> int:
    """``python -m gen_loop sweep-report DIR [--out OUT]`` (``dir=DIR out=OUT`` also works).

    Args:
        argv: The arguments after the command word.

    Returns:
        The exit code: 0, or 2 when the folder holds no sweep.
    """
    parser = argparse.ArgumentParser(
        prog="python -m gen_loop sweep-report",
        description="Tabulate the jobs of a --multirun sweep (summary.json of each job).",
    )
    parser.add_argument("dir", help="the sweep folder, e.g. runs/multirun/<time>")
    parser.add_argument("--out", default=None, help="folder for the .md/.csv (default: DIR)")
    # Hydra-style key=value is accepted too, like the other commands.
    args = [f"--out={a[4:]}" if a.startswith("out=") else a for a in argv]
    args = [a[4:] if a.startswith("dir=") else a for a in args]
    ns = parser.parse_args(args)
    try:
        md_path, csv_path, table = write_report(Path(ns.dir), ns.out and Path(ns.out))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    print(table, flush=True)
    print(f"report: {md_path}\n        {csv_path}", flush=True)
    return 0
