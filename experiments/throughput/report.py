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


def embed_figure(runs: list[dict[str, Any]], out: Path) -> None:
    from matplotlib.figure import Figure

    shown = [r for r in runs if r["file"].startswith("embed_")]
    if not shown:
        return
    fig = Figure(figsize=(8, 3.2 + 0.3 * len(shown)))
    ax = fig.add_subplot()
    names = ("loop", "ultralytics", "bare", "bare_nchw")
    height = 0.8 / len(names)
    for k, name in enumerate(names):
        ys = [i + k * height for i in range(len(shown))]
        ax.barh(ys, [r["images_per_s"][name] for r in shown], height, label=name)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(shown))])
    ax.set_yticklabels(
        [f"{r['args']['imgsz']} px, batch {r['args']['batch']}, {r['device']}" for r in shown]
    )
    ax.invert_yaxis()
    ax.set_xlabel("images / s (median of rounds)")
    ax.set_title("Embedding to layer 14, same images, same batch, one process")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def share_figure(runs: list[dict[str, Any]], out: Path) -> None:
    from matplotlib.figure import Figure

    if not runs:
        return
    keys: list[str] = []
    for r in runs:
        keys += [k for k in r["instrumented"]["per_trial_s"] if k not in keys]
    main = [k for k in keys if not k.startswith("background")]
    fig = Figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    for i, r in enumerate(runs):
        left = 0.0
        per = r["instrumented"]["per_trial_s"]
        for j, key in enumerate([*main, "unattributed"]):
            value = 1000 * (
                r["instrumented"]["unattributed_s"] if key == "unattributed" else per.get(key, 0.0)
            )
            colour = (
                None if key not in ("generate", "embed") else ("C0" if key == "embed" else "C1")
            )
            ax.barh(
                i,
                value,
                left=left,
                color=colour or f"C{2 + j % 8}",
                edgecolor="white",
                label=key if i == 0 else None,
            )
            left += value
    ax.set_yticks(range(len(runs)))
    ax.set_yticklabels([r["label"] for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("ms per trial (instrumented run, mean over the search)")
    ax.set_title("Where a trial's time goes (main thread)")
    ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    embeds = load("embed_*.json")
    print("## Embedding\n")
    print(embed_table(embeds))
    print("\n## Generator\n")
    print(generator_table(load("generator_*.json")))
    shares = [r for r in load("trial_share_*.json") if r["label"] != "smoke"]
    print("\n## Trial share\n")
    from trial_share import tabulate  # same folder

    print(tabulate([r["label"] for r in shares]))
    embed_figure(embeds, HERE / "embed.png")
    share_figure(shares, HERE / "trial_share.png")


if __name__ == "__main__":
    main()
