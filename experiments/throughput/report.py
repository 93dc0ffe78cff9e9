"""Tabulate and plot the throughput results (cheap: reads results/*.json, runs nothing).

Usage: .venv/bin/python experiments/throughput/report.py

Prints Markdown tables (embedding paths side by side, generator, trial share) and writes
``embed.png`` and ``trial_share.png`` next to this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PATHS = ("loop", "ultralytics", "bare", "bare_nchw", "bare_preprocess")


def load(pattern: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) | {"file": p.name} for p in sorted(RESULTS.glob(pattern))]


def embed_table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| file | device | imgsz | batch | "
        + " | ".join(f"{p} img/s" for p in PATHS)
        + " | loop/bare | loop/ultralytics |",
        "|---" * (6 + len(PATHS)) + "|",
    ]
    for r in runs:
        a, ips, ratio = r["args"], r["images_per_s"], r["ratios"]
        precision = "fp16" if a["half"] else "fp32"
        lines.append(
            f"| {r['file']} | {r['device']} {precision} | {a['imgsz']} | {a['batch']} | "
            + " | ".join(f"{ips[p]:.0f}" for p in PATHS)
            + f" | {ratio['loop/bare']:.2f} | {ratio['loop/ultralytics']:.2f} |"
        )
    return "\n".join(lines)


def generator_table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| file | camera | first render img/s | same scene seeds again img/s |",
        "|---|---|---|---|",
    ]
    for r in runs:
        for camera, value in r["images_per_s"].items():
            again = r["repeat_call_images_per_s"][camera]
            lines.append(f"| {r['file']} | {camera} | {value:.0f} | {again:.0f} |")
    return "\n".join(lines)


def _embed_label(r: dict[str, Any]) -> str:
    a = r["args"]
    when = "before: " if r["file"].endswith("_before.json") else ""
    return f"{when}batch {a['batch']}, loop passes of {r.get('loop_pass_size', a['batch'])}"


def embed_figure(runs: list[dict[str, Any]], out: Path) -> None:
    from matplotlib.figure import Figure

    sizes = sorted({r["args"]["imgsz"] for r in runs})
    if not sizes:
        return
    fig = Figure(figsize=(9, 2.2 + 1.1 * len(runs)))
    names = ("loop", "ultralytics", "bare", "bare_nchw")
    height = 0.8 / len(names)
    shown_sizes = [[r for r in runs if r["args"]["imgsz"] == z] for z in sizes]
    axes = fig.subplots(len(sizes), 1, squeeze=False, height_ratios=[len(s) for s in shown_sizes])[
        :, 0
    ]
    for ax, size, shown in zip(axes, sizes, shown_sizes, strict=True):
        for k, name in enumerate(names):
            ys = [i + k * height for i in range(len(shown))]
            ax.barh(ys, [r["images_per_s"][name] for r in shown], height, label=name)
        ax.set_yticks([i + 0.4 - height / 2 for i in range(len(shown))])
        ax.set_yticklabels([_embed_label(r) for r in shown], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(
            f"{size} px, {shown[0]['device']}, {shown[0]['torch_threads']} threads", fontsize=9
        )
        ax.set_xlabel("images / s (median of rounds)", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(names), fontsize=8)
    fig.suptitle("Embedding to layer 14: same images, same call batch, one process per row")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out, dpi=110)


GROUPS = (
    ("generate", "C1"),
    ("embed", "C0"),
    ("sample grid: draw, PNG, upload", "C4"),
    ("MLflow: child run and parent metrics", "C2"),
    ("Optuna: storage writes/reads, sampler", "C3"),
    ("other: score, convergence, console, unattributed", "C7"),
)


def _group(key: str) -> str:
    if key in ("generate", "embed"):
        return key
    if "log_image" in key or "sample grid" in key:
        return GROUPS[2][0]
    if key.startswith("mlflow"):
        return GROUPS[3][0]
    if key.startswith(("optuna", "sampler", "fail_dead", "StudyView", "heartbeat")):
        return GROUPS[4][0]
    return GROUPS[5][0]


def share_figure(runs: list[dict[str, Any]], out: Path) -> None:
    from matplotlib.figure import Figure

    if not runs:
        return
    fig = Figure(figsize=(9, 1.6 + 0.55 * len(runs)))
    ax = fig.add_subplot()
    for i, r in enumerate(runs):
        grouped = dict.fromkeys((g for g, _ in GROUPS), 0.0)
        for key, value in r["instrumented"]["per_trial_s"].items():
            if not key.startswith("background"):
                grouped[_group(key)] += 1000 * value
        grouped[GROUPS[5][0]] += 1000 * r["instrumented"]["unattributed_s"]
        left = 0.0
        for name, colour in GROUPS:
            ax.barh(
                i,
                grouped[name],
                left=left,
                color=colour,
                edgecolor="white",
                label=name if i == 0 else None,
            )
            left += grouped[name]
        share = 100 * r["instrumented"]["outside_share"]
        ax.text(
            left + 5, i, f"{left:.0f} ms, {share:.0f}% outside gen+embed", va="center", fontsize=8
        )
    ax.set_yticks(range(len(runs)))
    ax.set_yticklabels([r["label"] for r in runs])
    ax.invert_yaxis()
    ax.set_xlim(0, 720)
    ax.set_xlabel("ms per trial on the main thread (instrumented run, mean over 30 trials)")
    ax.set_title("Where a trial's time goes")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.28))
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    embeds = load("embed_*.json")
    print("## Embedding\n")
    print(embed_table(embeds))
    print("\n## Generator\n")
    print(generator_table(load("generator_*.json")))
    from trial_share import label_order, tabulate  # same folder

    shares = sorted(
        (r for r in load("trial_share_*.json") if r["label"] != "smoke"), key=label_order
    )
    print("\n## Trial share\n")

    print(tabulate([r["label"] for r in shares]))
    embed_figure(embeds, HERE / "embed.png")
    share_figure(shares, HERE / "trial_share.png")


if __name__ == "__main__":
    main()
