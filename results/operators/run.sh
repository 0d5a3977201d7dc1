#!/usr/bin/env bash
# Regenerates results/operators/ (the operators-v1 motion statistics and scene dependence).
# v0 files: generated from the commit before operators v1 (c1b7f2a) with
#   polymimic data generate --dataset polymimic/<task>/multi-operator-v0 --out V0/<task>.hdf5 --workers 2 --strict
# v1 files: the named datasets of this commit (scripts/update_manifests.py --scratch V1 writes
#   V1/polymimic__<task>__multi-operator-v1/demos.hdf5, matching the committed manifests).
set -euo pipefail
V0=${V0:-/tmp/v0}
V1=${V1:-/tmp/v1scratch}
IN=$(mktemp -d)
for t in push avoid align sort2 sort4 sort6 stack; do
  ln -s "$V0/$t.hdf5" "$IN/${t}_v0.hdf5"
  ln -s "$V1/polymimic__${t}__multi-operator-v1/demos.hdf5" "$IN/${t}_v1.hdf5"
done
python scripts/operator_stats.py "$IN"/*_v0.hdf5 --out results/operators/v0 --no-plots
python scripts/operator_stats.py "$IN"/*_v1.hdf5 --out results/operators/v1
python scripts/scene_dependence.py $(for t in push avoid align sort2 sort4 sort6 stack; do
  echo "polymimic/$t/multi-operator-v1=$IN/${t}_v1.hdf5"; done) --out results/operators
# The Markov check side by side (markov_v0_v1.md), from the two JSON sets above.
python - <<'PY'
import json
rows = []
for t in ["push", "avoid", "align", "sort2", "sort4", "sort6", "stack"]:
    v0 = json.load(open(f"results/operators/v0/{t}_v0.json"))["markov"]
    v1 = json.load(open(f"results/operators/v1/{t}_v1.json"))["markov"]
    for op in sorted(v0):
        a, b = v0[op], v1[op]
        rows.append(f"| {t} | {op} | {a['r2_state']:.2f} / {a['r2_history']:.2f} / {a['gap']:.2f} "
                    f"| {b['r2_state']:.2f} / {b['r2_history']:.2f} / {b['gap']:.2f} |")
head = ("# Markov check per operator, v0 against v1\n\nk-NN R² of the next action from the "
        "observation alone, from the observation plus the 4 previous actions, and their gap "
        "(`polymimic.datasets.diagnostics.markov_check`, what `polymimic data info` reports), on "
        "the full named datasets. Made by `bash results/operators/run.sh` (from `v0/*.json` and "
        "`v1/*.json`).\n\n")
table = ("| task | operator | v0 R² state / history / gap | v1 R² state / history / gap |\n"
         "|---|---|---|---|\n" + "\n".join(rows) + "\n")
open("results/operators/markov_v0_v1.md", "w").write(head + table)
PY
