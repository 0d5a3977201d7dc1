#!/usr/bin/env bash
# Regenerates results/learners: the Push learner table (issues 17 and 14) and the DDIM-vs-DDPM
# comparison. Resumable: rerunning skips finished runs and resumes interrupted training.
# One run at a time, one torch thread each (scripts/learner_table.py sets OMP_NUM_THREADS=1).
#   nohup nice -n 19 bash results/learners/run.sh > /tmp/learner_table.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# The named Push v1 dataset. The committed table used the file generated at
# /tmp/v1scratch (generation code recorded in table.md); without it, generate it.
SRC=${SRC:-/tmp/v1scratch/polymimic__push__multi-operator-v1/demos.hdf5}
DATA=${DATA:-/tmp/polymimic_learners/push_v1.hdf5}
mkdir -p "$(dirname "$DATA")"
if [ ! -f "$DATA" ]; then
  if [ -f "$SRC" ]; then
    cp "$SRC" "$DATA"
  else
    .venv/bin/polymimic data generate --dataset polymimic/push/multi-operator-v1 --out "$DATA" \
      --workers 2 --strict
  fi
fi
.venv/bin/polymimic data masks "$DATA" --by quality  # better/okay/worse (robomimic's keys)

# DDIM-10 vs DDPM-100 on 1,000 held-out (mask valid) states of a diffusion cpu_small
# checkpoint trained for 8 minutes (a quick model: the comparison needs a sampler, not a
# good policy). Skipped when its JSON exists. The committed JSON's checkpoint path reads
# /tmp/h17c/diffusion_train: the same run (sha256 in the JSON), moved to $DD_RUN afterwards.
DD=results/learners/ddim_vs_ddpm
DD_RUN=${DD_RUN:-/tmp/polymimic_learners/ddim_vs_ddpm_train}
if [ ! -f $DD/diffusion_cpu_small_8min.json ]; then
  if [ ! -f "$DD_RUN/train_metrics.json" ]; then
    RESUME=$([ -d "$DD_RUN/checkpoints" ] && echo true || echo false)
    .venv/bin/polymimic train dataset="$DATA" policy=diffusion/cpu_small train.num_steps=4000 \
      train.max_minutes=8 train.progress_bar=false train.log_every=200 train.save_every=500 \
      device=cpu train.resume=$RESUME hydra.run.dir="$DD_RUN"
  fi
  cp "$DD_RUN/train_config.json" "$DD_RUN/train_log.jsonl" "$DD_RUN/train_metrics.json" $DD/
  .venv/bin/python scripts/ddim_vs_ddpm.py --checkpoint "$DD_RUN/checkpoints/last" \
    --dataset "$DATA" --mask valid --states 1000 --samples 16 \
    --out $DD/diffusion_cpu_small_8min.json
fi

# Paired rollouts, DDIM-10 against DDPM-100 (issue 17): the table's diffusion/better run
# retrained to its recorded step count (training is deterministic for a seed and a step
# count), then both samplers on the full protocol's 30 test contexts x 7 rollouts = 210
# paired episodes (same states, same seeds), and the paired success difference with its
# context-bootstrap interval. DDPM-100 costs ~10x DDIM-10 per action: ~1.5 h on one core.
PAIRED=results/learners/ddim_vs_ddpm/paired
PAIRED_RUN=${PAIRED_RUN:-/tmp/polymimic_learners/diffusion_better_paired}
if [ ! -f $PAIRED/paired.json ]; then
  STEPS=$(.venv/bin/python -c "import json; print(json.load(open('results/learners/diffusion/better/train_metrics.json'))['step'])")
  if [ ! -f "$PAIRED_RUN/train_metrics.json" ]; then
    RESUME=$([ -d "$PAIRED_RUN/checkpoints" ] && echo true || echo false)
    .venv/bin/polymimic train dataset="$DATA" filter_key=better_train policy=diffusion/cpu_small \
      seed=0 device=cpu train.progress_bar=false train.num_steps="$STEPS" train.save_every=577 \
      train.log_every=86 train.resume=$RESUME hydra.run.dir="$PAIRED_RUN"
  fi
  for s in "ddim 10" "ddpm 100"; do
    set -- $s
    [ -f $PAIRED/$1/eval_info.json ] || .venv/bin/polymimic eval --checkpoint "$PAIRED_RUN/checkpoints/last" \
      --sampler $1 --inference-steps $2 --protocol full --rollouts 7 --workers 1 \
      --video-episodes 0 --out-dir $PAIRED/$1 --dataset "$DATA"
  done
  .venv/bin/python scripts/paired_eval.py $PAIRED/ddim/eval_info.json $PAIRED/ddpm/eval_info.json \
    --out $PAIRED/paired.json
fi

# The table: every learner's cpu_small preset, 45 min of training on each subset, the last
# checkpoint evaluated with the full Push protocol (30 contexts x 16 rollouts = 480 episodes).
.venv/bin/python scripts/learner_table.py --dataset "$DATA" --minutes 45 --protocol full \
  --workers 1 --learners bc_mlp bc_gmm bc_rnn bc_transformer bet diffusion diffusion_transformer

# Offline RL (issue 14), after the imitation learners, into the same table.md: each learner's
# cpu_small preset, 45 min on train (no failures), train_failed (train + mask failed) and
# better (no failures), each run evaluated after 1/3, 2/3 and all of its budget (full protocol
# each time), so the table shows whether success still rises.
.venv/bin/python scripts/learner_table.py --dataset "$DATA" --minutes 45 --protocol full \
  --workers 1 --learners iql cql td3_bc bcq --subsets train train_failed better
