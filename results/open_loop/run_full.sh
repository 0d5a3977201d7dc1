#!/usr/bin/env bash
# The open-loop baseline over every context of the full protocol's test split, one rollout
# each (the policy is deterministic: more rollouts of a context add no evidence), beside the
# scripted expert on the same contexts. Writes results/open_loop/full/. Datasets as run.sh.
set -euo pipefail
export OMP_NUM_THREADS=1
DATA=${DATA:-/tmp/v1scratch}
OUT=results/open_loop/full
mkdir -p "$OUT"
(cd "$DATA" && sha256sum polymimic__*__multi-operator-v1/demos.hdf5) > "$OUT/datasets.sha256"
for task in push avoid align sort2 sort4 sort6 stack; do
  name=${task^}
  .venv/bin/polymimic eval --open-loop "$DATA/polymimic__${task}__multi-operator-v1/demos.hdf5" \
    --filter-key train --protocol full --rollouts 1 --workers 2 --video-episodes 0 \
    --out-dir "$OUT/$name-v1" --overwrite
done
.venv/bin/python scripts/open_loop_table.py --eval-dir "$OUT" --out "$OUT" --workers 2
