"""Does the loop pay off? Fine-tunes of the base detector, one per condition and seed.

Usage (run under the shared CPU lock; each call is one seed and one or more conditions):

    flock /tmp/gen_loop_cpu.lock .venv/bin/python experiments/downstream/run.py \
        --condition d [b ...] --seed 0 [--target demo|dashcam_dusk|cctv_fog] [--tag NAME] \
        [--override KEY=VALUE ...]

Conditions (the same base detector, fine-tune settings and number of training images):
    a     nothing: the base detector as shipped
    b     default-parameter synthetic images (the source camera)
    c     best-parameter images, no selection (a random subset of the best-parameter pool)
    d     best-parameter images selected near the target centroid (the loop's own select_pool)
    e     oracle: labeled images of the target camera from other scenes (the demo target: its
          hidden parameters on the pool scenes; a mismatch target: a random subset of its
          ``oracle/`` frames, which experiments/mismatch/make_targets.py renders)
    cams  control for selection=camera: each scene under a random one of the best trials'
          cameras (called ``f`` in the results of 2026-11-26)
    dr    domain randomisation, no search: each scene under its own camera drawn uniformly
          from the search space (``search.space``; the pool scenes of the other conditions)
    aug   ultralytics' standard augmentation on (b)'s images: ``finetune.augment=true`` (its
          default HSV, flips, scale, translate, mosaic) and mosaic kept on in every epoch
          (ultralytics' ``close_mosaic=10`` would switch it off for the whole 8-epoch run)
    augnm (aug) as ultralytics runs it by default for 8 epochs: ``finetune.augment=true`` alone,
          so HSV, flips, scale and translate, but mosaic closed from the first epoch
    h     the loop's camera with a small randomisation around it: ``selection=jitter`` (every
          pool scene, in blocks under 16 cameras drawn about the best; the spread per
          parameter the larger of 5 % of its range and the best trials' own spread)
    d2    (d) after the loop's own advice: the seed's loop run again with the unsearched
          parameters its first run named ("the target also differs in ...: add them with
          +search.space...") added to the search space
    d3    (d2) after its own advice in turn: searched parameters whose best value sat at a
          bound of the search range widened ("widen with search.space.X.high=...")
    h3    (d3)'s loop run with (h)'s selection (``selection=jitter``, run's default)
    ha    (h3) in one command: the loop run with ``search.advice_rounds=2`` (it follows its
          own advice itself, each round from the best camera so far), ``selection=jitter``
    hf    (ha) with each advised round started afresh (``search.advice_from_best=false``), as
          the hand-followed (h3) runs were

Targets: ``demo`` (the embedded demo camera; evaluated on its 160 labeled images, scene seed
777) or a mismatch camera of experiments/mismatch (``target=folder`` on
``data/<camera>/target``, evaluated on its 160 labeled frames; render them first with
``experiments/mismatch/make_targets.py``).

The best parameters of seed S come from a real loop run, ``python -m gen_loop run
search.seed=S finetune.enabled=false`` plus the target's overrides (cached under
``runs/loop_S/`` or ``runs/loop_<target>_S/``); each seed also gives the fine-tune seed and
the random subsets and cameras of (b), (c), (e), (cams), (dr), (aug). All synthetic
conditions draw from the same pool scenes (``selection.pool_seed``), so they differ by camera
and selection only. The loop's selection size fixes every condition's training-set size.
``--override`` changes the composed run config for (b)-(aug), e.g. ``finetune.epochs=16``;
the loop run itself uses the defaults plus ``--loop-override``.
Writes ``results/<tag>_<condition>_<seed>.json`` (demo) or
``results/<tag>_<target>_<condition>_<seed>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import compose_run

if TYPE_CHECKING:
    from gen_loop.config import RunConfig
    from gen_loop.embedder.base import Embedder
    from gen_loop.generator.base import Batch, Generator
    from gen_loop.generator.params import ParamValue
    from gen_loop.score import Scorer
    from gen_loop.search.space import SearchSpace
    from gen_loop.selection import Selection

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
WORK = HERE / "runs"  # ignored by git (runs/)
MISMATCH_DATA = HERE.parent / "mismatch" / "data"  # ignored by git: make_targets.py
CONDITIONS = (
    *("a", "b", "c", "d", "e", "cams", "dr", "aug", "augnm", "h", "d2", "d3", "h3", "ha", "hf"),
)
TARGETS = ("demo", "dashcam_dusk", "cctv_fog")  # experiments/mismatch/camera.py CAMERAS
#: Run-config overrides a condition adds to ``--override``.
CONDITION_OVERRIDES: dict[str, tuple[str, ...]] = {
    "aug": ("finetune.augment=true",),
    "augnm": ("finetune.augment=true",),
}
#: The selection each condition composes (every one but (h), (h3) the former default, camera, so
#: the records stay comparable whatever ``run``'s default is).
CONDITION_SELECTION: dict[str, str] = {
    "h": "jitter",
    "h3": "jitter",
    "ha": "jitter",
    "hf": "jitter",
}
#: The conditions that train on the loop's own selection.
LOOP_CONDITIONS = ("d", "h", "d2", "d3", "h3", "ha", "hf")
#: Ultralytics defaults a condition changes for its fine-tune (train_detector passes only the
#: gen_loop settings). close_mosaic=10 of 8 epochs closes mosaic before the first epoch.
ULTRALYTICS_DEFAULTS: dict[str, dict[str, object]] = {"aug": {"close_mosaic": 0}}
#: The trainer's augmentation arguments recorded with every fine-tune (from its args.yaml).
TRAIN_ARGS = (
    "epochs",
    "mosaic",
    "close_mosaic",
    "hsv_h",
    "hsv_s",
    "hsv_v",
    "fliplr",
    "scale",
    "translate",
    "degrees",
    "mixup",
)


def target_overrides(target: str) -> list[str]:
    """The run-config overrides that make ``target`` the loop's target (none for the demo)."""
    if target == "demo":
        return []
    root = MISMATCH_DATA / target / "target"
    if not (root / "data.yaml").exists():
        raise SystemExit(
            f"{root} is missing: render it with experiments/mismatch/make_targets.py (about a "
            "minute, under the CPU lock)"
        )
    return [
        "target=folder",
        f"target.path={root / 'images'}",
        f"target.labels={root / 'data.yaml'}",
    ]


