#!/usr/bin/env bash
# The whole recovery benchmark in one script run: the identifiability Jacobians, every
# (sampler, seed) run, the TPE + local refinement arms, then the tables and plots. Each
# measurement takes the shared CPU lock on its own, so other work gets the CPU in between.
#   experiments/recovery/all.sh                 # everything (about 30 min of CPU on 2 cores)
#   SKIP_DONE=1 experiments/recovery/all.sh     # keep results/*.json already there
#   SAMPLERS="tpe random qmc" SEEDS="0 1 2" experiments/recovery/all.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_ALBUMENTATIONS_UPDATE=1 YOLO_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true
PY=${PY:-.venv/bin/python}
LOCK=${LOCK:-/tmp/gen_loop_cpu.lock}
SAMPLERS=${SAMPLERS:-"tpe random qmc gp"}
SEEDS=${SEEDS:-"0 1 2 3 4"}
OUT=experiments/recovery/results

step() {  # step <result file> <command...>: one locked measurement
    local result=$1; shift
    if [[ -n "${SKIP_DONE:-}" && -f "$result" ]]; then
        echo "skip $result (exists)"; return
    fi
    flock "$LOCK" "$@"
}

step "$OUT/identify_s4.json" "$PY" experiments/recovery/identify.py --seeds $SEEDS
for seed in $SEEDS; do
    for sampler in $SAMPLERS; do
        step "$OUT/${sampler}_s${seed}.json" \
            "$PY" experiments/recovery/run.py --sampler "$sampler" --seed "$seed"
    done
done
if [[ " $SAMPLERS " == *" tpe "* ]]; then  # extra arms: TPE 50 trials, then a local stage
    for seed in $SEEDS; do
        for method in lsq cmaes; do
            step "$OUT/tpe50+${method}_s${seed}.json" \
                "$PY" experiments/recovery/refine.py --seed "$seed" --method "$method"
        done
        # least squares alone, from the default parameters (trial 1)
        step "$OUT/tpe1+lsq_s${seed}.json" \
            "$PY" experiments/recovery/refine.py --seed "$seed" --method lsq --stage1 1
    done
fi
"$PY" experiments/recovery/report.py
