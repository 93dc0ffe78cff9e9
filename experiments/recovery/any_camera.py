"""Issue 11: does the search find *any* camera? Hidden cameras over the whole range, four arms.

Usage:
    .venv/bin/python experiments/recovery/any_camera.py --print-cameras
    .venv/bin/python experiments/recovery/any_camera.py --arm default --seed 0 [--cameras 0-20]
    .venv/bin/python experiments/recovery/any_camera.py --all     # every arm, in phases

Cameras: 16 draws of a scrambled Latin hypercube over the *whole* range of each of the six
searched parameters (conf/search/default.yaml), 4 corners (every parameter 3 % from one end of
its range, in four patterns), and the demo camera (conf/target/demo.yaml) as camera 20. Camera
``c`` renders its 160 target images from scene seed ``TARGET_SEED_OFFSET + c`` (the search
renders scene seed 0, the selection pool seed 1); the demo camera keeps its own seed 777.

Mismatch targets (cameras 100-104): LHS cameras 0-4 that also differ in gamma, saturation and
sensor noise, which the default space does not search; run with ``--arm default --cameras
100-104``: does the plateau stop fire soon after the last real gain, and does the attribution
name two of the three?

Arms (each a ``python -m gen_loop run`` as a user runs it, fine-tuning off, a 32-sample pool,
no trial image grids, at most 100 trials, the default stop rule unless said):
    default   the new default (vector_gp + Gauss-Newton), search seeds 0, 1, 2
    tpe+lsq   the old default (``search=tpe``: TPE, least squares after 50), seed 0
    tpe       TPE alone (``search=tpe search.refine.method=none``), no plateau stop, seed 0
    random    random search (``search=random search.refine.method=none``), no plateau stop

Results: ``experiments/recovery/any_camera/<arm>_c<camera>_s<seed>.json`` (an existing file is
kept: the script resumes); runs (git-ignored) in ``experiments/recovery/runs/any_camera/``.
``any_camera_report.py`` makes the tables and plots. Take the shared CPU lock for timings.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from run import (
    REPO,
    RUNS,
    best_so_far,
    run_loop,
    search_space,
    trial_distances,
    trials_to_reach,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import compose_run, gen_loop_command

OUT = Path(__file__).resolve().parent / "any_camera"
N_TRIALS = 100
N_LHS = 16
CORNER = 0.03  # corner cameras sit this fraction of each range from an end
CORNERS = ((0, 0, 0, 0, 0, 0), (1, 1, 1, 1, 1, 1), (0, 1, 0, 1, 0, 1), (1, 0, 1, 0, 1, 0))
DESIGN_SEED = 20261202
TARGET_SEED_OFFSET = 2000
DEMO = N_LHS + len(CORNERS)  # the demo camera's index
#: arm -> (overrides, search seeds)
ARMS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "default": ((), (0, 1, 2)),
    # the default without leaving wrong basins (search.refine.restart), for BASINS.md
    "no_restart": (("search.refine.restart.above=0",), ()),
    # colour temperature searched on its log scale (BASINS.md: measured, not adopted)
    "ct_log": (("search.space.color_temp_k.log=true",), ()),
    # the trust region given back with a fresh Jacobian (search.refine.regrow, BASINS.md)
    "regrow": (("search.refine.regrow=true",), ()),
    # a worse Gauss-Newton point's second-order correction tried once (search.refine.correct,
    # the default since session 15; BASINS.md, "Steps that bend"), and the default without it
    "correct": (("search.refine.correct=true",), ()),
    "no_correct": (("search.refine.correct=false",), ()),
    "tpe+lsq": (("search=tpe",), (0,)),
    "tpe": (("search=tpe", "search.refine.method=none", "search.patience=1000"), (0,)),
    "random": (("search=random", "search.refine.method=none", "search.patience=1000"), (0,)),
}
#: The order of --all: the two defaults on every camera first, then the other seeds, then the
#: 100-trial baselines.
PHASES = (
    ("default", 0),
    ("tpe+lsq", 0),
    ("default", 1),
    ("default", 2),
    ("tpe", 0),
    ("random", 0),
)


@functools.cache
def cameras() -> list[dict[str, float]]:
    """The hidden cameras, in index order (4 significant digits)."""
    from scipy.stats import qmc

    space = search_space()
    units = qmc.LatinHypercube(d=len(space), scramble=True, seed=DESIGN_SEED).random(N_LHS)
    corners = np.array([[CORNER if b == 0 else 1 - CORNER for b in c] for c in CORNERS])
    out = []
    for u in np.vstack([units, corners]):
        out.append(
            {
                name: float(f"{low + ui * (high - low):.4g}")
                for ui, (name, (low, high)) in zip(u, space.items(), strict=True)
            }
        )
    demo = compose_run([]).target.demo
    out.append({k: float(v) for k, v in demo.params.items()})
    return out


#: Mismatch targets: a camera of the LHS design that also differs in three parameters the
#: default space does not search (gamma, saturation, sensor noise), so the floor cannot be
#: reached. Camera ``MISMATCH_OFFSET + m`` is LHS camera m with MISMATCH[m] on top.
MISMATCH_OFFSET = 100
MISMATCH = (
    {"gamma": 1.5, "saturation": 0.4, "noise_std": 0.06},
    {"gamma": 0.7, "saturation": 1.6, "noise_std": 0.08},
    {"gamma": 1.7, "saturation": 1.5, "noise_std": 0.1},
    {"gamma": 0.6, "saturation": 0.5, "noise_std": 0.05},
    {"gamma": 1.3, "saturation": 0.3, "noise_std": 0.12},
    # Held out from the attribution rule's design (issue 11, session 5): drawn once from
    # numpy's default_rng(20261203), gamma U(0.5, 2), saturation U(0, 2), noise U(0.03, 0.15),
    # keeping |gamma - 1| >= 0.25 and |saturation - 1| >= 0.3 (a difference to find).
    {"gamma": 0.53, "saturation": 1.85, "noise_std": 0.092},
    {"gamma": 0.63, "saturation": 1.88, "noise_std": 0.034},
    {"gamma": 1.94, "saturation": 0.2, "noise_std": 0.133},
    {"gamma": 0.62, "saturation": 0.41, "noise_std": 0.137},
    {"gamma": 1.91, "saturation": 0.52, "noise_std": 0.133},
)
UNSEARCHED = ("gamma", "saturation", "noise_std")


def hidden_of(camera: int) -> dict[str, float]:
    """The hidden values of a camera (a mismatch camera: its LHS camera's plus MISMATCH)."""
    if camera >= MISMATCH_OFFSET:
        m = camera - MISMATCH_OFFSET
        return {**cameras()[m], **MISMATCH[m]}
    return cameras()[camera]


def target_seed(camera: int) -> int:
    return 777 if camera == DEMO else TARGET_SEED_OFFSET + camera


def target_overrides(camera: int) -> list[str]:
    """The overrides that make the demo target camera ``camera``: its scene seed and hidden
    values (the unsearched ones of a mismatch camera added with ``+``)."""
    return [
        f"target.demo.seed={target_seed(camera)}",
        *[
            f"{'+' if k in UNSEARCHED else ''}target.demo.params.{k}={v}"
            for k, v in hidden_of(camera).items()
        ],
    ]


def run_command(extra: Sequence[str], camera: int, seed: int, run_dir: Path) -> list[str]:
    """The benchmark's ``python -m gen_loop run`` of ``camera``: ``extra`` overrides, at most
    ``N_TRIALS`` trials, fine-tuning off, a 32-sample pool, no trial image grids."""
    return gen_loop_command(
        "run",
        *extra,
        f"search.seed={seed}",
        f"search.n_trials={N_TRIALS}",
        "finetune.enabled=false",
        "selection.pool_size=32",
        "tracking.trial_images=0",
        *target_overrides(camera),
        f"tracking.uri=sqlite:///{run_dir / 'mlflow.db'}",
        f"hydra.run.dir={run_dir}",
    )


def run_one(arm: str, camera: int, seed: int) -> dict[str, Any]:
    """One loop run, reduced to the benchmark's numbers."""
    hidden = hidden_of(camera)
    run_dir = RUNS / "any_camera" / f"{arm}_c{camera}_s{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = run_command(ARMS[arm][0], camera, seed, run_dir)
    summary, wall, _ = run_loop(cmd, run_dir, f"{arm} camera {camera} seed {seed}")
    distances = trial_distances(run_dir)
    curve = best_so_far(distances)
    floor = float(summary["noise_floor"]["mean"])
    search_s = summary["timings_s"].get("search_s")
    return {
        "arm": arm,
        "camera": camera,
        "seed": seed,
        "hidden_params": hidden,
        "target_seed": target_seed(camera),
        "noise_floor": floor,
        "default_over_floor": summary["default_distance"] / floor,
        "best_over_floor": summary["best_distance"] / floor,
        "best_params": summary["best_params"],
        "recovery_error": summary["recovery_error"],
        "trials_to_1.5x": trials_to_reach(curve, 1.5 * floor),
        "curve_over_floor": [c / floor for c in curve],
        "n_trials": summary["n_trials"],
        "stop_reason": summary["stop_reason"],
        "unsearched_suspects": summary.get("unsearched_suspects"),
        "last_gain_trial": _last_gain(curve),
        "s_per_trial": (search_s / max(len(distances), 1)) if search_s else None,
        "wall_s": wall,
        "command": " ".join(cmd[1:]),
    }


def _last_gain(curve: list[float], rel: float = 0.01) -> int:
    """The last trial (0-based) that improved the best by at least ``rel`` (the plateau rule's
    "real gain")."""
    last, best = 0, curve[0]
    for i, value in enumerate(curve):
        if value < best * (1 - rel):
            last, best = i, value
    return last


def result_path(arm: str, camera: int, seed: int) -> Path:
    return OUT / f"{arm}_c{camera}_s{seed}.json"


def run_cached(arm: str, camera: int, seed: int) -> None:
    path = result_path(arm, camera, seed)
    if path.exists():
        return
    result = run_one(arm, camera, seed)
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{arm:8s} camera {camera:2d} seed {seed}: best {result['best_over_floor']:.2f} x floor, "
        f"1.5x at trial {result['trials_to_1.5x']}, {result['n_trials']} trials "
        f"({result['stop_reason'][:40]}), {result['wall_s']:.0f} s",
        flush=True,
    )


def _camera_list(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(c) for c in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=list(ARMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cameras",
        type=_camera_list,
        default=list(range(DEMO + 1)),
        help=f"e.g. 0-20, or 100-{MISMATCH_OFFSET + len(MISMATCH) - 1} for the mismatch targets",
    )
    parser.add_argument("--all", action="store_true", help="every arm and seed, in phases")
    parser.add_argument("--print-cameras", action="store_true")
    args = parser.parse_args()
    if args.print_cameras:
        for i, cam in enumerate(cameras()):
            print(i, cam)
        return
    if args.all:
        for arm, seed in PHASES:
            for camera in args.cameras:
                run_cached(arm, camera, seed)
        return
    if args.arm is None:
        parser.error("--arm (or --all, --print-cameras) is required")
    for camera in args.cameras:
        run_cached(args.arm, camera, args.seed)


if __name__ == "__main__":
    assert REPO.exists()
    main()
