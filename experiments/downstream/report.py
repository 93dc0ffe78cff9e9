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
    "cams": "(cams) 8 best cameras, random per scene",
    "dr": "(dr) domain randomisation over the search space",
    "aug": "(aug) (b) + ultralytics augmentation",
    "augnm": "(augnm) (aug) without mosaic",
    "d": "(d) best params, selected (loop)",
    "h": "(h) jitter about the loop's camera",
    "d2": "(d2) (d) after the loop's advice (named parameters searched too)",
    "d3": "(d3) (d2) after its advice (ranges at a bound widened)",
    "h3": "(h3) (d3)'s loop, jitter selection (the default)",
    "ha": "(ha) search.advice_rounds=2: (h3) in one run",
    "hf": "(hf) (ha), each round started afresh",
    "e": "(e) oracle: target camera, labeled",
}
ORDER = ("a", "b", "c", "cams", "dr", "aug", "augnm", "d", "h", "d2", "d3", "h3", "ha", "hf", "e")
#: Condition names of the results of 2026-11-26 (run.py's ``f`` is now ``cams``).
RENAMED = {"f": "cams"}
#: What a variant borrows from the ``default`` tag of the demo target: the conditions that do
#: not depend on the loop run or the selection.
BORROWABLE = ("a", "b", "e")
#: The tag of the mismatch targets' no-search controls, which their other tags borrow from.
MISMATCH_BASE = "v2"
#: Searched parameters the pooled embedding cannot identify (experiments/recovery).
UNIDENTIFIABLE = ("vignetting",)
#: A demo seed's search is in the wrong basin when an identifiable parameter is off by more.
WRONG_BASIN = 0.10

Results = dict[str, dict[str, dict[int, dict[str, Any]]]]


def group_name(rec: dict[str, Any]) -> str:
    """A table's name: the tag, and the target unless it is the demo."""
    target = rec.get("target", "demo")
    return rec["tag"] if target == "demo" else f"{rec['tag']} / {target}"


def load() -> Results:
    """results[group][condition][seed] = record (a group: a tag on one target)."""
    out: Results = defaultdict(lambda: defaultdict(dict))
    for path in sorted((HERE / "results").glob("*.json")):
        rec = json.loads(path.read_text())
        condition = RENAMED.get(rec["condition"], rec["condition"])
        out[group_name(rec)][condition][rec["seed"]] = rec
    return out


def metric(rec: dict[str, Any], key: str) -> float:
    """A metric of a record (a class absent from the predictions counts 0)."""
    return float(rec["metrics"].get(key, 0.0))


def base_tag(tag: str) -> str:
    """The tag ``tag`` borrows the conditions that do not depend on the loop from."""
    return f"{MISMATCH_BASE} / {tag.split(' / ')[1]}" if " / " in tag else "default"


def tag_conditions(results: Results, tag: str) -> tuple[dict[str, Any], set[str]]:
    """The conditions of ``tag``, missing ones taken from the default tag (and which those are).

    A variant that changes only the selection reruns (c) and (d); (a), (b) and (e) do not
    depend on the selection, so they come from the default runs: the ``default`` tag on the
    demo target, :data:`MISMATCH_BASE` on a mismatch target.
    """
    own = dict(results[tag])
    base = base_tag(tag)
    default = results.get(base, {}) if tag != base else {}
    borrowed = {c for c in default if c in BORROWABLE and c not in own}
    return {**{c: default[c] for c in borrowed}, **own}, borrowed


