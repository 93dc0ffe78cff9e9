"""Is the loop's parameter uncertainty right? Its standard deviations against the real errors.

Usage (one loop run a camera, as in any_camera.py; run under the shared CPU lock):

    .venv/bin/python experiments/recovery/uncertainty.py --cameras 0-20 [--seed 0]
    .venv/bin/python experiments/recovery/uncertainty.py --cameras 100-109   # mismatch
    .venv/bin/python experiments/recovery/uncertainty.py --report   # the tables of UNCERTAINTY.md
    .venv/bin/python experiments/recovery/uncertainty.py --cameras 0-20 --seed 4 \
        --arm no_restart --out basins/no_restart   # another arm, records in another folder

Each run is any_camera.py's default arm (``python -m gen_loop run`` on a hidden camera, at
most 100 trials, fine-tuning off); its ``summary.json`` has ``parameter_uncertainty`` (one
standard deviation per searched parameter from the Jacobian measured at the best camera,
gen_loop/search/uncertainty.py) and ``recovery_error`` (the real ``|found - hidden| / range``).
If the standard deviations are right, ``error / std`` is half-normal: median 0.67, 95 % under
2. Records: ``uncertainty/<camera>_s<seed>.json`` (kept: the script resumes).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import any_camera  # noqa: E402
import any_camera_report  # noqa: E402

OUT = HERE / "uncertainty"
SEARCHED = ("color_temp_k", "red_std_scale", "exposure_ev", "contrast", "vignetting", "fisheye")


def before_polish(run_dir: Path, study_name: str, hidden: dict[str, float]) -> dict[str, Any]:
    """The best trial the search itself found (the polish trial left out): its distance,
    parameters and errors (share of each range)."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{run_dir / 'optuna.db'}")
    done = [
        t
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if t.user_attrs.get("stage") != "polish"
    ]
    best = min(done, key=lambda t: float(t.value))  # type: ignore[arg-type]
    polish = [t for t in study.trials if t.user_attrs.get("stage") == "polish"]
    errors = {
        name: abs(best.params[name] - hidden[name]) / (dist.high - dist.low)  # type: ignore[attr-defined]
        for name, dist in best.distributions.items()
        if name in SEARCHED
    }
    return {
        "trial": best.number,
        "distance": math.exp(float(best.value)),  # type: ignore[arg-type]
        "params": best.params,
        "recovery_error": errors,
        "polish_trial": polish[0].number if polish else None,
        "polish_distance": (
            math.exp(float(polish[0].value)) if polish and polish[0].value is not None else None
        ),
    }


def run_cached(camera: int, seed: int, arm: str = "default", out: Path = OUT) -> None:
    path = out / f"c{camera}_s{seed}.json"
    if path.exists():
        return
    record = any_camera.run_one(arm, camera, seed)
    run_dir = any_camera.RUNS / "any_camera" / f"{arm}_c{camera}_s{seed}"
    summary = json.loads((run_dir / "summary.json").read_text())
    record["parameter_uncertainty"] = summary.get("parameter_uncertainty")
    record["timings_s"] = summary["timings_s"]
    record["left_basins"] = summary.get("left_basins")
    record["environment"] = summary.get("environment")
    record["before_polish"] = before_polish(
        run_dir, summary["study"]["name"], any_camera.hidden_of(camera)
    )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    shares = {u["name"]: u["share"] for u in record["parameter_uncertainty"] or []}
    print(
        f"camera {camera} seed {seed}: {record['best_over_floor']:.2f} x floor, "
        + ", ".join(
            f"{n} {record['recovery_error'][n]:.3f}/{shares.get(n) or math.nan:.3f}"
            for n in SEARCHED
        ),
        flush=True,
    )


def load() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]


