"""Does the distance predict accuracy? Fine-tunes under the search's own trials' cameras.

Usage (each point is one fine-tune; run under the shared CPU lock):

    for i in $(seq 20); do flock /tmp/gen_loop_cpu.lock .venv/bin/python \
        experiments/downstream/distance_vs_map.py --target demo --seed 0 --n 20 --points 1; done
    .venv/bin/python experiments/downstream/distance_vs_map.py --report

For the loop run of ``--seed`` on ``--target`` (run.py's ``loop_summary``, cached under
``runs/``), ``--n`` of its completed trials from the farthest to the best, spread evenly over
the rank of their distance (``--spread rank``, the default) or over the log of the distance
itself (``--spread distance``: a search spends most of its trials near its best, so a spread by
rank puts about half the points on its plateau, at distances within a few per cent of each
other); each render the 64 pool scenes of every condition of run.py
(``selection.pool_seed``) under the trial's camera; the base detector is fine-tuned on them
with the recipe of run.py (8 epochs, 51 train + 13 val) and evaluated on the target's labeled
images. Each point records three distances to the target: the trial's own (the search's
32-image batch, the loop's default scorer), and the training set's (64 images) under the
default scorer (``score.metric``, zscore_l2) and under ``frechet``. One JSON a point in
``results/<out>/`` (default ``distance_vs_map``; an existing one is kept, the script resumes,
and one whose camera is not the trial's stops the script: it came from another loop run);
``--report`` writes ``<out>.md`` and one scatter plot per target and spread, with rho for each
spread on the points it picked.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run.py
sys.path.insert(0, str(HERE.parents[1]))  # gen_loop
import run as downstream  # noqa: E402

RESULTS = HERE / "results"
SPREADS = ("rank", "distance")
DISTANCES = (
    ("trial_distance", "trial (32 images, zscore_l2)"),
    ("set_zscore_l2", "training set, zscore_l2"),
    ("set_frechet", "training set, frechet"),
)


def spread_trials(study: Any, n: int, by: str = "rank") -> list[Any]:
    """``n`` completed trials with distinct parameters from the farthest to the best (both
    included), nearest first: evenly over the rank of their distance (``by="rank"``), or the
    trial nearest each of ``n`` levels evenly spaced in log distance, each trial taken once
    (``by="distance"``; fewer than ``n`` where the study has fewer distinct trials)."""
    from optuna.trial import TrialState

    from gen_loop.search.study import from_objective

    done = sorted(
        (t for t in study.trials if t.state == TrialState.COMPLETE and t.value is not None),
        key=lambda t: t.value,
    )
    distinct: list[Any] = []
    for trial in done:
        if all(trial.params != other.params for other in distinct):
            distinct.append(trial)
    if by == "rank":
        picks = np.linspace(0, len(distinct) - 1, min(n, len(distinct))).round().astype(int)
        return [distinct[i] for i in np.unique(picks)]
    if by != "distance":
        raise ValueError(f"spread must be one of {SPREADS}, got {by!r}")
    log_d = np.log([from_objective(float(t.value)) for t in distinct])
    taken: list[int] = []
    for level in np.linspace(log_d[0], log_d[-1], min(n, len(distinct))):
        free = [i for i in range(len(distinct)) if i not in taken]
        taken.append(min(free, key=lambda i: abs(log_d[i] - level)))
    return [distinct[i] for i in sorted(taken)]


def coarse_order(n: int) -> list[int]:
    """``range(n)`` coarse to fine (both ends, the middle, the quarters, ...), so that a run
    cut short still spans the whole range of distances."""
    order = list(dict.fromkeys(i for i in (0, n - 1) if n > 0))
    spans = deque([(0, n - 1)])
    while spans:
        lo, hi = spans.popleft()
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        order.append(mid)
        spans.extend([(lo, mid), (mid, hi)])
    return order


def point_name(target_name: str, seed: int, trial: int, finetune_seed: int) -> str:
    """A point's record name; a replicate (another fine-tune seed) has its seed appended."""
    suffix = "" if finetune_seed == seed else f"_ft{finetune_seed}"
    return f"{target_name}_{seed}_trial{trial}{suffix}"