def loop_summary(
    seed: int, loop_overrides: list[str], target: str = "demo"
) -> tuple[dict[str, Any], Path]:
    """The summary and folder of the loop run of ``seed`` on ``target`` (search only); runs
    it if missing."""
    prefix = [] if target == "demo" else [target]
    parts = [re.sub(r"[^\w.+-]", "", o.replace("=", "-")) for o in loop_overrides]
    name = "loop_" + "_".join([*prefix, str(seed), *parts])
    run_dir = WORK / name
    summary = run_dir / "summary.json"
    if not summary.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "gen_loop",
            "run",
            *target_overrides(target),
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


def result_path(tag: str, target: str, condition: str, seed: int) -> Path:
    """Where the record of one fine-tune goes (demo records keep their former names)."""
    parts = [tag, *([] if target == "demo" else [target]), condition, str(seed)]
    return RESULTS / ("_".join(parts) + ".json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--condition", choices=CONDITIONS, nargs="+", required=True, help="one or more, in turn"
    )
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--target", choices=TARGETS, default="demo")
    parser.add_argument("--tag", default="default", help="result name prefix (a variant)")
    parser.add_argument("--override", action="append", default=[], help="run config override")
    parser.add_argument("--loop-override", action="append", default=[])
    args = parser.parse_args()
    from gen_loop._env import set_env_defaults

    set_env_defaults()  # before ultralytics, albumentations and MLflow are imported
    for condition in args.condition:
        run_one(args, condition)


