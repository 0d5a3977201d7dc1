#!/usr/bin/env bash
# Regenerates results/operators/families/ (issue 13): the two operator families, scripted
# (polymimic/<task>/multi-operator-v1) and planner (polymimic/<task>/planner-v1, CHOMP), on
# the same statistics (scripts/operator_stats.py) for Push and Avoid. The planner datasets
# are twins of the scripted ones: same operators, seeds and initial states.
# Inputs: the named datasets as scripts/update_manifests.py --scratch writes them
#   V1/polymimic__<task>__multi-operator-v1/demos.hdf5   (matching the committed manifests)
#   V2/polymimic__<task>__planner-v1/demos.hdf5
# e.g. python scripts/update_manifests.py --workers 2 --scratch /tmp/family2 \
#        --dataset polymimic/push/planner-v1 --dataset polymimic/avoid/planner-v1
set -euo pipefail
V1=${V1:-/tmp/v1scratch}
V2=${V2:-/tmp/family2}
OUT=results/operators/families
IN=$(mktemp -d)
for t in push avoid; do
  ln -s "$V1/polymimic__${t}__multi-operator-v1/demos.hdf5" "$IN/${t}_scripted.hdf5"
  ln -s "$V2/polymimic__${t}__planner-v1/demos.hdf5" "$IN/${t}_planner.hdf5"
done
python scripts/operator_stats.py "$IN"/push_scripted.hdf5 "$IN"/push_planner.hdf5 \
  "$IN"/avoid_scripted.hdf5 "$IN"/avoid_planner.hdf5 --out "$OUT"
# The Markov check per operator, the two families side by side (markov.md).
python - <<'PY'
import json
out = "results/operators/families"
rows = []
for t in ["push", "avoid"]:
    a = json.load(open(f"{out}/{t}_scripted.json"))["markov"]
    b = json.load(open(f"{out}/{t}_planner.json"))["markov"]
    for op in sorted(a):
        x, y = a[op], b[op]
        rows.append(f"| {t} | {op} | {x['r2_state']:.2f} / {x['r2_history']:.2f} / {x['gap']:.2f} "
                    f"| {y['r2_state']:.2f} / {y['r2_history']:.2f} / {y['gap']:.2f} |")
head = ("# Markov check per operator, scripted against planner family\n\nk-NN R² of the next "
        "action from the observation alone, from the observation plus the 4 previous actions, "
        "and their gap (`polymimic.datasets.diagnostics.markov_check`). Made by "
        "`bash results/operators/families/run.sh`.\n\n")
table = ("| task | operator | scripted R² state / history / gap | planner R² state / history / gap |\n"
         "|---|---|---|---|\n" + "\n".join(rows) + "\n")
open(f"{out}/markov.md", "w").write(head + table)
PY