def measure(
    target_name: str,
    seed: int,
    n: int,
    most: int | None = None,
    finetune_seed: int | None = None,
    spread: str = "rank",
    out_name: str = "distance_vs_map",
) -> None:
    """Fine-tune and evaluate under each trial's camera that ``spread`` picks (at most ``most``
    new points in this call); one JSON a point in ``results/<out_name>/``, which records the
    spreads that picked it. ``finetune_seed`` (default ``seed``) replicates the points with
    another fine-tune seed: the same images and split, another training run."""
    import optuna

    from gen_loop._env import configure_offline, configure_ultralytics, default_cache_dir
    from gen_loop.embedder.cache import cached_embeddings
    from gen_loop.finetune import finetune_and_evaluate, train_device
    from gen_loop.loop.components import build_embedder, build_generator, resolve_weights
    from gen_loop.loop.target_data import load_target
    from gen_loop.score import CentroidScorer, FrechetScorer
    from gen_loop.search.study import from_objective

    finetune_seed = seed if finetune_seed is None else finetune_seed
    cfg = downstream.compose(
        [*downstream.target_overrides(target_name), f"finetune.seed={finetune_seed}"]
    )
    cache_dir = default_cache_dir()
    configure_offline(cache_dir)
    generator, base_params = build_generator(cfg.generator)
    target = load_target(cfg.target, generator, cache_dir)
    configure_ultralytics()
    weights = resolve_weights(cfg.embedder, cache_dir)
    assert weights is not None and target.labels_yaml is not None
    device = train_device(cfg.finetune.device)
    summary, loop_dir = downstream.loop_summary(seed, [], target_name)
    study = optuna.load_study(
        study_name=summary["study"]["name"], storage=f"sqlite:///{loop_dir / 'optuna.db'}"
    )
    embedder = build_embedder(cfg.embedder, weights)
    target_emb = cached_embeddings(
        embedder, target.images.images, target.images.fingerprint, cache_dir
    )
    centroid = CentroidScorer(cfg.score.metric).fit(target_emb)
    frechet = FrechetScorer().fit(target_emb)
    out_dir = RESULTS / out_name
    out_dir.mkdir(parents=True, exist_ok=True)
    picked = spread_trials(study, n, spread)
    todo = []
    for i in coarse_order(len(picked)):
        path = out_dir / f"{point_name(target_name, seed, picked[i].number, finetune_seed)}.json"
        if not path.exists():
            todo.append(picked[i])
            continue
        rec = json.loads(path.read_text())
        if rec["params"] != picked[i].params:
            raise SystemExit(
                f"{path}: its camera is not trial {picked[i].number}'s of {loop_dir}: it came "
                "from another loop run (give this study's points their own --out)"
            )
        if spread not in rec.setdefault("spreads", ["rank"]):
            rec["spreads"].append(spread)  # the same camera and fine-tune: one point serves
            path.write_text(json.dumps(rec, indent=2))
    for trial in todo[:most]:
        name = point_name(target_name, seed, trial.number, finetune_seed)
        out = out_dir / f"{name}.json"
        start = time.perf_counter()
        params = {**base_params, **trial.params}
        work = downstream.WORK / "distance_vs_map" / name
        pool = downstream.Pool(generator, embedder, centroid, cfg, seed, work)
        selection = pool.random_subset(params, cfg.selection.pool_size)
        emb = embedder.embed(selection.batch.images)
        _, evaluation = finetune_and_evaluate(
            weights,
            cfg.embedder.model,
            selection,
            target.labels_yaml,
            cfg.finetune,
            device,
            work / "finetune",
        )
        record = {
            "target": target_name,
            "seed": seed,
            "finetune_seed": finetune_seed,
            "trial": trial.number,
            "spreads": [spread],
            "stage": trial.user_attrs.get("stage"),
            "params": trial.params,
            "trial_distance": from_objective(float(trial.value)),
            "set_zscore_l2": centroid.score(emb),
            "set_frechet": frechet.score(emb),
            "noise_floor": summary["noise_floor"]["mean"],
            "n_train": len(selection.batch) - selection.n_val,
            "metrics": evaluation["after"],
            "before": evaluation["before"],
            "wall_s": time.perf_counter() - start,
        }
        out.write_text(json.dumps(record, indent=2))
        m = record["metrics"]
        print(
            f"{target_name} seed {seed} trial {trial.number} (fine-tune seed {finetune_seed}): "
            "distance "
            f"{record['trial_distance']:.3f} / set {record['set_zscore_l2']:.3f} / frechet "
            f"{record['set_frechet']:.3f} -> mAP50 {m['map50']:.3f} "
            f"({record['wall_s']:.0f} s)",
            flush=True,
        )


