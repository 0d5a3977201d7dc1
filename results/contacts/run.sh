#!/usr/bin/env bash
# Interpenetration and still stretches in the named Stack dataset (issue: Stack contact quality,
# bound 5 mm). V1: the named dataset as scripts/update_manifests.py --scratch V1 writes it.
set -euo pipefail
V1=${V1:-/tmp/v1scratch}
python scripts/contact_depth.py "$V1/polymimic__stack__multi-operator-v1/demos.hdf5" --every 1 \
  --out results/contacts/stack_v1.json
