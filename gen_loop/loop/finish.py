"""After the search: render a fresh pool with the best parameters, keep the samples closest
to the target, fine-tune the base detector on them and evaluate before/after."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gen_loop.config.schema import FinetuneConfig, SelectionConfig
from gen_loop.embedder.base import Embedder
from gen_loop.errors import ConfigError
from gen_loop.finetune.replay import (
    add_training_images,
    replay_count,
    sample_replay,
    source_train_images,
)
from gen_loop.finetune.train import evaluate_detector, train_detector
from gen_loop.generator.base import Batch, Generator
from gen_loop.generator.params import ParamValue
from gen_loop.generator.yolo_io import write_yolo_dataset
from gen_loop.score.scorer import Scorer
from gen_loop.selection.select import closest_camera, select_closest
from gen_loop.target.images import list_images

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """The selected samples.

    Attributes:
        batch: the selected images and labels, closest first.
        distances: their distances to the target centroid.
        threshold: the distance threshold that was applied.
        pool_size: how many samples were rendered.
        data_yaml: the YOLO dataset written from them.
        manifest: a JSON file listing each selected sample, its seed and distance.
        n_val: how many of them (the closest) form the validation split.
    """

    batch: Batch
    distances: np.ndarray
    threshold: float
    pool_size: int
    data_yaml: Path
    manifest: Path
    n_val: int


def select_pool(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    params: dict[str, ParamValue],
    cfg: SelectionConfig,
    val_fraction: float,
    out_dir: Path,
    candidates: Sequence[Mapping[str, ParamValue]] = (),
) -> Selection:
    """Render ``cfg.pool_size`` fresh scenes with ``params`` and keep the closest samples.

    With ``selection.method=camera`` every scene is rendered with ``params`` and with the
    first ``selection.pool_trials - 1`` of ``candidates`` (the next-best trials' parameters),
    and each scene keeps its rendering closest to the target: the camera is selected, the
    scene mix is left alone.
    """
    if cfg.method == "camera":
        cameras = [dict(params), *(dict(c) for c in candidates)][: cfg.pool_trials]
        return _select_cameras(generator, embedder, scorer, cameras, cfg, val_fraction, out_dir)
    pool = generator.generate(params, cfg.pool_size, cfg.pool_seed)
    distances = scorer.sample_distances(embedder.embed(pool.images))
    chosen, threshold = select_closest(
        distances, cfg.method, scorer.target_sample_distances, cfg.quantile, cfg.top_k
    )
    if len(chosen) == 0:
        # Nothing as close as the target's own samples: keep the closest quarter instead of
        # fine-tuning on nothing, and say so. With one camera for the whole pool this keeps
        # the most average scenes, a content filter that cost 3-8 mAP50 points against no
        # selection (experiments/downstream/RESULTS.md); selection=camera avoids it.
        chosen = np.argsort(distances)[: max(1, cfg.pool_size // 4)]
        log.warning(
            "no pool sample within threshold %.4g; keeping the closest %d (this filters scene "
            "content, not camera: selection=camera selects the camera)",
            threshold,
            len(chosen),
        )
    return write_selection(pool, chosen, distances, threshold, cfg, val_fraction, out_dir)


def ranked_params(
    study: optuna.Study, base_params: Mapping[str, ParamValue], k: int
) -> list[dict[str, ParamValue]]:
    """The full parameters of the ``k`` best distinct complete trials, best first."""
    from optuna.trial import TrialState

    done = sorted(
        (t for t in study.trials if t.state == TrialState.COMPLETE and t.value is not None),
        key=lambda t: t.value,  # type: ignore[arg-type, return-value]
    )
    out: list[dict[str, ParamValue]] = []
    for trial in done:
        params = {**base_params, **trial.params}
        if params not in out:
            out.append(params)
        if len(out) == k:
            break
    return out


def write_selection(
    pool: Batch,
    chosen: np.ndarray,
    distances: np.ndarray,
    threshold: float,
    cfg: SelectionConfig,
    val_fraction: float,
    out_dir: Path,
    camera: np.ndarray | None = None,
    cameras: Sequence[Mapping[str, ParamValue]] = (),
) -> Selection:
    """Write ``pool[chosen]`` as the fine-tuning dataset and its manifest.

    ``camera[i]`` (optional) is the index in ``cameras`` of the parameters that rendered
    ``pool[i]``; both go to the manifest.

    The first ``val_fraction`` of ``chosen`` (the closest, when ``chosen`` is ordered by
    distance) form the validation split, the rest the training split.
    """
    selected = pool.subset(chosen)
    n_val = round(len(selected) * val_fraction) if len(selected) >= 5 else 0
    train = selected.subset(np.arange(n_val, len(selected)))
    val = selected.subset(np.arange(n_val)) if n_val else None
    data_yaml = write_yolo_dataset(train, out_dir, val=val, prefix="sel")
    manifest = out_dir / "manifest.json"
    rows = [
        {
            "rank": r,
            "pool_index": int(i),
            "seed": int(pool.seeds[i]),
            "distance": float(distances[i]),
            "split": "val" if r < n_val else "train",
        }
        | ({} if camera is None else {"camera": int(camera[i])})
        for r, i in enumerate(chosen)
    ]
    manifest.write_text(
        json.dumps(
            {
                "params": pool.params,
                "threshold": threshold,
                "method": cfg.method,
                "pool_size": cfg.pool_size,
                "pool_seed": cfg.pool_seed,
                "samples": rows,
                **({"cameras": [dict(c) for c in cameras]} if cameras else {}),
            },
            indent=2,
        )
    )
    return Selection(selected, distances[chosen], threshold, len(pool), data_yaml, manifest, n_val)


def _select_cameras(
    generator: Generator,
    embedder: Embedder,
    scorer: Scorer,
    cameras: list[dict[str, ParamValue]],
    cfg: SelectionConfig,
    val_fraction: float,
    out_dir: Path,
) -> Selection:
    """Each of ``cfg.pool_size`` scenes under each camera; per scene the closest rendering."""
    images: np.ndarray | None = None
    labels: list[np.ndarray] = []
    best = np.full(cfg.pool_size, np.inf)
    camera = np.zeros(cfg.pool_size, dtype=int)
    seeds: tuple[int, ...] = ()
    for index, params in enumerate(cameras):  # one rendering of the pool in memory at a time
        batch = generator.generate(params, cfg.pool_size, cfg.pool_seed)
        distances = scorer.sample_distances(embedder.embed(batch.images))
        winner, best = closest_camera(np.stack([best, distances]))
        closer = winner == 1
        if images is None:
            images, labels, seeds = batch.images.copy(), list(batch.labels), batch.seeds
        else:
            images[closer] = batch.images[closer]
            labels = [batch.labels[j] if closer[j] else labels[j] for j in range(len(labels))]
        camera[closer] = index
    assert images is not None
    pool = Batch(images, tuple(labels), generator.class_names, dict(cameras[0]), seeds)
    chosen = np.argsort(best, kind="stable")
    log.info("camera selection: scenes per camera %s", np.bincount(camera, minlength=len(cameras)))
    return write_selection(
        pool, chosen, best, float(best.max()), cfg, val_fraction, out_dir, camera, cameras
    )


def add_replay(
    selection: Selection,
    generator: Generator,
    source_params: dict[str, ParamValue],
    cfg: FinetuneConfig,
    seed: int,
) -> int:
    """Mix ``cfg.replay_fraction`` of source-camera images into the selection's training set.

    The source images are the user's (``cfg.replay_data``) or rendered with the generator's
    current parameters from a seed of their own. Returns how many were added.
    """
    n_train = len(selection.batch) - selection.n_val
    n = replay_count(n_train, cfg.replay_fraction)
    if n == 0:
        return 0
    if cfg.replay_data is not None:
        images, names = source_train_images(Path(cfg.replay_data))
        if tuple(names) != tuple(generator.class_names):
            raise ConfigError(
                "finetune.replay_data",
                f"its classes {names} differ from the generator's {list(generator.class_names)}",
            )
        chosen = sample_replay(images, n, seed)
    else:
        batch = generator.generate(source_params, n, seed)
        replay_yaml = write_yolo_dataset(
            batch, selection.data_yaml.parent / "replay", prefix="src"
        )
        chosen = list_images(replay_yaml.parent / "images")
    add_training_images(selection.data_yaml, chosen, "replay")
    return len(chosen)


def finetune_and_evaluate(
    base_weights: Path,
    model: str,
    selection: Selection,
    eval_yaml: Path | None,
    cfg: FinetuneConfig,
    device: str,
    out_dir: Path,
) -> tuple[Path, dict[str, Any]]:
    """Fine-tune ``base_weights`` on the selection; evaluate before and after on ``eval_yaml``.

    Returns:
        The fine-tuned weights and ``{"before": metrics, "after": metrics}`` (or a
        ``skipped`` message when there are no labeled target images).
    """
    evaluation: dict[str, Any] = {}
    mismatch = _class_mismatch(base_weights, selection.batch.class_names)
    if mismatch:
        log.warning(mismatch)
        evaluation["warning"] = mismatch
    if eval_yaml is not None:
        before = evaluate_detector(
            base_weights, eval_yaml, cfg.imgsz, cfg.batch, device, out_dir / "eval_before"
        )
        evaluation["before"] = before.as_dict()
    weights = train_detector(
        selection.data_yaml,
        out_dir / "train",
        model,
        base_weights,
        cfg.epochs,
        cfg.imgsz,
        cfg.batch,
        device,
        cfg.seed,
        lr0=cfg.lr0,
        augment=cfg.augment,
    )
    if eval_yaml is not None:
        after = evaluate_detector(
            weights, eval_yaml, cfg.imgsz, cfg.batch, device, out_dir / "eval_after"
        )
        evaluation["after"] = after.as_dict()
    else:
        evaluation["skipped"] = (
            "no labeled target data: evaluation skipped (give target.labels=DATA_YAML "
            "for a labeled holdout)"
        )
    return weights, evaluation


def _class_mismatch(weights: Path, class_names: tuple[str, ...]) -> str | None:
    """A message when the detector's classes are not the data's (its head is then re-made)."""
    from ultralytics import YOLO

    names = YOLO(str(weights)).names
    theirs = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    if theirs == list(class_names):
        return None
    return (
        f"the base detector's classes {theirs} differ from the data's {list(class_names)}: "
        "ultralytics re-initialises the detection head, and 'before' scores are not comparable"
    )