def load(out_dir: Path, replicates: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The points per ``target seed S`` (fine-tuned with seed S); with ``replicates``, the
    points fine-tuned again with another seed instead."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(out_dir.glob("*.json")):
        rec = json.loads(path.read_text())
        if (rec.get("finetune_seed", rec["seed"]) != rec["seed"]) == replicates:
            groups.setdefault(f"{rec['target']} seed {rec['seed']}", []).append(rec)
    return groups


def noise_report(out_dir: Path) -> list[str]:
    """How much of the ranking the fine-tune's own noise allows: the same cameras (images and
    split) fine-tuned again with another seed."""
    from scipy.stats import spearmanr

    main = load(out_dir)
    lines: list[str] = []
    for name, reps in load(out_dir, replicates=True).items():
        first = {r["trial"]: r for r in main.get(name, [])}
        pairs = [(first[r["trial"]], r) for r in reps if r["trial"] in first]
        if len(pairs) < 5:
            continue
        a = np.array([p[0]["metrics"]["map50"] for p in pairs])
        b = np.array([p[1]["metrics"]["map50"] for p in pairs])
        d = [p[0]["trial_distance"] for p in pairs]
        seeds = sorted({p[1]["finetune_seed"] for p in pairs})
        retest = spearmanr(a, b).statistic
        on_mean = spearmanr(d, (a + b) / 2).statistic
        lines += [
            f"### {name}: fine-tune noise ({len(pairs)} cameras fine-tuned again, seed "
            f"{', '.join(map(str, seeds))})",
            "",
            "| measure | value |",
            "|---|---|",
            f"| rho(mAP50 seed {pairs[0][0]['seed']}, mAP50 replicate) (test-retest) | "
            f"{retest:+.2f} |",
            f"| std of the two fine-tunes' mAP50 at one camera (median over cameras) | "
            f"{np.median(np.abs(a - b)) / np.sqrt(2):.3f} |",
            f"| rho(trial distance, mAP50), first fine-tune | {spearmanr(d, a).statistic:+.2f} |",
            f"| rho(trial distance, mAP50), replicate | {spearmanr(d, b).statistic:+.2f} |",
            f"| rho(trial distance, mean of the two) | {on_mean:+.2f} |",
            "",
        ]
    return lines


def report(out_name: str = "distance_vs_map") -> str:
    """Spearman rho per group, spread and distance, the table of every point, and the plots
    (one per group and spread)."""
    from scipy.stats import spearmanr

    out_dir = RESULTS / out_name
    lines: list[str] = []
    for name, recs in load(out_dir).items():
        recs.sort(key=lambda r: -r["trial_distance"])
        lines += [f"### {name}: {len(recs)} cameras", ""]
        lines += [
            "| spread | points | distance | rho(distance, mAP50) "
            "| rho(distance, pedestrian AP50) |"
        ]
        lines += ["|---|---|---|---|---|"]
        for spread in SPREADS:
            picked = [r for r in recs if spread in r.get("spreads", ["rank"])]
            if len(picked) < 3:
                continue
            for key, label in DISTANCES:
                d = [r[key] for r in picked]
                rho = spearmanr(d, [r["metrics"]["map50"] for r in picked]).statistic
                ped = spearmanr(
                    d, [r["metrics"].get("ap50_pedestrian", 0.0) for r in picked]
                ).statistic
                lines.append(f"| {spread} | {len(picked)} | {label} | {rho:+.2f} | {ped:+.2f} |")
            suffix = "" if spread == "rank" else f"_by_{spread}"
            plot(
                f"{name}, by {spread}",
                picked,
                HERE / f"{out_name}_{name.replace(' ', '_')}{suffix}.png",
            )
        lines += [
            "",
            "| trial | spreads | stage | trial distance / floor | set zscore_l2 | set frechet "
            "| mAP50 | pedestrian AP50 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in recs:
            m = r["metrics"]
            lines.append(
                f"| {r['trial']} | {', '.join(r.get('spreads', ['rank']))} | {r['stage']} | "
                f"{r['trial_distance']:.3f} / "
                f"{r['noise_floor']:.3f} = {r['trial_distance'] / r['noise_floor']:.1f}x | "
                f"{r['set_zscore_l2']:.3f} | {r['set_frechet']:.3f} | {m['map50']:.3f} | "
                f"{m.get('ap50_pedestrian', 0.0):.3f} |"
            )
        lines.append("")
    lines += noise_report(out_dir)
    text = "\n".join(lines)
    (HERE / f"{out_name}.md").write_text(text)
    return text


def plot(name: str, recs: list[dict[str, Any]], path: Path) -> None:
    """mAP50 against each distance, log x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import spearmanr

    fig, axes = plt.subplots(1, len(DISTANCES), figsize=(13, 4.2), sharey=True)
    map50 = [r["metrics"]["map50"] for r in recs]
    for ax, (key, label) in zip(axes, DISTANCES, strict=True):
        d = [r[key] for r in recs]
        ax.scatter(d, map50, s=22, color="#c44e52")
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} (log)")
        ax.set_title(f"Spearman rho {spearmanr(d, map50).statistic:+.2f}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fine-tuned mAP50 on the target")
    fig.suptitle(
        f"Distance to the target vs accuracy after fine-tuning ({name}, one fine-tune a point)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=downstream.TARGETS, default="demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--points", type=int, default=None, help="at most this many new points")
    parser.add_argument(
        "--finetune-seed",
        type=int,
        default=None,
        help="fine-tune the points again with this seed (default: --seed; a replicate)",
    )
    parser.add_argument(
        "--spread", choices=SPREADS, default="rank", help="pick the trials by rank or by distance"
    )
    parser.add_argument(
        "--out",
        default="distance_vs_map",
        help="points folder under results/ (and <out>.md): one a loop run",
    )
    parser.add_argument("--report", action="store_true", help="only write the tables and plots")
    args = parser.parse_args()
    from gen_loop._env import set_env_defaults

    set_env_defaults()  # before ultralytics, albumentations and MLflow are imported
    if not args.report:
        measure(
            args.target, args.seed, args.n, args.points, args.finetune_seed, args.spread, args.out
        )
    print(report(args.out))


if __name__ == "__main__":
    main()