def run_one(args: argparse.Namespace, condition: str) -> None:
    """Run ``condition`` with the command line's seed, target and overrides; write its record."""
    start = time.perf_counter()
    result = run_condition(condition, args.seed, args.override, args.loop_override, args.target)
    result.update(
        condition=condition,
        seed=args.seed,
        target=args.target,
        tag=args.tag,
        overrides=args.override,
        loop_overrides=args.loop_override,
        wall_s=time.perf_counter() - start,
    )
    out = result_path(args.tag, args.target, condition, args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    m = result["metrics"]
    print(
        f"{args.tag} {args.target} {condition} seed {args.seed}: mAP50 {m['map50']:.3f} "
        f"mAP50-95 {m['map50_95']:.3f} pedestrian AP50 {m.get('ap50_pedestrian', 0.0):.3f} "
        f"({result['wall_s']:.0f} s) -> {out}",
        flush=True,
    )


def run_condition(
    condition: str,
    seed: int,
    overrides: list[str],
    loop_overrides: list[str],
    target_name: str = "demo",
) -> dict[str, Any]:
    """Fine-tune (or not, for ``a``) and evaluate on the target; returns the record."""
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
    from gen_loop.search.space import build_space
    from gen_loop.selection import ranked_params, select_pool

    selection_group = f"selection={CONDITION_SELECTION.get(condition, 'camera')}"
    extra = [selection_group, *overrides, *CONDITION_OVERRIDES.get(condition, ())]
    cfg = compose([*target_overrides(target_name), f"finetune.seed={seed}", *extra])
    cache_dir = default_cache_dir()
    configure_offline(cache_dir)
    generator, base_params = build_generator(cfg.generator)
    target = load_target(cfg.target, generator, cache_dir)
    configure_ultralytics()
    weights = resolve_weights(cfg.embedder, cache_dir)
    assert weights is not None and target.labels_yaml is not None
    device = train_device(cfg.finetune.device)
    prefix = [] if target_name == "demo" else [target_name]
    out_dir = (
        WORK / "finetune" / "_".join([*prefix, condition, str(seed), *overrides]).replace("/", "-")
    )
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

    if condition in ("d2", "d3", "h3"):
        loop_overrides = [*loop_overrides, *advised_overrides(seed, loop_overrides, target_name)]
    if condition in ("d3", "h3"):
        loop_overrides = [*loop_overrides, *widened_overrides(seed, loop_overrides, target_name)]
    if condition == "ha":
        loop_overrides = [*loop_overrides, "search.advice_rounds=2"]
    if condition == "hf":
        fresh = ["search.advice_rounds=2", "search.advice_from_best=false"]
        loop_overrides = [*loop_overrides, *fresh]
    summary, loop_dir = loop_summary(seed, loop_overrides, target_name)
    rounds = [loop_record(summary) | {"advised": summary.get("advised")}]
    while summary.get("advised"):  # search.advice_rounds: the last round has the result
        loop_dir = Path(summary["advised"]["run_dir"])
        summary = json.loads((loop_dir / "summary.json").read_text())
        rounds.append(loop_record(summary) | {"advised": summary.get("advised")})
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
    space = build_space(cfg.search.space, generator.parameters, cfg.search.fixed)
    selection = None
    if condition in LOOP_CONDITIONS or cfg.selection.method != "camera":
        selection = select_pool(
            generator,
            embedder,
            scorer,
            best,
            cfg.selection,
            cfg.finetune.val_fraction,
            out_dir / "selected",
            candidates[1:],
            space,
        )
    # The loop's own selection size fixes the training-set size of every condition;
    # selection=camera keeps every pool scene once, so there it is pool_size.
    n = cfg.selection.pool_size if selection is None else len(selection.batch)
    pool = Pool(generator, embedder, scorer, cfg, seed, out_dir)
    if condition == "cams":
        selection = pool.random_cameras(candidates)
    elif condition == "dr":
        selection = pool.randomised(space, {**base_params, **space.fixed}, n)
    elif condition == "e" and target.hidden_params is None:
        selection = pool.folder(MISMATCH_DATA / target_name / "oracle", n)
    elif condition not in LOOP_CONDITIONS:
        params = {
            "b": dict(base_params),
            "aug": dict(base_params),
            "augnm": dict(base_params),
            "c": best,
            "e": {**base_params, **(target.hidden_params or {})},
        }[condition]
        selection = pool.random_subset(params, n)
    assert selection is not None
    n_replay = add_replay(
        selection, generator, dict(base_params), cfg.finetune, cfg.selection.pool_seed + 7919
    )
    with ultralytics_defaults(ULTRALYTICS_DEFAULTS.get(condition, {})):
        _, evaluation = finetune_and_evaluate(
            weights,
            cfg.embedder.model,
            selection,
            target.labels_yaml,
            cfg.finetune,
            device,
            out_dir / "finetune",
        )
    train_args = trainer_arguments(out_dir / "finetune" / "train" / "args.yaml")
    check_augmentation(condition, train_args)
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
        "train_args": train_args,
        "loop": loop_record(summary),
        "loop_overrides_used": loop_overrides,
        "loop_rounds": rounds,
    }


