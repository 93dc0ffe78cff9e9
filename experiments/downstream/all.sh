#!/usr/bin/env bash
# Reproduce experiments/downstream: every condition and seed (one locked fine-tune per call),
# then the tables and the plot. Usage: bash experiments/downstream/all.sh [TAG [OVERRIDES...]]
# e.g. bash experiments/downstream/all.sh topk32 --override selection.method=topk
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_ALBUMENTATIONS_UPDATE=1 YOLO_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true
TAG="${1:-default}"; shift || true
SEEDS="${SEEDS:-0 1 2}"
CONDITIONS="${CONDITIONS:-a d c b e}"
for seed in $SEEDS; do
  for c in $CONDITIONS; do
    out="experiments/downstream/results/${TAG}_${c}_${seed}.json"
    [[ -f "$out" ]] && continue  # done already: delete the JSON to redo it
    flock /tmp/gen_loop_cpu.lock .venv/bin/python experiments/downstream/run.py \
      --condition "$c" --seed "$seed" --tag "$TAG" "$@"
  done
done
.venv/bin/python experiments/downstream/report.py
