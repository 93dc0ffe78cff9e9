"""What a run folder already holds when ``run`` starts in it: a summary, a finished study.

Running the same command again in a run folder resumes it. Three things are decided here,
before the run writes anything:

- the earlier ``summary.json``, read back (an unreadable one stops the run: it is the record
  of the earlier result, and the run would replace it);
- what the distances depend on (target, embedder, scorer), for the study to record or check
  (:func:`gen_loop.search.identity.check_identity`);
- whether the study is finished: its final stage is done and the stop rule, judged on the
  study with this run's settings, would not run another trial. Such a run folder is shown,
  not run again; a larger budget (or a looser stop rule) continues it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import optuna

from gen_loop.config.schema import OnnxEmbedderConfig, RunConfig
from gen_loop.embedder.base import Embedder
from gen_loop.errors import InputDataError
from gen_loop.loop.console import INTERRUPTED
from gen_loop.loop.summary import RunSummary
from gen_loop.loop.target_data import TargetData
from gen_loop.search.convergence import Convergence
from gen_loop.search.identity import Part
from gen_loop.search.workers import StudyView, finalised

SUMMARY_FILE = "summary.json"


def earlier_summary(run_dir: Path) -> RunSummary | None:
    """The run folder's ``summary.json``, or None when there is none yet.

    Raises:
        InputDataError: naming the file when it is there but not a gen_loop summary.
    """
    path = run_dir / SUMMARY_FILE
    if not path.exists():
        return None
    try:
        return RunSummary.load(path)
    except (ValueError, OSError) as err:
        raise InputDataError(
            f"{path} holds the earlier result of this run folder and cannot be read ({err}); "
            "it is left as it is: move it away to run this folder again, or use a new "
            "hydra.run.dir"
        ) from None


def distance_parts(cfg: RunConfig, target: TargetData, embedder: Embedder) -> dict[str, Part]:
    """What a trial's distance depends on, for the study's identity record."""
    images = target.images
    score = {k: v for k, v in dataclasses.asdict(cfg.score).items() if k != "noise_floor_splits"}
    score_text = json.dumps(score, sort_keys=True, default=str)
    settings = ", ".join(f"{k}={v}" for k, v in sorted(score.items()) if k != "_target_")
    e = cfg.embedder
    about = (
        f"ONNX {e.model} (tensors {list(e.layers)}, imgsz {e.imgsz})"
        if isinstance(e, OnnxEmbedderConfig)
        else f"{e.model} (weights {e.weights}, layers {list(e.layers)}, imgsz {e.imgsz})"
    )
    return {
        "target": Part(
            "target", f"{target.description} ({len(images.images)} images)", images.fingerprint
        ),
        "embedder": Part(
            "embedder",
            about,
            embedder.fingerprint,
        ),
        "score": Part(
            "score",
            f"{cfg.score._target_.rsplit('.', 1)[-1]} ({settings})",
            hashlib.sha256(score_text.encode()).hexdigest(),
        ),
    }


def is_finished(study: optuna.Study, convergence: Convergence, earlier: RunSummary | None) -> bool:
    """Whether the run folder holds a finished result that this run would only repeat.

    True when ``summary.json`` records a search that was not interrupted, some worker's final
    stage of the study completed, no trial is running and the stop rule (this run's budget and
    settings, judged on the study's trials) says stop before any new trial. A time budget
    (``search.timeout_s``) is per session: it does not make a study finished.
    """
    if earlier is None or earlier.stop_reason == INTERRUPTED or not finalised(study):
        return False
    view = StudyView.of(study)
    return view.running == 0 and view.convergence(convergence).stop_reason(0.0) is not None
