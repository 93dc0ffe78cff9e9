#!/usr/bin/env bash
# Reproduce experiments/noise_floor (issue 4 part 2): every CPU-heavy step under the shared lock.
#   bash experiments/noise_floor/all.sh
set -eu
cd "$(dirname "$0")/../.."
export NO_ALBUMENTATIONS_UPDATE=1 YOLO_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true
PY=.venv/bin/python
flock /tmp/gen_loop_cpu.lock $PY experiments/noise_floor/floor_study.py        # part 1, ~40 s
# parts 2-4: 12 runs, ~15 min locked; runs whose results/loop_runs/NAME.json exists are skipped
bash experiments/noise_floor/all_runs.sh all
flock /tmp/gen_loop_cpu.lock $PY experiments/noise_floor/rescore.py             # ~1 min
flock /tmp/gen_loop_cpu.lock $PY experiments/noise_floor/crn_near_floor.py      # ~1 min
$PY experiments/noise_floor/report.py > experiments/noise_floor/results/report.md
