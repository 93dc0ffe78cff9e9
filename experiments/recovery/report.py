"""Tabulate and plot the recovery benchmark: results/*.json -> RESULTS.md tables and PNGs.

Usage: .venv/bin/python experiments/recovery/report.py

Cheap (no rendering, no model): reads the JSONs that run.py and identify.py wrote, replaces the
block between the ``<!-- tables:start -->`` and ``<!-- tables:end -->`` markers of RESULTS.md
(the hand-written reading around it stays), and draws ``best_vs_trial.png`` (best distance /
noise floor against trials, median and inter-quartile band per sampler, log scale) and
``recovery_error.png`` (per-parameter recovery error of every run, per sampler).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MD = HERE / "RESULTS.md"
START, END = "<!-- tables:start -->", "<!-- tables:end -->"
ORDER = ("tpe", "random", "qmc", "gp", "tpe50+lsq", "tpe50+cmaes", "tpe1+lsq")
LABELS = {
    "tpe": "TPE (default)",
    "random": "random",
    "qmc": "QMC (scrambled Sobol)",
    "gp": "GP (log distance)",
    "tpe50+lsq": "TPE 50 + least squares 50 (extra arm)",
    "tpe50+cmaes": "TPE 50 + CMA-ES 50 (extra arm)",
    "tpe1+lsq": "least squares from the default parameters (extra arm)",
}
MULTIPLES = ("1", "1.5", "2", "3")
GOAL_ERROR = 0.05


def load_runs() -> dict[str, list[dict[str, Any]]]:
    """The run results per sampler, ordered by seed."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(RESULTS.glob("*_s*.json")):
        if path.name.startswith("identify_"):
            continue
        res = json.loads(path.read_text())
        runs.setdefault(res["sampler"], []).append(res)
    ordered = [s for s in ORDER if s in runs] + sorted(set(runs) - set(ORDER))
    return {s: sorted(runs[s], key=lambda r: r["seed"]) for s in ordered}


def load_identify() -> list[dict[str, Any]]:
    """The identifiability results, ordered by draw."""
    found = [json.loads(p.read_text()) for p in RESULTS.glob("identify_s*.json")]
    return sorted(found, key=lambda r: r["seed"])


def curve(res: dict[str, Any]) -> np.ndarray:
    """Best distance / floor after each trial."""
    best, out = math.inf, []
    for d in res["distances"]:
        if d is not None:
            best = min(best, d)
        out.append(best / res["noise_floor"])
    return np.asarray(out)


def median_censored(values: list[int | None]) -> float:
    """Median where None (never reached) counts as infinity."""
    return float(np.median([math.inf if v is None else v for v in values]))


def fmt_trials(value: float, budget: int) -> str:
    return f">{budget}" if math.isinf(value) else f"{value:.0f}"


