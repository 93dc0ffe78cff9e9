"""A ``run`` output folder as a set: the samples its final stage selected (``selected/``).

A run folder is known by its ``summary.json`` (:class:`~gen_loop.loop.summary.RunSummary`),
not by its name. Its ``selected/`` folder is the YOLO dataset the fine-tune trained on
(:func:`gen_loop.selection.write_selection`): ``images/`` and ``labels/`` (split in
``train``/``val`` when there are five samples or more) and a ``manifest.json`` listing each
selected sample. Replay images of the source camera, which ``finetune.replay_fraction`` adds,
lie beside it (``selected/replay/``, or a list file), not under ``images/``: they are not read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_loop.errors import InputDataError

if TYPE_CHECKING:
    from gen_loop.loop.summary import RunSummary

SUMMARY = "summary.json"
SELECTED = "selected"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RunSelection:
    """Where a run folder's selection lies and what the manifest says of it.

    Attributes:
        dataset: the ``selected/`` YOLO dataset folder (``images/`` and ``labels/``).
        n_manifest: how many samples the manifest lists.
        what: how they were selected, for the set's description, e.g. "of the best camera,
            trial 17 (selection=camera: per scene the closest of 6 cameras, 20 from the best)".
    """

    dataset: Path
    n_manifest: int
    what: str


def run_folder_of(path: Path) -> Path | None:
    """The run folder ``path`` names (the folder, or its ``summary.json``), else None."""
    if path.is_file() and path.name == SUMMARY:
        return path.parent
    if path.is_dir() and (path / SUMMARY).is_file():
        return path
    return None


def run_selection(run_dir: Path) -> RunSelection:
    """The selection of a run folder, checked to be there.

    Raises:
        InputDataError: naming the folder: its ``summary.json`` is not a gen_loop summary, or
            the run has no selection (interrupted, no trial completed, finalised by another
            worker, or ``selected/`` removed), with what to do.
    """
    from gen_loop.loop.summary import RunSummary

    try:
        summary = RunSummary.load(run_dir / SUMMARY)
    except (OSError, ValueError) as err:
        raise InputDataError(
            f"run folder {run_dir}: {err}; give a run folder that `run` wrote, or a folder of "
            "images"
        ) from err
    dataset = run_dir / SELECTED
    manifest_file = dataset / MANIFEST
    if not manifest_file.is_file() or not (dataset / "images").is_dir():
        raise InputDataError(
            f"run folder {run_dir} has no selected samples ({manifest_file} or "
            f"{dataset / 'images'} is missing): {_why_no_selection(summary, run_dir)}"
        )
    try:
        manifest = json.loads(manifest_file.read_text())
        samples = manifest["samples"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputDataError(
            f"run folder {run_dir}: {manifest_file} is not a selection manifest ({err})"
        ) from err
    trial = summary.final_stage.best_trial if summary.final_stage else summary.best_trial
    return RunSelection(dataset, len(samples), _how_selected(manifest, samples, trial))


def _why_no_selection(summary: RunSummary, run_dir: Path) -> str:
    """Why a run has no ``selected/``, and what to do."""
    from gen_loop.loop.console import INTERRUPTED

    holder = summary.finalised_by
    if holder is not None:
        return (
            "another worker of its study made the final stage; give that worker's run folder "
            f"{holder.get('run_dir')}"
        )
    if summary.stop_reason == INTERRUPTED:
        return (
            "the run was interrupted before its final stage (selection, fine-tune); run it "
            f"again with hydra.run.dir={run_dir} to finish it"
        )
    if summary.best_distance is None:
        return f"no trial completed ({summary.stop_reason}); there was nothing to select"
    if summary.has_final_stage:
        return (
            f"its summary records {summary.selected_count} selected samples, but {SELECTED}/ "
            "was moved or deleted; give the folder it was moved to (images/ + labels/)"
        )
    return (
        f"the run stopped before its final stage (selection, fine-tune): "
        f"{summary.stop_reason}; run it again with hydra.run.dir={run_dir} to finish it"
    )


def _how_selected(manifest: dict[str, Any], samples: list[Any], trial: int | None) -> str:
    """The description's words for how the samples were selected."""
    of = "of the best camera" + (f", trial {trial}" if trial is not None else "")
    method = manifest.get("method", "?")
    cameras = manifest.get("cameras") or []
    if method == "camera" and len(cameras) > 1:
        from_best = sum(1 for s in samples if isinstance(s, dict) and s.get("camera") == 0)
        return (
            f"{of} (selection=camera: per scene the closest of {len(cameras)} cameras, "
            f"{from_best} from the best)"
        )
    if method == "jitter":
        return f"{of} (selection=jitter: each scene under one of {len(cameras)} cameras about it)"
    return f"{of} (selection={method}, from a pool of {manifest.get('pool_size', '?')})"
