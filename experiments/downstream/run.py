"""Does the loop pay off? One fine-tune of the base detector per invocation, on the demo target.

Usage (run under the shared CPU lock; each call is one condition and one seed):

    flock /tmp/gen_loop_cpu.lock .venv/bin/python experiments/downstream/run.py \
        --condition d --seed 0 [--tag NAME] [--override KEY=VALUE ...]

Conditions (the same base detector, fine-tune settings and number of training images):
    a  nothing: the base detector as shipped
    b  default-parameter synthetic images (the source camera)
    c  best-parameter images, no selection (a random subset of the best-parameter pool)
    d  best-parameter images selected near the target centroid (the loop's own select_pool)
    e  oracle: labeled images of the target camera (its hidden parameters) from other scenes
    f  control for selection=camera: each scene under a random one of the best trials' cameras

The best parameters of seed S come from a real loop run, ``python -m gen_loop run
search.seed=S finetune.enabled=false`` (cached under ``runs/loop_S/``); each seed also gives
the fine-tune seed and the random subset of (b), (c), (e). All conditions draw from the same
pool scenes (``selection.pool_seed``), so they differ by camera and selection only. The demo
target's 160 images (scene seed 777, never rendered for training) are the evaluation set.
``--override`` changes the composed run config for (b)-(e), e.g. ``finetune.epochs=16`` or
``selection.method=topk``; the loop run itself uses the defaults plus ``--loop-override``.
Writes ``results/<tag>_<condition>_<seed>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import compose_run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
WORK = HERE / "runs"  # ignored by git (runs/)
CONDITIONS = ("a", "b", "c", "d", "e", "f")


def loop_summary(seed: int, loop_overrides: list[str]) -> tuple[dict[str, Any], Path]:
    """The summary and folder of the loop run of ``seed`` (search only); runs it if missing."""
    name = "loop_" + "_".join([str(seed), *[o.replace("=", "-") for o in loop_overrides]])
    run_dir = WORK / name
    summary = run_dir / "summary.json"
    if not summary.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "gen_loop",
            "run",
            f"search.seed={seed}",
            "finetune.enabled=false",
            f"hydra.run.dir={run_dir}",
            *loop_overrides,
        ]
        print("loop:", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=WORK, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"loop run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(summary.read_text()), run_dir


def compose(overrides: list[str]) -> Any:
    """The run config the loop would use, with ``overrides``."""
    return compose_run(overrides, run_dir=WORK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--condition", choices=CONDITIONS, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--tag", default="default", help="result name prefix (a variant)")
    parser.add_argument("--override", action="append", default=[], help="run config override")
    parser.add_argument("--loop-override", action="append", default=[])
    args = parser.parse_args()
    for key, value in (
        ("NO_ALBUMENTATIONS_UPDATE", "1"),
        ("YOLO_OFFLINE", "1"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ):
        os.environ.setdefault(key, value)
    start = time.perf_counter()
    result = run_condition(args.condition, args.seed, args.override, args.loop_override)
    result.update(
        condition=args.condition,
        seed=args.seed,
        tag=args.tag,
        overrides=args.override,
        loop_overrides=args.loop_override,
        wall_s=time.perf_counter() - start,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.tag}_{args.condition}_{args.seed}.json"
    out.write_text(json.dumps(result, indent=2))
    m = result["metrics"]
    print(
        f"{args.tag} {args.condition} seed {args.seed}: mAP50 {m['map50']:.3f} "
        f"mAP50-95 {m['map50_95']:.3f} pedestrian AP50 {m.get('ap50_pedestrian', 0.0):.3f} "
        f"({result['wall_s']:.0f} s) -> {out}",
        flush=True,
    )


def run_condition(
    condition: str, seed: int, overrides: list[str], loop_overrides: list[str]
) -> dict[str, Any]:
    """Fine-tune (or not, for ``a``) and evaluate on the demo target; returns the record."""
    import optuna

    from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
    from gen_loop.embedder.cache import cached_embeddings
    from gen_loop.finetune import (
        add_replay,
        evaluate_detector,
        finetune_and_evaluate,
        train_device,
    )
    from gen_loop.loop.components import build_embedder, build_generator, resolve_weights
    from gen_loop.loop.target_data import load_target
    from gen_loop.score import CentroidScorer
    from gen_loop.selection import ranked_params, select_pool

    cfg = compose([f"finetune.seed={seed}", *overrides])
    cache_dir = default_cache_dir()
    configure_offline(cache_dir)
    generator, base_params = build_generator(cfg.generator)
    target = load_target(cfg.target, generator, cache_dir)
    configure_ultralytics()
    weights = resolve_weights(cfg.embedder, cache_dir)
    assert weights is not None and target.labels_yaml is not None and target.hidden_params
    device = train_device(cfg.finetune.device)
    out_dir = WORK / "finetune" / "_".join([condition, str(seed), *overrides]).replace("/", "-")
    record: dict[str, Any] = {
        "eval_images": len(target.images.images),
        "finetune": dataclasses.asdict(cfg.finetune),
        "selection": dataclasses.asdict(cfg.selection),
    }
    if condition == "a":
        metrics = evaluate_detector(
            weights,
            target.labels_yaml,
            cfg.finetune.imgsz,
            cfg.finetune.batch,
            device,
            out_dir / "eval",
        )
        return record | {"metrics": metrics.as_dict(), "n_train": 0}

    summary, loop_dir = loop_summary(seed, loop_overrides)
    study = optuna.load_study(
        study_name=summary["study"]["name"], storage=f"sqlite:///{loop_dir / 'optuna.db'}"
    )
    embedder = build_embedder(cfg.embedder, weights)
    target_emb = cached_embeddings(
        embedder, target.images.images, target.images.fingerprint, cache_dir
    )
    scorer = CentroidScorer(cfg.score.metric).fit(target_emb)  # the loop's default scorer
    best = summary["all_params"]
    candidates = ranked_params(study, base_params, cfg.selection.pool_trials)  # best first
    # The loop's own selection: its size fixes the training-set size of every condition.
    selection = select_pool(
        generator,
        embedder,
        scorer,
        best,
        cfg.selection,
        cfg.finetune.val_fraction,
        out_dir / "selected",
        candidates[1:],
    )
    if condition == "f":
        selection = _random_cameras(generator, embedder, scorer, candidates, seed, cfg, out_dir)
    elif condition != "d":
        params = {
            "b": dict(base_params),
            "c": best,
            "e": {**base_params, **target.hidden_params},
        }[condition]
        selection = _random_selection(
            generator, embedder, scorer, params, len(selection.batch), seed, cfg, out_dir
        )
    n_replay = add_replay(
        selection, generator, dict(base_params), cfg.finetune, cfg.selection.pool_seed + 7919
    )
    _, evaluation = finetune_and_evaluate(
        weights,
        cfg.embedder.model,
        selection,
        target.labels_yaml,
        cfg.finetune,
        device,
        out_dir / "finetune",
    )
    labels = selection.batch.labels
    return record | {
        "metrics": evaluation["after"],
        "before": evaluation["before"],
        "n_train": len(selection.batch) - selection.n_val,
        "n_val": selection.n_val,
        "n_replay": n_replay,
        "pool_size": selection.pool_size,
        "threshold": selection.threshold,
        "distance_mean": float(np.mean(selection.distances)),
        "objects_per_image": float(np.mean([len(x) for x in labels])),
        "pedestrians_per_image": float(np.mean([(x[:, 0] == 2).sum() for x in labels])),
        "params": selection.batch.params,
        "loop": {
            "best_distance": summary["best_distance"],
            "noise_floor": summary["noise_floor"]["mean"],
            "recovery_error": summary.get("recovery_error"),
        },
    }


def _random_cameras(generator, embedder, scorer, cameras, seed, cfg, out_dir):  # type: ignore[no-untyped-def]
    """The loop's camera pool, but each scene under a random camera (no selection)."""
    from gen_loop.generator.base import Batch
    from gen_loop.selection import write_selection

    rng = np.random.default_rng(seed)
    n = cfg.selection.pool_size
    pick = rng.integers(len(cameras), size=n)
    images, labels = None, [None] * n
    for index, params in enumerate(cameras):
        batch = generator.generate(params, n, cfg.selection.pool_seed)
        if images is None:
            images, seeds = batch.images.copy(), batch.seeds
        mask = pick == index
        images[mask] = batch.images[mask]
        for j in np.flatnonzero(mask):
            labels[j] = batch.labels[j]
    pool = Batch(images, tuple(labels), generator.class_names, dict(cameras[0]), seeds)
    distances = scorer.sample_distances(embedder.embed(pool.images))
    return write_selection(
        pool,
        rng.permutation(n),
        distances,
        float("nan"),
        cfg.selection,
        cfg.finetune.val_fraction,
        out_dir / "selected_random_cameras",
        pick,
        cameras,
    )


def _random_selection(generator, embedder, scorer, params, n, seed, cfg, out_dir):  # type: ignore[no-untyped-def]
    """``n`` random samples of a pool rendered with ``params`` (same scenes as the loop's)."""
    from gen_loop.selection import write_selection

    pool = generator.generate(params, cfg.selection.pool_size, cfg.selection.pool_seed)
    distances = scorer.sample_distances(embedder.embed(pool.images))
    chosen = np.random.default_rng(seed).permutation(len(pool))[:n]
    return write_selection(
        pool,
        chosen,
        distances,
        float("nan"),
        cfg.selection,
        cfg.finetune.val_fraction,
        out_dir / "selected_random",
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