def ratios(recs: list[dict[str, Any]], with_offset: bool) -> dict[str, list[float]]:
    """``error / std`` per parameter; ``with_offset`` adds the stop's distance from the
    linearised optimum to the standard deviation (``sqrt(std^2 + offset^2)``)."""
    out: dict[str, list[float]] = {n: [] for n in SEARCHED}
    for rec in recs:
        for u in rec["parameter_uncertainty"] or []:
            if u["share"] is None:
                continue
            spread = math.hypot(u["share"], u["offset"]) if with_offset else u["share"]
            out[u["name"]].append(rec["recovery_error"][u["name"]] / spread)
    return out


IDENTIFIABLE = tuple(n for n in SEARCHED if n != "vignetting")


def polish_table(recs: list[dict[str, Any]]) -> list[str]:
    """Per run: the search's own best against the best after the polish trial."""
    lines = [
        "| camera | seed | best / floor: search -> after polish | polish trial | largest error "
        "of the five identifiable: search -> after | all five within 3 %: search -> after | "
        "vignetting error: search -> after |",
        "|---|---|---|---|---|---|---|",
    ]
    counts = [0, 0]
    for r in sorted(recs, key=lambda r: (r["seed"], r["camera"])):
        before, floor = r["before_polish"], r["noise_floor"]
        worst = [
            max(before["recovery_error"][n] for n in IDENTIFIABLE),
            max(r["recovery_error"][n] for n in IDENTIFIABLE),
        ]
        within = [w <= 0.03 for w in worst]
        counts = [c + w for c, w in zip(counts, within, strict=True)]
        polish = before["polish_distance"]
        taken = (
            "-"
            if polish is None
            else f"{polish / floor:.2f}x" + (" (taken)" if polish < before["distance"] else "")
        )
        lines.append(
            f"| {r['camera']} | {r['seed']} | "
            f"{before['distance'] / floor:.2f} -> {r['best_over_floor']:.2f} | "
            f"{taken} | {100 * worst[0]:.1f} % -> {100 * worst[1]:.1f} % | "
            f"{'yes' if within[0] else 'no'} -> {'yes' if within[1] else 'no'} | "
            f"{100 * before['recovery_error']['vignetting']:.0f} % -> "
            f"{100 * r['recovery_error']['vignetting']:.0f} % |"
        )
    lines += [
        "",
        f"All five identifiable parameters within 3 % of their range: {counts[0]}/{len(recs)} "
        f"runs at the search's own stop, {counts[1]}/{len(recs)} after the polish trial.",
        "",
        *search_lines(recs),
    ]
    return lines


def search_lines(recs: list[dict[str, Any]]) -> list[str]:
    """Per search seed: the trials to 1.5x the floor and the runs' lengths."""
    out = []
    for seed in sorted({r["seed"] for r in recs}):
        runs = [r for r in recs if r["seed"] == seed]
        trials = sorted(any_camera_report.trials_to_floor(r) for r in runs)  # inf: not reached
        reached = sum(t != math.inf for t in trials)
        within = sum(max(r["recovery_error"][n] for n in IDENTIFIABLE) <= 0.03 for r in runs)
        fmt = any_camera_report.fmt_trials
        out.append(
            f"Seed {seed}: {reached}/{len(runs)} reach 1.5x the floor, trials to it median "
            f"{fmt(statistics.median(trials))}, worst {fmt(trials[-1])}; trials run median "
            f"{np.median([r['n_trials'] for r in runs]):.0f}; all five within 3 % in "
            f"{within}/{len(runs)}."
        )
    return out


