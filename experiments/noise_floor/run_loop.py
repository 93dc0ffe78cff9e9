"""One search of the real loop with no early stop, its trial history saved as JSON.

Usage: .venv/bin/python experiments/noise_floor/run_loop.py NAME [hydra overrides ...]

Runs ``python -m gen_loop run finetune.enabled=false tracking.trial_images=0
selection.pool_size=32 search.patience=100000 search.floor_factor=1e-6 <overrides>`` in
/tmp/gen_loop_noise_floor/runs/NAME (MLflow store there too; the demo target and its embeddings
are cached in /tmp/gen_loop_noise_floor/cache, shared by all runs), then reads the Optuna study
(optuna.db, user attr ``distance``) and writes experiments/noise_floor/results/loop_runs/NAME.json:
the overrides, the noise floor, the hidden parameters and every trial's number, distance,
parameters and scene seed, plus wall time. Run each under ``flock /tmp/gen_loop_cpu.lock``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: _demo
from _demo import gen_loop_command, gen_loop_env, run_gen_loop

WORK = Path("/tmp/gen_loop_noise_floor")
RESULTS = Path(__file__).resolve().parent / "results" / "loop_runs"
NO_STOP = [
    "finetune.enabled=false",
    "tracking.trial_images=0",
    "selection.pool_size=32",
    "search.patience=100000",
    "search.floor_factor=1e-6",  # validation wants > 0; this never triggers
]


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    name, overrides = sys.argv[1], sys.argv[2:]
    run_dir = WORK / "runs" / name
    if run_dir.exists():
        raise SystemExit(f"{run_dir} exists: remove it to rerun {name}")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    env = gen_loop_env(GEN_LOOP_CACHE=str(WORK / "cache"))
    cmd = gen_loop_command(
        "run",
        *NO_STOP,
        *overrides,
        f"hydra.run.dir={run_dir}",
        f"tracking.uri=sqlite:///{WORK / 'mlflow.db'}",
    )
    summary, wall, _ = run_gen_loop(cmd, run_dir, cwd=WORK, env=env, label=name)
    study = optuna.load_study(study_name="gen_loop", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    trials = [
        {
            "number": t.number,
            "distance": t.user_attrs.get("distance"),
            "params": t.params,
            "scene_seed": t.user_attrs.get("scene_seed"),
        }
        for t in study.trials
    ]
    out = {
        "name": name,
        "overrides": overrides,
        "wall_s": wall,
        "noise_floor": summary["noise_floor"],
        "hidden_params": summary.get("target_hidden_params"),
        "space": OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))[
            "search"
        ]["space"],
        "recovery_error": summary.get("recovery_error"),
        "best_distance": summary["best_distance"],
        "all_params": summary.get("all_params"),
        "trials": trials,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out))
    print(f"{name}: {len(trials)} trials in {wall:.0f} s, best {summary['best_distance']:.4f}")


if __name__ == "__main__":
    main()
