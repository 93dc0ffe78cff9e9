#!/usr/bin/env bash
# Reproduce experiments/downstream: every condition and seed, one locked fine-tune per call,
# then the tables and the plots. Finished results are kept (delete results/<tag>_* to redo).
#   bash experiments/downstream/all.sh              # everything below
#   bash experiments/downstream/all.sh TAG [run.py options...]   # one variant, e.g.
#   CONDITIONS='d c' bash experiments/downstream/all.sh ep16 --override finetune.epochs=16
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_ALBUMENTATIONS_UPDATE=1 YOLO_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true
SEEDS="${SEEDS:-0 1 2}"

run_tag() {  # TAG CONDITIONS [run.py options...]
  local tag="$1" conditions="$2"
  shift 2
  for seed in $SEEDS; do
    for c in $conditions; do
      [[ -f "experiments/downstream/results/${tag}_${c}_${seed}.json" ]] && continue
      flock /tmp/gen_loop_cpu.lock .venv/bin/python experiments/downstream/run.py \
        --condition "$c" --seed "$seed" --tag "$tag" "$@"
    done
  done
}

if [[ $# -gt 0 ]]; then
  tag="$1"
  shift
  run_tag "$tag" "${CONDITIONS:-a d c b e}" "$@"
else
  # The former default selection (closest quarter of one camera's pool): all five conditions.
  run_tag default "a d c b e" --override selection=quantile
  # The fix, selection=camera at the same training-set size (64 = 51 train + 13 val); (c) is
  # the same 64 scenes under the best camera alone, (f) under a random one of the 8 cameras.
  run_tag camera "d c f" --override selection=camera --override selection.pool_size=64
fi
.venv/bin/python experiments/downstream/report.py