def advised_overrides(seed: int, loop_overrides: list[str], target: str) -> list[str]:
    """The ``+search.space...`` overrides the seed's loop run advised (the unsearched
    parameters its console named); none when it converged or named none."""
    from gen_loop.search.attribution import named

    summary, _ = loop_summary(seed, loop_overrides, target)
    return [str(s["override"]) for s in named(summary.get("unsearched_suspects") or [])]


def widened_overrides(seed: int, loop_overrides: list[str], target: str) -> list[str]:
    """The ``search.space.X.low/high`` overrides that widen the ranges whose bound the seed's
    loop run ended at (``gen_loop.search.bounds``, as its console says); none when it
    converged."""
    from gen_loop.loop.components import build_generator
    from gen_loop.search.bounds import at_bounds
    from gen_loop.search.space import build_space

    summary, _ = loop_summary(seed, loop_overrides, target)
    if str(summary.get("stop_reason", "")).startswith("converged"):
        return []
    cfg = compose([*target_overrides(target), *loop_overrides])
    specs = build_generator(cfg.generator)[0].parameters
    space = build_space(cfg.search.space, specs, cfg.search.fixed)
    hits = at_bounds(summary["best_params"], space.distributions, specs)
    return [h.override for h in hits if h.override is not None]


def loop_record(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the record keeps of the seed's loop run."""
    return {
        "best_distance": summary["best_distance"],
        "noise_floor": summary["noise_floor"]["mean"],
        "recovery_error": summary.get("recovery_error"),
        "n_trials": summary.get("n_trials"),
        "stop_reason": summary.get("stop_reason"),
        "best_params": summary.get("best_params"),
        "unsearched_suspects": summary.get("unsearched_suspects"),
        "at_range_bounds": summary.get("at_range_bounds"),
    }


@contextmanager
def ultralytics_defaults(values: Mapping[str, object]) -> Iterator[None]:
    """Ultralytics' default training arguments set to ``values`` while the block runs (the
    trainer merges its arguments over ``DEFAULT_CFG``)."""
    from ultralytics.utils import DEFAULT_CFG

    before = {key: getattr(DEFAULT_CFG, key) for key in values}
    for key, value in values.items():
        setattr(DEFAULT_CFG, key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            setattr(DEFAULT_CFG, key, value)


def trainer_arguments(args_yaml: Path) -> dict[str, Any]:
    """The augmentation arguments the ultralytics trainer ran with (its ``args.yaml``)."""
    args = yaml.safe_load(args_yaml.read_text())
    return {key: args.get(key) for key in TRAIN_ARGS}


def check_augmentation(condition: str, args: Mapping[str, Any]) -> None:
    """Stop if (aug) / (augnm) did not train with ultralytics' augmentation (mosaic on in
    every epoch / closed from the first), or another condition did."""
    from ultralytics.utils import DEFAULT_CFG_DICT

    hsv = ("hsv_h", "hsv_s", "hsv_v", "scale", "translate", "fliplr")
    if condition in ("aug", "augnm"):
        wrong = {k: args[k] for k in hsv if args[k] != DEFAULT_CFG_DICT[k]}
        closed = args["close_mosaic"] >= args["epochs"]
        if args["mosaic"] != DEFAULT_CFG_DICT["mosaic"] or closed != (condition == "augnm"):
            wrong |= {"mosaic": args["mosaic"], "close_mosaic": args["close_mosaic"]}
    else:
        wrong = {k: args[k] for k in ("mosaic", *hsv[:5]) if args[k] != 0}
    if wrong:
        raise SystemExit(f"condition {condition}: unexpected trainer augmentation {wrong}")


@dataclasses.dataclass(frozen=True)
class Pool:
    """Training sets of the pool scenes (``selection.pool_seed``) without the loop's selection.

    Attributes:
        generator, embedder, scorer: the loop's components (the scorer fitted on the target).
        cfg: the composed run config.
        seed: the experiment seed (random subsets, cameras).
        out_dir: the condition's folder.
    """

    generator: Generator
    embedder: Embedder
    scorer: Scorer
    cfg: RunConfig
    seed: int
    out_dir: Path

    def write(
        self,
        pool: Batch,
        chosen: np.ndarray,
        name: str,
        camera: np.ndarray | None = None,
        cameras: Sequence[Mapping[str, ParamValue]] = (),
    ) -> Selection:
        """``pool[chosen]`` as a fine-tuning set, with its distances to the target."""
        from gen_loop.selection import write_selection

        distances = self.scorer.sample_distances(self.embedder.embed(pool.images))
        return write_selection(
            pool,
            chosen,
            distances,
            float("nan"),
            self.cfg.selection,
            self.cfg.finetune.val_fraction,
            self.out_dir / name,
            camera,
            cameras,
        )

    def random_subset(self, params: Mapping[str, ParamValue], n: int) -> Selection:
        """``n`` random samples of the pool rendered with ``params``."""
        sel = self.cfg.selection
        pool = self.generator.generate(params, sel.pool_size, sel.pool_seed)
        chosen = np.random.default_rng(self.seed).permutation(len(pool))[:n]
        return self.write(pool, chosen, "selected_random")

    def random_cameras(self, cameras: Sequence[Mapping[str, ParamValue]]) -> Selection:
        """Every pool scene under a random one of ``cameras`` (the loop's best trials)."""
        n = self.cfg.selection.pool_size
        rng = np.random.default_rng(self.seed)  # one stream: the 2026-11-26 (f) results
        pick = rng.integers(len(cameras), size=n)
        pool = self.per_scene([cameras[i] for i in pick])
        chosen = rng.permutation(n)
        return self.write(pool, chosen, "selected_random_cameras", pick, cameras)

    def randomised(self, space: SearchSpace, base: Mapping[str, ParamValue], n: int) -> Selection:
        """``n`` random pool scenes, each under its own camera drawn uniformly from ``space``."""
        from gen_loop.selection.around import uniform_point

        rng = np.random.default_rng([self.seed, 14])
        size = self.cfg.selection.pool_size
        cameras = [{**base, **uniform_point(space, rng)} for _ in range(size)]
        pool = self.per_scene(cameras)
        chosen = rng.permutation(size)[:n]
        return self.write(pool, chosen, "selected_randomised", np.arange(size), cameras)

    def per_scene(self, cameras: Sequence[Mapping[str, ParamValue]]) -> Batch:
        """Pool scene ``j`` rendered with ``cameras[j]`` (image ``j`` of a batch depends only on
        its parameters, the batch seed and ``j``: the generator contract)."""
        from gen_loop.generator.base import Batch

        seed = self.cfg.selection.pool_seed
        images, labels, seeds = [], [], []
        for j, params in enumerate(cameras):
            one = self.generator.generate(params, j + 1, seed).subset([j])
            images.append(one.images[0])
            labels.append(one.labels[0])
            seeds.append(one.seeds[0])
        names = self.generator.class_names
        return Batch(np.stack(images), tuple(labels), names, dict(cameras[0]), tuple(seeds))

    def folder(self, dataset: Path, n: int) -> Selection:
        """``n`` random labeled images of a YOLO folder (a mismatch target's oracle frames)."""
        pool = read_folder(dataset, self.generator.class_names)
        if len(pool) < n:
            raise SystemExit(f"{dataset} has {len(pool)} images, the training sets have {n}")
        chosen = np.random.default_rng(self.seed).permutation(len(pool))[:n]
        return self.write(pool, chosen, "selected_oracle")


def read_folder(dataset: Path, class_names: tuple[str, ...]) -> Batch:
    """The images and YOLO labels of ``dataset/images`` and ``dataset/labels``."""
    from gen_loop._imageio import read_image_rgb
    from gen_loop.generator.base import Batch
    from gen_loop.generator.yolo_io import read_yolo_labels

    files = sorted((dataset / "images").glob("*.png"))
    labels = read_yolo_labels([dataset / "labels" / f"{f.stem}.txt" for f in files])
    images = np.stack([read_image_rgb(f) for f in files])
    return Batch(
        images, tuple(labels), class_names, {"folder": str(dataset)}, tuple(range(len(files)))
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
