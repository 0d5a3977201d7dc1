#!/usr/bin/env bash
# Regenerates results/push_bc_mlp: the full named Push dataset, BC-MLP, and its evaluation
# with the full and cpu protocols beside the operator population (run_protocol.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=results/push_bc_mlp
DATA=${DATA:-/tmp/polymimic_push_full.hdf5}
export OMP_NUM_THREADS=1
rm -rf /tmp/polymimic_push_bc_run  # train refuses to overwrite an existing run
.venv/bin/polymimic data generate --dataset polymimic/push/multi-operator-v0 --out "$DATA" --workers 2 --strict
.venv/bin/polymimic data info "$DATA" > $OUT/data_info.json
.venv/bin/polymimic train dataset="$DATA" policy=bc_mlp train.num_steps=20000 train.progress_bar=false \
  hydra.run.dir=/tmp/polymimic_push_bc_run
cp /tmp/polymimic_push_bc_run/train_config.json /tmp/polymimic_push_bc_run/train_metrics.json $OUT/
DATA="$DATA" RUN=/tmp/polymimic_push_bc_run bash $OUT/run_protocol.sh