def sampler_table(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = [
        "| sampler | seeds | best/floor @30 | @60 | @100 (median [min-max]) "
        "| trials to 1x floor (median; reached) | 1.5x | 2x | 3x | s per run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sampler, rs in runs.items():
        curves = [curve(r) for r in rs]
        budget = min(len(c) for c in curves)

        def at(n: int, cs: list[np.ndarray] = curves) -> str:
            return f"{np.median([c[min(n, len(c)) - 1] for c in cs]):.2f}"

        finals = [c[-1] for c in curves]
        cells = []
        for k in MULTIPLES:
            vals = [r["trials_to_floor"][k] for r in rs]
            reached = sum(v is not None for v in vals)
            cells.append(f"{fmt_trials(median_censored(vals), budget)} ({reached}/{len(rs)})")
        out.append(
            f"| {LABELS.get(sampler, sampler)} | {len(rs)} | {at(30)} | {at(60)} "
            f"| {np.median(finals):.2f} [{min(finals):.2f}-{max(finals):.2f}] "
            f"| {' | '.join(cells)} | {np.median([r['wall_s'] for r in rs]):.0f} |"
        )
    return out


def per_seed_table(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    seeds = sorted({r["seed"] for rs in runs.values() for r in rs})
    out = [
        "| draw | floor | default/floor | " + " | ".join(LABELS.get(s, s) for s in runs) + " |",
        "|---" * (3 + len(runs)) + "|",
    ]
    for seed in seeds:
        row = {s: next((r for r in rs if r["seed"] == seed), None) for s, rs in runs.items()}
        any_run = next(r for r in row.values() if r is not None)
        cells = []
        for r in row.values():
            if r is None:
                cells.append("-")
                continue
            t = r["trials_to_floor"]
            cells.append(f"{r['best_over_floor']:.2f} ({t['1'] or '-'}/{t['2'] or '-'})")
        out.append(
            f"| {seed} | {any_run['noise_floor']:.3f} "
            f"| {any_run['default_distance'] / any_run['noise_floor']:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    return out


def identifiable(ident: list[dict[str, Any]]) -> list[str] | None:
    """Parameters whose optimum the sampling noise alone moves by less than 5 % of the range
    (median over draws of identify.py's ``noise_spread``); None without identify results."""
    if not ident:
        return None
    names = list(ident[0]["noise_spread"])
    return [n for n in names if np.median([r["noise_spread"][n] for r in ident]) <= GOAL_ERROR]


def recovery_table(
    runs: dict[str, list[dict[str, Any]]], ident_names: list[str] | None
) -> list[str]:
    names = list(next(iter(runs.values()))[0]["recovery_error"])
    extra = ["all six within 5 %"]
    if ident_names is not None:
        extra.append(f"the {len(ident_names)} identifiable within 5 %")
    out = [
        "| sampler | " + " | ".join(names) + " | " + " | ".join(extra) + " |",
        "|---" * (len(names) + 1 + len(extra)) + "|",
    ]
    for sampler, rs in runs.items():
        cells = []
        for n in names:
            errs = [r["recovery_error"][n] for r in rs]
            ok = sum(e <= GOAL_ERROR for e in errs)
            cells.append(f"{np.median(errs):.3f} / {max(errs):.3f} ({ok}/{len(rs)})")
        groups = [names] + ([ident_names] if ident_names is not None else [])
        for group in groups:
            n_ok = sum(all(r["recovery_error"][n] <= GOAL_ERROR for n in group) for r in rs)
            cells.append(f"{n_ok}/{len(rs)}")
        out.append(f"| {LABELS.get(sampler, sampler)} | " + " | ".join(cells) + " |")
    return out


def identify_tables(ident: list[dict[str, Any]]) -> list[str]:
    names = list(ident[0]["sensitivity"])
    med = {
        key: {n: float(np.median([abs(r[key][n]) for r in ident])) for n in names}
        for key in ("sensitivity", "optimum_offset", "noise_spread")
    }
    out = [
        "| parameter | 5 % move / floor (median over draws) | |optimum offset| (median) "
        "| noise spread of the optimum (median) | most parallel other parameter (median cos) |",
        "|---|---|---|---|---|",
    ]
    for n in names:
        others = [m for m in names if m != n]
        cos = {m: float(np.median([r["cosine"][n][m] for r in ident])) for m in others}
        partner = max(others, key=lambda m: abs(cos[m]))
        out.append(
            f"| {n} | {med['sensitivity'][n]:.2f} | {med['optimum_offset'][n]:.3f} "
            f"| {med['noise_spread'][n]:.3f} | {partner} ({cos[partner]:+.2f}) |"
        )
    out += [
        "",
        "| draw | truth / floor | linearised min / floor | singular values (5 % move / floor) "
        "| weakest direction (largest components) |",
        "|---|---|---|---|---|",
    ]
    for r in ident:
        weak = sorted(r["weakest_direction"].items(), key=lambda kv: -abs(kv[1]))[:3]
        sign = 1.0 if weak[0][1] >= 0 else -1.0
        out.append(
            f"| {r['seed']} | {r['at_truth_over_floor']:.2f} | {r['linear_min_over_floor']:.2f} "
            f"| {', '.join(f'{s:.2f}' for s in r['singular'])} "
            f"| {', '.join(f'{sign * v:+.2f} {k}' for k, v in weak)} |"
        )
    out += ["", "Cosine between Jacobian columns (median over draws):", ""]
    out += ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for a in names:
        cells = [f"{np.median([r['cosine'][a][b] for r in ident]):+.2f}" for b in names]
        out.append(f"| {a} | " + " | ".join(cells) + " |")
    return out


def goal_lines(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    if "tpe" not in runs or "random" not in runs:
        return []
    out = []
    for k in MULTIPLES:
        t = median_censored([r["trials_to_floor"][k] for r in runs["tpe"]])
        rnd = median_censored([r["trials_to_floor"][k] for r in runs["random"]])
        ratio = (
            "n/a (neither reached)"
            if math.isinf(t) and math.isinf(rnd)
            else (f"{t / rnd:.2f}" if math.isfinite(rnd) else "random never reached (censored)")
        )
        out.append(
            f"- {k}x floor: TPE median {fmt_trials(t, 100)} trials, random "
            f"{fmt_trials(rnd, 100)}, TPE / random = {ratio}"
        )
    return out


def plot_curves(runs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (sampler, rs) in enumerate(runs.items()):
        curves = [curve(r) for r in rs]
        n = min(len(c) for c in curves)
        arr = np.stack([c[:n] for c in curves])
        x = np.arange(1, n + 1)
        q25, q50, q75 = np.percentile(arr, [25, 50, 75], axis=0)
        col = colours[i % len(colours)]
        ax.fill_between(x, q25, q75, color=col, alpha=0.2, linewidth=0)
        ax.plot(x, q50, color=col, label=f"{LABELS.get(sampler, sampler)} (n={len(rs)})")
    for k in (1.0, 2.0):
        ax.axhline(k, color="k", linestyle=":" if k > 1 else "--", linewidth=1)
    ax.text(99, 1.03, "noise floor", fontsize=8, va="bottom", ha="right")
    ax.text(99, 2.06, "2x floor", fontsize=8, va="bottom", ha="right")
    ax.set_yscale("log")
    ax.set_xlabel("trial (trial 1 = the generator's default parameters)")
    ax.set_ylabel("best distance so far / noise floor")
    ax.set_title("Best distance vs trial: median and inter-quartile band over hidden draws")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_errors(runs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    names = list(next(iter(runs.values()))[0]["recovery_error"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / len(runs)
    for i, (sampler, rs) in enumerate(runs.items()):
        for j, n in enumerate(names):
            errs = [max(r["recovery_error"][n], 1e-4) for r in rs]  # log axis
            x = j + (i - (len(runs) - 1) / 2) * width
            ax.scatter(
                [x] * len(errs),
                errs,
                s=14,
                color=colours[i % len(colours)],
                alpha=0.8,
                label=LABELS.get(sampler, sampler) if j == 0 else None,
            )
            ax.hlines(np.median(errs), x - width / 2, x + width / 2, color=colours[i])
    ax.axhline(GOAL_ERROR, color="k", linestyle="--", linewidth=1)
    ax.text(len(names) - 0.5, GOAL_ERROR, "goal 5 %", fontsize=8, va="bottom", ha="right")
    ax.set_xticks(range(len(names)), names)
    ax.set_yscale("log")
    ax.set_ylabel("|found - hidden| / range (dots: runs, bars: median)")
    ax.set_title("Recovery error of the best trial after 100 trials")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    runs = load_runs()
    ident = load_identify()
    block = [START, ""]
    if runs:
        draws = sorted({r["seed"] for rs in runs.values() for r in rs})
        block += [
            "Hidden draws (from run.py):",
            "",
            "| draw | " + " | ".join(next(iter(runs.values()))[0]["hidden_params"]) + " |",
            "|---" * (1 + len(next(iter(runs.values()))[0]["hidden_params"])) + "|",
        ]
        for seed in draws:
            r = next(r for rs in runs.values() for r in rs if r["seed"] == seed)
            block.append(
                f"| {seed} | " + " | ".join(f"{v:g}" for v in r["hidden_params"].values()) + " |"
            )
        block += [
            "",
            "Search efficiency (best distance / noise floor; trials count trial 1 = "
            "the default parameters; '(reached)' = runs that got there in 100):",
            "",
        ]
        block += sampler_table(runs)
        block += [
            "",
            "Goal (issue 4): TPE at the floor (1x) within 60 trials and in <= 1/3 of the trials "
            "random search needs (medians).",
            "",
            *goal_lines(runs),
            "",
            "Per draw: best / floor after 100 trials (trials to 1x / 2x floor):",
            "",
        ]
        block += per_seed_table(runs)
        block += [
            "",
            "Recovery error |found - hidden| / range of the best trial "
            "(median / max over draws (runs within 5 %)):",
            "",
        ]
        block += recovery_table(runs, identifiable(ident))
        plot_curves(runs, HERE / "best_vs_trial.png")
        plot_errors(runs, HERE / "recovery_error.png")
    if ident:
        block += [
            "",
            "Identifiability at the hidden parameters (identify.py, Jacobian of the "
            "z-scored mean embedding, batch 32, scene seed 0):",
            "",
        ]
        block += identify_tables(ident)
    block += ["", END]
    text = MD.read_text() if MD.exists() else "# Search efficiency and parameter recovery\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + "\n".join(block) + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(block) + "\n"
    MD.write_text(text)
    print(f"wrote {MD} and the plots in {HERE}")


if __name__ == "__main__":
    main()
