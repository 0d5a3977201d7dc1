#!/usr/bin/env bash
# Regenerates results/operators/style_pairs/ (issue 13): each task's same-skill style pair
# (polymimic.datasets.style_pairs), matched-state action disagreement of expert demos of
# styles a and b (moved d of the way) at d = 0, 0.25, 0.5, 0.75, 1 on episode seeds 0-9.
# One core: about 2 minutes.
set -euo pipefail
OMP_NUM_THREADS=1 python scripts/style_pair_distance.py --seeds 10 \
  --distances 0 0.25 0.5 0.75 1 --out results/operators/style_pairs
