#!/usr/bin/env bash
# The open-loop baseline (polymimic eval --open-loop) on every task's v1 named dataset,
# cpu protocol (8 contexts x 4 rollouts), then the table beside the scripted expert on the
# same contexts. Datasets: /tmp/v1scratch/polymimic__<task>__multi-operator-v1/demos.hdf5
# (DATA overrides the folder). Run from the repository root: bash results/open_loop/run.sh
set -euo pipefail
export OMP_NUM_THREADS=1
DATA=${DATA:-/tmp/v1scratch}
OUT=results/open_loop
# Which dataset bytes the numbers come from (the v1 datasets are still being regenerated).
(cd "$DATA" && sha256sum polymimic__*__multi-operator-v1/demos.hdf5) > "$OUT/datasets.sha256"
for task in push avoid align sort2 sort4 sort6 stack; do
  name=${task^}  # push -> Push: the task id's last part without the version
  .venv/bin/polymimic eval --open-loop "$DATA/polymimic__${task}__multi-operator-v1/demos.hdf5" \
    --filter-key train --protocol cpu --workers 2 --video-episodes 0 \
    --out-dir "$OUT/$name-v1" --overwrite
done
.venv/bin/python scripts/open_loop_table.py --eval-dir "$OUT" --out "$OUT" --workers 2
