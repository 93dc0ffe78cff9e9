#!/usr/bin/env bash
# The loop runs of parts 2-4 (issue 4): one run per locked invocation, skipping finished ones.
# Usage: bash experiments/noise_floor/all_runs.sh [part2|part3|part4|all]
set -u
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
run() {  # NAME overrides...
  [ -f "experiments/noise_floor/results/loop_runs/$1.json" ] && return 0
  rm -rf "/tmp/gen_loop_noise_floor/runs/$1"
  flock /tmp/gen_loop_cpu.lock $PY experiments/noise_floor/run_loop.py "$@"
}
part=${1:-all}
if [ "$part" = part2 ] || [ "$part" = all ]; then  # long budget, common seeds, defaults
  for s in 0 1 2; do run "common_l14_zscore_s$s" search.n_trials=200 search.seed=$s; done
fi
if [ "$part" = part3 ] || [ "$part" = all ]; then  # fresh scenes per trial
  for s in 0 1 2; do run "fresh_l14_zscore_s$s" search.n_trials=100 search.seed=$s search.scene_seeds=fresh; done
fi
if [ "$part" = part4 ] || [ "$part" = all ]; then  # layer x standardisation (l14 zscore: part 2)
  for s in 0 1 2; do
    run "common_l14_l2_s$s" search.n_trials=100 search.seed=$s score.metric=l2
    for l in 21 28; do
      run "common_l${l}_zscore_s$s" search.n_trials=100 search.seed=$s "embedder.layers=[$l]"
    done
  done
fi