def tag_table(results: Results, tag: str) -> list[str]:
    """The Markdown tables of one group."""
    conds, borrowed = tag_conditions(results, tag)
    lines = [
        f"### {tag}",
        "",
        "| condition | seeds | train images | "
        + " | ".join(label for _, label in METRICS)
        + " | wall s |",
        "|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for c in ordered(conds):
        recs = list(conds[c].values())
        cells = []
        for key, _ in METRICS:
            vals = np.array([metric(r, key) for r in recs])
            cells.append(f"{vals.mean():.3f} ± {vals.std(ddof=1) if len(vals) > 1 else 0:.3f}")
        n_train = sorted({r["n_train"] for r in recs})
        wall = np.mean([r["wall_s"] for r in recs])
        name = NAMES[c] + (f" (from {base_tag(tag)})" if c in borrowed else "")
        lines.append(
            f"| {name} | {len(recs)} | {'/'.join(map(str, n_train))} | "
            + " | ".join(cells)
            + f" | {wall:.0f} |"
        )
    own = {c: runs for c, runs in conds.items() if c not in borrowed}  # loops of this tag only
    lines += ["", *gap_lines(conds), "", *loop_lines(own)]
    for key, label in METRICS:
        lines += ["", *seed_lines(conds, key, label, loops=own)]
    return lines


def ordered(conds: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """The conditions present, in table order."""
    return [c for c in ORDER if conds.get(c)]


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


def seed_loop(conds: dict[str, dict[int, dict[str, Any]]], seed: int) -> dict[str, Any] | None:
    """The loop record of ``seed`` (any condition that used the loop run has it)."""
    for c in ("d", "h", "c", "cams", "b", "dr", "aug", "augnm", "e"):
        rec = conds.get(c, {}).get(seed)
        if rec is not None and "loop" in rec:
            return dict(rec["loop"])
    return None


def loop_seeds(conds: dict[str, dict[int, dict[str, Any]]]) -> list[int]:
    """The seeds of the conditions that fine-tune."""
    return sorted({s for c, recs in conds.items() if c != "a" for s in recs})


def basin(errors: dict[str, float] | None) -> tuple[str, str, str]:
    """Largest identifiable parameter error, the unidentifiable ones', and the basin."""
    if not errors:
        return "-", "-", "-"
    known = {k: v for k, v in errors.items() if k not in UNIDENTIFIABLE}
    name = max(known, key=known.get)  # type: ignore[arg-type]
    other = ", ".join(f"{errors[k]:.0%}" for k in UNIDENTIFIABLE if k in errors) or "-"
    right = "right" if known[name] <= WRONG_BASIN else "**wrong**"
    return f"{known[name]:.0%} ({name})", other, right


def loop_lines(conds: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Per seed: the loop run's trials, stop, best distance / noise floor and (demo) basin."""
    lines = [
        "| seed | trials | best / floor | largest parameter error (identifiable) "
        "| vignetting error | basin | stop |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed in loop_seeds(conds):
        loop = seed_loop(conds, seed)
        if loop is None:
            continue
        ratio = loop["best_distance"] / loop["noise_floor"]
        worst, vignetting, where = basin(loop.get("recovery_error"))
        stop = str(loop.get("stop_reason") or "-").split(":")[0]
        lines.append(
            f"| {seed} | {loop.get('n_trials') or '-'} | {loop['best_distance']:.3f} / "
            f"{loop['noise_floor']:.3f} = {ratio:.1f}x | {worst} | {vignetting} | {where} "
            f"| {stop} |"
        )
    return lines


def seed_lines(
    conds: dict[str, dict[int, dict[str, Any]]],
    key: str = "map50",
    label: str = "mAP50",
    loops: dict[str, dict[int, dict[str, Any]]] | None = None,
) -> list[str]:
    """``key`` per seed and condition, with the seed's loop result (best distance / floor)
    from ``loops`` (default ``conds``); the mAP50 table also has the loop's verdict on (d)."""
    loops = conds if loops is None else loops
    order = ordered(conds)
    tail = key == "map50"
    lines = [
        "| seed | loop best / floor | "
        + " | ".join(f"({c}) {label}" for c in order)
        + (" | loop verdict on (d) |" if tail else " |"),
        "|---|---|" + "---|" * len(order) + ("---|" if tail else ""),
    ]
    for seed in loop_seeds(conds):
        loop = seed_loop(loops, seed)
        ratio = f"{loop['best_distance'] / loop['noise_floor']:.1f}x" if loop else "-"
        cells = []
        for c in order:
            rec = conds[c].get(seed) or (next(iter(conds[c].values())) if c == "a" else None)
            cells.append(f"{metric(rec, key):.3f}" if rec else "-")
        end = f" | {verdict(conds, seed)} |" if tail else " |"
        lines.append(f"| {seed} | {ratio} | " + " | ".join(cells) + end)
    return lines


def gap_lines(conds: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """For the loop's conditions ((d), (h), (d2), ...): (x - a) / (e - a) per metric, per seed and
    mean; and whether x beats each other condition: on the means over the seeds both have ((a)
    has no seed dependence) and in how many of those seeds."""
    if not all(conds.get(c) for c in "ae"):
        return []
    a_val = {
        key: float(np.mean([metric(r, key) for r in conds["a"].values()])) for key, _ in METRICS
    }
    out = []
    for mine in (c for c in ("d", "h", "d2", "d3", "h3", "ha", "hf") if conds.get(c)):
        seeds = sorted(set(conds[mine]) & set(conds["e"]))
        for key, label in METRICS:
            shares = [
                (metric(conds[mine][s], key) - a_val[key])
                / (metric(conds["e"][s], key) - a_val[key])
                for s in seeds
            ]
            others = [c for c in ordered(conds) if c not in (mine, "e")]
            beats = [beat(conds, mine, other, key, a_val[key]) for other in others]
            out.append(
                f"- {label}: gap closed by ({mine}) = "
                f"{np.mean(shares):.0%} (per seed {', '.join(f'{x:.0%}' for x in shares)}); "
                f"({mine}) {'; '.join(beats)}"
            )
    return out


def beat(
    conds: dict[str, dict[int, dict[str, Any]]], mine: str, other: str, key: str, a_val: float
) -> str:
    """'> (other) by +x' on the means over the shared seeds, with the per-seed wins."""
    d = conds[mine]
    if other == "a":
        wins = sum(metric(r, key) > a_val for r in d.values())
        diff = float(np.mean([metric(r, key) for r in d.values()])) - a_val
        return f"{'>' if diff > 0 else '<='} (a) by {diff:+.3f} ({wins}/{len(d)} seeds)"
    both = sorted(set(d) & set(conds[other]))
    if not both:  # the form of the 2026-11-26 tables: means over each one's own seeds
        diff = float(np.mean([metric(r, key) for r in d.values()])) - float(
            np.mean([metric(r, key) for r in conds[other].values()])
        )
        return f"{'>' if diff > 0 else '<='} ({other}) by {diff:+.3f}"
    diffs = [metric(d[s], key) - metric(conds[other][s], key) for s in both]
    wins = sum(x > 0 for x in diffs)
    mean = float(np.mean(diffs))
    return f"{'>' if mean > 0 else '<='} ({other}) by {mean:+.3f} ({wins}/{len(both)} seeds)"


COLOURS = {
    "a": "#888888",
    "b": "#4c72b0",
    "c": "#dd8452",
    "cams": "#e5ae38",
    "dr": "#8172b3",
    "aug": "#64b5cd",
    "augnm": "#a6d8e8",
    "d": "#c44e52",
    "h": "#f08a8c",
    "d2": "#8c1c13",
    "d3": "#4a0d07",
    "h3": "#c97b7d",
    "ha": "#7d3c98",
    "hf": "#b48ec9",
    "e": "#55a868",
}


def plot(results: Results, tag: str, path: Path) -> None:
    """Grouped bars with ±1 std error bars for ``tag``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds, _ = tag_conditions(results, tag)
    order = ordered(conds)
    fig, ax = plt.subplots(figsize=(9, 5.2))
    width = 0.8 / len(order)
    for i, c in enumerate(order):
        vals = [[metric(r, key) for r in conds[c].values()] for key, _ in METRICS]
        means = [np.mean(v) for v in vals]
        stds = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in vals]
        x = np.arange(len(METRICS)) + (i - (len(order) - 1) / 2) * width
        ax.bar(x, means, width, yerr=stds, capsize=3, label=NAMES[c], color=COLOURS[c])
        for xi, v in zip(x, vals, strict=True):  # each seed, so a failed search shows as one
            ax.scatter([xi] * len(v), v, s=9, color="black", zorder=3)
    ax.set_xticks(np.arange(len(METRICS)), [label for _, label in METRICS])
    target = tag.split(" / ")[1] if " / " in tag else "demo"
    ax.set_ylabel(f"on the {target} target (160 labeled images)")
    n = max(len(v) for v in conds.values())
    epochs = {r.get("finetune", {}).get("epochs", 8) for v in conds.values() for r in v.values()}
    ax.set_title(
        f"Fine-tuning the base detector, {'/'.join(map(str, sorted(epochs)))} epochs "
        f"({tag}; bars mean ± std, dots: {n} seeds)"
    )
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legend below the axes stays whole
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
            plot(results, tag, HERE / f"downstream_{tag.replace(' / ', '_')}.png")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    main()
