"""Camera 16's valley, seen from one trial: the distance along one parameter, and the
Jacobian's weakest directions there (BASINS.md, "The valley, scanned").

Usage (after ``uncertainty.py --cameras 16 --seed 4``, which keeps its run folder):

    .venv/bin/python experiments/recovery/valley_scan.py \\
        experiments/recovery/runs/any_camera/default_c16_s4 --trial 32 --param vignetting

Renders the run's batch (its overrides, scenes and batch size) at the trial's camera with
``--param`` set to each of ``--points`` values over its search range (unit cube), and at a
forward-difference step of 0.02 of each range for the Jacobian. Prints the distance over the
noise floor at each value, and the Jacobian's singular values with their directions. Only
renders, no trials: the study is not changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import load_demo

STEP = 0.02


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--trial", type=int, required=True)
    parser.add_argument("--param", required=True)
    parser.add_argument("--points", type=int, default=9)
    args = parser.parse_args()

    import optuna
    import yaml

    from gen_loop.loop.trial import evaluate_params
    from gen_loop.search.refine import Box, forward_jacobian

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the run's own overrides (its hidden camera and target scenes), not Hydra's or tracking's
    overrides = yaml.safe_load((args.run_dir / ".hydra" / "overrides.yaml").read_text())
    demo = load_demo([o for o in overrides if not o.startswith(("hydra.", "tracking."))])
    summary = json.loads((args.run_dir / "summary.json").read_text())
    study = optuna.load_study(
        study_name=summary["study"]["name"], storage=f"sqlite:///{args.run_dir / 'optuna.db'}"
    )
    box = Box.of_space(demo.space)
    if args.param not in box.names:
        raise SystemExit(f"--param {args.param}: not one of the refined parameters {box.names}")
    base = {**summary["all_params"], **study.trials[args.trial].params}
    floor = float(summary["noise_floor"]["mean"])

    def residual(u: np.ndarray) -> np.ndarray:
        params = {**base, **box.from_unit(u)}
        batch, seed = demo.cfg.search.batch_size, demo.cfg.search.scene_seed
        result = evaluate_params(demo.generator, demo.embedder, demo.scorer, params, batch, seed)
        return np.asarray(demo.scorer.residual(result.embeddings))

    u0 = box.to_unit(base)
    r0 = residual(u0)
    print(f"trial {args.trial}: {np.linalg.norm(r0) / floor:.2f}x the floor at", end=" ")
    print(", ".join(f"{n} {u:.3f}" for n, u in zip(box.names, u0, strict=True)), "(unit cube)")
    i = box.names.index(args.param)
    for value in np.linspace(0.0, 1.0, args.points):
        u = u0.copy()
        u[i] = value
        print(f"  {args.param} {value:.3f}: {np.linalg.norm(residual(u)) / floor:.2f}x")
    jac = forward_jacobian(lambda us: [residual(u) for u in us], u0, r0, STEP)
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    print("Jacobian singular values (residual per unit of range) and their directions:")
    for s, v in zip(sv, vt, strict=True):
        parts = ", ".join(f"{n} {c:+.2f}" for n, c in zip(box.names, v, strict=True))
        print(f"  {s:9.3f}: {parts}")


if __name__ == "__main__":
    main()