def mismatch_table(recs: list[dict[str, Any]]) -> list[str]:
    """Per mismatch target: the stop, the polish trial and the suspects the run named."""
    from gen_loop.search.attribution import named

    lines = [
        "| target | seed | best/floor | stop | search trials (+ polish) | last real gain | "
        "stop - gain | polish trial | named | right |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    both = 0
    for r in sorted(recs, key=lambda r: (r["seed"], r["camera"])):
        before = r["before_polish"]
        polish = before["polish_distance"]
        taken = (
            "-"
            if polish is None
            else f"{polish / r['noise_floor']:.2f}x"
            + (" (taken)" if polish < before["distance"] else "")
        )
        chosen = named(r["unsearched_suspects"] or [])
        right = sum(s["name"] in any_camera.UNSEARCHED for s in chosen)
        both += right == 2
        text = ", ".join(f"{s['name']} {100 * s['share']:.0f}%" for s in chosen) or "none"
        # the plateau's timing is the search's: the polish trial comes after its stop
        curve = r["curve_over_floor"]
        search = curve[: before["polish_trial"]] if before["polish_trial"] else curve
        gain = any_camera._last_gain(search)
        lines.append(
            f"| {r['camera']} | {r['seed']} | {r['best_over_floor']:.1f} | "
            f"{r['stop_reason'].split(':')[0]} | {len(search)} (+{len(curve) - len(search)}) | "
            f"{gain} | {len(search) - 1 - gain} | {taken} | {text} | {right}/2 |"
        )
    lines += ["", f"Both named right in {both}/{len(recs)}."]
    return lines


def report() -> str:
    recs = load()
    lines: list[str] = []
    mismatch = [r for r in recs if r["camera"] >= 100]
    if mismatch:
        lines += [
            f"### mismatch targets 100-109 (gamma, saturation, noise differ too): "
            f"{len(mismatch)} runs",
            "",
            *mismatch_table(mismatch),
            "",
        ]
    groups = {"hidden cameras 0-20 (in the space)": [r for r in recs if r["camera"] < 100]}
    for title, group in groups.items():
        if not group:
            continue
        lines += [
            f"### {title}: {len(group)} runs",
            "",
            "| parameter | std / range: median [max] | error / range: median [max] | "
            "error / std: median | within 2 std | within 2 std, offset included | "
            "std <= 1.5 % (2 std <= 3 %) | of those, error <= 3 % |",
            "|---|---|---|---|---|---|---|---|",
        ]
        plain, total = ratios(group, False), ratios(group, True)
        polish_rows = polish_table(group)
        for name in SEARCHED:
            shares = [
                u["share"]
                for r in group
                for u in r["parameter_uncertainty"] or []
                if u["name"] == name and u["share"] is not None
            ]
            errors = [r["recovery_error"][name] for r in group]
            tight = [
                r["recovery_error"][name]
                for r in group
                for u in r["parameter_uncertainty"] or []
                if u["name"] == name and u["share"] is not None and u["share"] <= 0.015
            ]
            z, zt = np.array(plain[name]), np.array(total[name])
            lines.append(
                f"| {name} | {np.median(shares):.3f} [{np.max(shares):.3f}] | "
                f"{np.median(errors):.3f} [{np.max(errors):.3f}] | {np.median(z):.2f} | "
                f"{np.mean(z <= 2):.0%} | {np.mean(zt <= 2):.0%} | {len(tight)}/{len(group)} | "
                f"{sum(e <= 0.03 for e in tight)}/{len(tight)} |"
            )
        z_all = np.concatenate([np.array(v) for v in plain.values()])
        zt_all = np.concatenate([np.array(v) for v in total.values()])
        seconds = [r["timings_s"].get("polish_s", 0.0) for r in group]
        lines += [
            "",
            f"All parameters: error / std median {np.median(z_all):.2f} (half-normal: 0.67), "
            f"within 2 std {np.mean(z_all <= 2):.0%} (95 %), with the offset "
            f"{np.mean(zt_all <= 2):.0%}; the renders took {np.median(seconds):.1f} s "
            "(median) a run (the polish: the Jacobian and its step).",
            "",
            *polish_rows,
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=any_camera._camera_list, default=list(range(21)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--arm", default="default", choices=list(any_camera.ARMS))
    parser.add_argument(
        "--out", default=OUT.name, help="records folder under experiments/recovery (resumed)"
    )
    args = parser.parse_args()
    if not args.report:
        for camera in args.cameras:
            run_cached(camera, args.seed, args.arm, HERE / args.out)
    print(report())


if __name__ == "__main__":
    main()
