"""Tabulate experiments/downstream/results/*.json: tables.md and downstream.png.

Usage: .venv/bin/python experiments/downstream/report.py

For each tag (a variant of the fine-tune/selection settings): mean ± std over seeds of the
demo target's mAP50, mAP50-95 and pedestrian AP50 for each condition, and the share of the
gap from (a) the base detector to (e) the oracle that (d), the loop's output, closes.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
METRICS = (("map50", "mAP50"), ("map50_95", "mAP50-95"), ("ap50_pedestrian", "pedestrian AP50"))
NAMES = {
    "a": "(a) base, no fine-tune",
    "b": "(b) default-parameter synthetic",
    "c": "(c) best params, no selection",
    "d": "(d) best params, selected (loop)",
    "e": "(e) oracle: target camera, labeled",
    "f": "(f) 8 best cameras, random per scene",
}


def load() -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """results[tag][condition][seed] = record."""
    out: dict[str, dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for path in sorted((HERE / "results").glob("*.json")):
        rec = json.loads(path.read_text())
        out[rec["tag"]][rec["condition"]][rec["seed"]] = rec
    return out


def metric(rec: dict[str, Any], key: str) -> float:
    """A metric of a record (a class absent from the predictions counts 0)."""
    return float(rec["metrics"].get(key, 0.0))


def tag_conditions(results: dict[str, Any], tag: str) -> tuple[dict[str, Any], set[str]]:
    """The conditions of ``tag``, missing ones taken from the default tag (and which those are).

    A variant that changes only the selection reruns (c) and (d); (a), (b) and (e) do not
    depend on the selection, so they come from the default runs.
    """
    own = dict(results[tag])
    borrowed = {c for c in results.get("default", {}) if c not in own}
    return {**{c: results["default"][c] for c in borrowed}, **own}, borrowed


def tag_table(results: dict[str, Any], tag: str) -> list[str]:
    """The Markdown table of one tag."""
    conds, borrowed = tag_conditions(results, tag)
    lines = [
        f"### {tag}",
        "",
        "| condition | seeds | train images | "
        + " | ".join(label for _, label in METRICS)
        + " | wall s |",
        "|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for c in sorted(conds):
        recs = list(conds[c].values())
        if not recs:
            continue
        cells = []
        for key, _ in METRICS:
            vals = np.array([metric(r, key) for r in recs])
            cells.append(f"{vals.mean():.3f} ± {vals.std(ddof=1) if len(vals) > 1 else 0:.3f}")
        n_train = sorted({r["n_train"] for r in recs})
        wall = np.mean([r["wall_s"] for r in recs])
        name = NAMES[c] + (" (from default)" if c in borrowed and tag != "default" else "")
        lines.append(
            f"| {name} | {len(recs)} | {'/'.join(map(str, n_train))} | "
            + " | ".join(cells)
            + f" | {wall:.0f} |"
        )
    lines += ["", *gap_lines(conds), "", *seed_lines(conds)]
    return lines


def verdict(conds: dict[str, dict[int, dict[str, Any]]], seed: int) -> str:
    """What the loop's ``finetune.require_gain`` check (default margin) says of (d)."""
    from gen_loop.config.schema import FinetuneConfig
    from gen_loop.finetune.verdict import gain_verdict

    rec = conds.get("d", {}).get(seed)
    if rec is None:
        return "-"
    cfg = FinetuneConfig()
    v = gain_verdict({"before": rec["before"], "after": rec["metrics"]}, cfg.min_gain, True)
    return v.status + ("" if v.accepted else " (base stands)")


