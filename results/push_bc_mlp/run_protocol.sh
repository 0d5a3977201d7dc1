#!/usr/bin/env bash
# Evaluates the BC-MLP checkpoint of run.sh with the evaluation protocol (full and cpu) and
# the Push operator population beside it. Needs run.sh's run dir and dataset.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=results/push_bc_mlp
DATA=${DATA:-/tmp/polymimic_push_full.hdf5}
RUN=${RUN:-/tmp/polymimic_push_bc_run}
export OMP_NUM_THREADS=1
for PROTOCOL in full cpu; do
  .venv/bin/polymimic eval --checkpoint "$RUN/checkpoints/last" --protocol $PROTOCOL --workers 2 \
    --video-episodes 4 --out-dir $OUT/protocol_$PROTOCOL --overwrite --dataset "$DATA"
done
for PROTOCOL in full cpu; do
  .venv/bin/python scripts/operator_reference.py --dataset polymimic/push/multi-operator-v0 \
    --protocol $PROTOCOL --workers 2 --data "$DATA" --out results/operators_eval/push_$PROTOCOL
done
