#!/usr/bin/env bash
# Reproduce experiments/downstream: every condition and seed, one locked fine-tune per call,
# then the tables and the plots. Finished results are kept (delete results/<tag>_* to redo).
#   bash experiments/downstream/all.sh              # everything below
#   bash experiments/downstream/all.sh TAG [run.py options...]   # one variant, e.g.
#   CONDITIONS='d c' bash experiments/downstream/all.sh ep16 --override finetune.epochs=16
#   bash experiments/downstream/all.sh controls     # issue 14: tag v2, the no-search controls
#                                                   # (dr, aug) on the demo and mismatch targets
# PY=/path/to/python picks another interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_ALBUMENTATIONS_UPDATE=1 YOLO_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true
# the loop runs (python -m gen_loop, started in runs/) import this checkout, not another install
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SEEDS="${SEEDS:-0 1 2}"
PY="${PY:-.venv/bin/python}"

run_tag() {  # TAG CONDITIONS [run.py options...]; TARGET=demo|dashcam_dusk|cctv_fog
  local tag="$1" conditions="$2" target="${TARGET:-demo}" name
  shift 2
  for seed in $SEEDS; do
    for c in $conditions; do
      name="${tag}_${c}_${seed}"
      [[ "$target" != demo ]] && name="${tag}_${target}_${c}_${seed}"
      [[ -f "experiments/downstream/results/${name}.json" ]] && continue
      # (cams) was called (f) on 2026-11-26: its results keep that name
      [[ "$c" == cams && -f "experiments/downstream/results/${tag}_f_${seed}.json" ]] && continue
      [[ "$c" == a && "$seed" != "${SEEDS%% *}" ]] && continue  # (a) has no seed dependence
      flock /tmp/gen_loop_cpu.lock "$PY" experiments/downstream/run.py \
        --condition "$c" --seed "$seed" --tag "$tag" --target "$target" "$@"
    done
  done
}

if [[ "${1:-}" == controls ]]; then
  # Issue 14 with today's default loop (vector_gp + Gauss-Newton, selection=camera, 64 scenes):
  # the demo target over 5 seeds, then the two mismatch cameras over 3.
  [[ -d experiments/mismatch/data ]] ||
    flock /tmp/gen_loop_cpu.lock "$PY" experiments/mismatch/make_targets.py
  SEEDS="${DEMO_SEEDS:-0 1 2 3 4}" run_tag v2 "a d b dr aug e"
  for target in dashcam_dusk cctv_fog; do
    SEEDS="${MISMATCH_SEEDS:-0 1 2}" TARGET="$target" run_tag v2 "a d b dr aug e"
  done
elif [[ $# -gt 0 ]]; then
  tag="$1"
  shift
  run_tag "$tag" "${CONDITIONS:-a d c b e}" "$@"
else
  # The former default selection (closest quarter of one camera's pool): all five conditions.
  run_tag default "a d c b e" --override selection=quantile
  # The fix, selection=camera at the same training-set size (64 = 51 train + 13 val); (c) is
  # the same 64 scenes under the best camera alone, (cams) under a random one of the 8 cameras.
  run_tag camera "d c cams" --override selection=camera --override selection.pool_size=64
fi
"$PY" experiments/downstream/report.py