def seed_lines(conds: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """mAP50 per seed and condition, with the seed's loop result (best distance / floor)."""
    seeds = sorted({s for c, recs in conds.items() if c != "a" for s in recs})
    order = [c for c in "abcfde" if conds.get(c)]
    lines = [
        "| seed | loop best / floor | "
        + " | ".join(f"({c}) mAP50" for c in order)
        + " | loop verdict on (d) |",
        "|---|---|" + "---|" * len(order) + "---|",
    ]
    for seed in seeds:
        loop = next(
            (r["loop"] for c in "cdf" if seed in conds.get(c, {}) for r in [conds[c][seed]]),
            None,
        )
        ratio = f"{loop['best_distance'] / loop['noise_floor']:.1f}x" if loop else "-"
        cells = []
        for c in order:
            rec = conds[c].get(seed) or (next(iter(conds[c].values())) if c == "a" else None)
            cells.append(f"{metric(rec, 'map50'):.3f}" if rec else "-")
        lines.append(f"| {seed} | {ratio} | " + " | ".join(cells) + f" | {verdict(conds, seed)} |")
    return lines


def gap_lines(conds: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """(d - a) / (e - a) per metric, per seed and mean; and whether (d) beats (a), (b), (c)
    (means over the seeds both have; (a) has no seed dependence)."""
    if not all(conds.get(c) for c in "ade"):
        return []
    a = conds["a"]
    seeds = sorted(set(conds["d"]) & set(conds["e"]))
    out = []
    for key, label in METRICS:
        a_val = np.mean([metric(r, key) for r in a.values()])
        shares = [
            (metric(conds["d"][s], key) - a_val) / (metric(conds["e"][s], key) - a_val)
            for s in seeds
        ]
        beats = []
        for other in "abcf":
            if not conds.get(other):
                continue
            both = sorted(set(conds["d"]) & set(conds[other])) or sorted(conds["d"])
            d_mean = np.mean([metric(conds["d"][s], key) for s in both])
            o_mean = np.mean(
                [metric(r, key) for s, r in conds[other].items() if s in both]
                or [metric(r, key) for r in conds[other].values()]
            )
            beats.append(f"{'>' if d_mean > o_mean else '<='} ({other}) by {d_mean - o_mean:+.3f}")
        out.append(
            f"- {label}: gap closed by (d) = "
            f"{np.mean(shares):.0%} (per seed {', '.join(f'{x:.0%}' for x in shares)}); "
            f"(d) {'; '.join(beats)}"
        )
    return out


def plot(results: dict[str, Any], tag: str, path: Path) -> None:
    """Grouped bars with ±1 std error bars for ``tag``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds, _ = tag_conditions(results, tag)
    order = [c for c in "abcfde" if conds.get(c)]
    fig, ax = plt.subplots(figsize=(9, 5.2))
    width = 0.8 / len(order)
    colours = {
        "a": "#888888",
        "b": "#4c72b0",
        "c": "#dd8452",
        "d": "#c44e52",
        "e": "#55a868",
        "f": "#e5ae38",
    }
    for i, c in enumerate(order):
        vals = [[metric(r, key) for r in conds[c].values()] for key, _ in METRICS]
        means = [np.mean(v) for v in vals]
        stds = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in vals]
        x = np.arange(len(METRICS)) + (i - (len(order) - 1) / 2) * width
        ax.bar(x, means, width, yerr=stds, capsize=3, label=NAMES[c], color=colours[c])
        for xi, v in zip(x, vals, strict=True):  # each seed, so a failed search shows as one
            ax.scatter([xi] * len(v), v, s=9, color="black", zorder=3)
    ax.set_xticks(np.arange(len(METRICS)), [label for _, label in METRICS])
    ax.set_ylabel("on the demo target (160 labeled images)")
    n = max(len(v) for v in conds.values())
    epochs = {r.get("finetune", {}).get("epochs", 8) for v in conds.values() for r in v.values()}
    ax.set_title(
        f"Fine-tuning the base detector, {'/'.join(map(str, sorted(epochs)))} epochs "
        f"({tag}; bars mean ± std, dots: {n} seeds)"
    )
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    results = load()
    lines: list[str] = []
    for tag in sorted(results, key=lambda t: (t != "default", t)):
        if set(results[tag]) - {"a"}:
            lines += [*tag_table(results, tag), ""]
    text = "\n".join(lines)
    (HERE / "tables.md").write_text(text)
    print(text)
    for tag in results:
        if set(results[tag]) - {"a"}:
            plot(results, tag, HERE / f"downstream_{tag}.png")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    main()
