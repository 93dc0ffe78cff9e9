"""Which embedding layer's distance predicts the fine-tuned accuracy? (issue 14, part 3)

Usage (renders and embeds only, no fine-tune; run under the shared CPU lock):

    flock /tmp/gen_loop_cpu.lock .venv/bin/python experiments/downstream/distance_layers.py
    .venv/bin/python experiments/downstream/distance_layers.py --report

Every point of ``distance_vs_map.py`` (``results/distance_vs_map/``: a camera of the search's
own trials, the mAP50 a detector fine-tuned on its 64 pool scenes reached) is rendered again
(the same 64 scenes, ``selection.pool_seed``) and embedded by the base detector at every
candidate layer at once; each layer set's distance to the target is computed with the loop's
scorer (``zscore_l2`` centroid) and with ``frechet``, and ranked against the recorded mAP50.
The loop embeds at layer 14 (chosen in experiments/landscape for a well-posed search); the
question here is whether another layer's distance orders the cameras by accuracy better.
Layer sets are chosen on ``--tune`` targets (demo and dashcam_dusk by default) and reported on
the others as held out. Distances per point: ``results/distance_layers/distances.json``
(kept: a point already measured is not redone); the tables: ``distance_layers.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run.py, distance_vs_map.py
sys.path.insert(0, str(HERE.parents[1]))  # gen_loop
import distance_vs_map  # noqa: E402
import run as downstream  # noqa: E402

OUT = HERE / "results" / "distance_layers" / "distances.json"
#: Channels of each candidate layer's output (gen_loop/embedder/models/yolov7-tiny.yaml).
LAYER_CHANNELS = {14: 128, 21: 256, 28: 512, 37: 256, 57: 64, 65: 128, 73: 256}
#: The layer sets compared: each single layer, the backbone pyramid, the detection-head inputs.
LAYER_SETS: dict[str, tuple[int, ...]] = {
    **{str(layer): (layer,) for layer in LAYER_CHANNELS},
    "14+21+28": (14, 21, 28),
    "57+65+73": (57, 65, 73),
    "all": tuple(LAYER_CHANNELS),
}
METRICS = ("zscore_l2", "frechet")


def slices() -> dict[int, slice]:
    """Where each layer's channels lie in the concatenated embedding."""
    out, start = {}, 0
    for layer, channels in LAYER_CHANNELS.items():
        out[layer] = slice(start, start + channels)
        start += channels
    return out


def columns(embedding: np.ndarray, layers: tuple[int, ...]) -> np.ndarray:
    """The embedding's channels of ``layers``."""
    where = slices()
    return np.concatenate([embedding[:, where[layer]] for layer in layers], axis=1)


def measure() -> None:
    """Distances under every layer set and metric for every recorded point not yet measured."""
    from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
    from gen_loop.embedder.cache import cached_embeddings
    from gen_loop.loop.components import build_embedder, build_generator, resolve_weights
    from gen_loop.loop.target_data import load_target
    from gen_loop.score import CentroidScorer, FrechetScorer

    done: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}
    by_target: dict[str, list[dict[str, Any]]] = {}
    for recs in distance_vs_map.load().values():
        for rec in recs:
            by_target.setdefault(rec["target"], []).append(rec)
    layers = "[" + ",".join(str(layer) for layer in LAYER_CHANNELS) + "]"
    for target_name, recs in by_target.items():
        todo = [r for r in recs if point_key(r) not in done]
        if not todo:
            continue
        cfg = downstream.compose(
            [*downstream.target_overrides(target_name), f"embedder.layers={layers}"]
        )
        cache_dir = default_cache_dir()
        configure_offline(cache_dir)
        generator, base_params = build_generator(cfg.generator)
        target = load_target(cfg.target, generator, cache_dir)
        configure_ultralytics()
        embedder = build_embedder(cfg.embedder, resolve_weights(cfg.embedder, cache_dir))
        assert embedder.dim == sum(LAYER_CHANNELS.values()), embedder.dim
        target_emb = cached_embeddings(
            embedder, target.images.images, target.images.fingerprint, cache_dir
        )
        scorers = {
            (name, metric): (
                CentroidScorer("zscore_l2") if metric == "zscore_l2" else FrechetScorer()
            ).fit(columns(target_emb, layer_set))
            for name, layer_set in LAYER_SETS.items()
            for metric in METRICS
        }
        for rec in todo:
            params = {**base_params, **rec["params"]}
            batch = generator.generate(params, cfg.selection.pool_size, cfg.selection.pool_seed)
            emb = embedder.embed(batch.images)
            done[point_key(rec)] = {
                f"{name} {metric}": scorer.score(columns(emb, LAYER_SETS[name]))
                for (name, metric), scorer in scorers.items()
            }
            OUT.write_text(json.dumps(done, indent=1))
            layer14 = done[point_key(rec)]["14 zscore_l2"]
            print(f"{point_key(rec)}: layer 14 distance {layer14:.3f}", flush=True)


def point_key(rec: dict[str, Any]) -> str:
    return f"{rec['target']} seed {rec['seed']} trial {rec['trial']}"


def report(tune: tuple[str, ...]) -> str:
    """Spearman rho per target, layer set and metric (mAP50 and pedestrian AP50)."""
    from scipy.stats import spearmanr

    distances: dict[str, dict[str, float]] = json.loads(OUT.read_text())
    groups = {
        name: [r for r in recs if point_key(r) in distances]
        for name, recs in distance_vs_map.load().items()
    }
    groups = {name: recs for name, recs in groups.items() if len(recs) >= 5}
    names = sorted(groups, key=lambda g: (g.split()[0] not in tune, g))
    header = " | ".join(
        f"{g} ({len(groups[g])}{'' if g.split()[0] in tune else ', held out'})" for g in names
    )
    lines = [
        "rho(distance, fine-tuned mAP50) / rho(distance, pedestrian AP50); each cell a "
        "Spearman rank correlation over the group's points (negative: nearer is better)",
        "",
        f"| layers | metric | {header} | mean rho, chosen-on targets | mean rho, held out |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for name in LAYER_SETS:
        for metric in METRICS:
            key = f"{name} {metric}"
            cells, tuned, held = [], [], []
            for g in names:
                recs = groups[g]
                d = [distances[point_key(r)][key] for r in recs]
                rho = spearmanr(d, [r["metrics"]["map50"] for r in recs]).statistic
                ped = spearmanr(d, [r["metrics"].get("ap50_pedestrian", 0.0) for r in recs])
                cells.append(f"{rho:+.2f} / {ped.statistic:+.2f}")
                (tuned if g.split()[0] in tune else held).append(rho)
            row = " | ".join([name, metric, *cells, mean(tuned), mean(held)])
            lines.append(f"| {row} |")
    text = "\n".join(lines) + "\n"
    (HERE / "distance_layers.md").write_text(text)
    return text


def mean(values: list[float]) -> str:
    return f"{np.mean(values):+.2f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", action="store_true", help="only write the table")
    parser.add_argument(
        "--tune",
        nargs="+",
        default=["demo", "dashcam_dusk"],
        help="targets the layer set is chosen on (the others are reported as held out)",
    )
    args = parser.parse_args()
    from gen_loop._env import set_env_defaults

    set_env_defaults()  # before ultralytics, albumentations and MLflow are imported
    if not args.report:
        measure()
    print(report(tuple(args.tune)))


if __name__ == "__main__":
    main()
