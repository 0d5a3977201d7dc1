#!/usr/bin/env bash
# The learners on a CUDA machine: train BC-MLP on cuda (bf16 autocast; dataset copied to the
# GPU, and through a host DataLoader) and on the same machine's CPU, compare speed, resume a
# cuda run, evaluate its checkpoint in a CPU-only process, and run the learner tests.
#
#   OUT=gpu_out bash scripts/gpu_check.sh      (polymimic importable; MuJoCo EGL or osmesa)
#   GPU=cpu STEPS=200 bash scripts/gpu_check.sh   (a dry run of the script without a GPU)
#
# Everything it prints is also written under $OUT (summary.txt, logs).
set -euo pipefail
OUT=${OUT:-gpu_check_out}
WORK=${WORK:-/tmp/polymimic_gpu_check}
STEPS=${STEPS:-3000}
GPU=${GPU:-cuda}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 MUJOCO_GL=${MUJOCO_GL:-egl}
PY=${PY:-python3}
cli() { "$PY" -m polymimic.cli.main "$@"; }

"$PY" - <<'EOF' | tee "$OUT/summary.txt"
import torch, mujoco, numba
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-",
      "| mujoco", mujoco.__version__, "| numba", numba.__version__)
EOF

cli data generate --out "$WORK/push.hdf5" --demos-per-operator 20 --workers 8 --no-progress \
    --overwrite 2>&1 | tail -3 | tee -a "$OUT/summary.txt"

# cuda with the dataset copied to the GPU once (default), cuda with a host DataLoader, cpu.
for run in cuda:true cuda_loader:false cpu:true; do
  name=${run%%:*}; device=${name%%_*}; on_device=${run##*:}
  [ "$device" = cuda ] && device=$GPU
  rm -rf "$WORK/train_$name"
  cli train dataset="$WORK/push.hdf5" policy=bc_mlp train.num_steps="$STEPS" \
      train.device="$device" train.data_on_device="$on_device" train.progress_bar=false \
      train.save_every=1000 hydra.run.dir="$WORK/train_$name" 2>&1 | tail -1 | tee -a "$OUT/summary.txt"
  cp "$WORK/train_$name/train_log.jsonl" "$OUT/train_log_$name.jsonl"
done

# Resume: extend the cuda run by 1000 steps from its last checkpoint.
cli train dataset="$WORK/push.hdf5" policy=bc_mlp train.num_steps=$((STEPS + 1000)) \
    train.device="$GPU" train.progress_bar=false train.resume=true \
    hydra.run.dir="$WORK/train_cuda" 2>&1 | tail -1 | tee -a "$OUT/summary.txt"

"$PY" - "$WORK" <<'EOF' | tee -a "$OUT/summary.txt"
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
for device in ("cuda", "cuda_loader", "cpu"):
    rows = [json.loads(line) for line in (work / f"train_{device}" / "train_log.jsonl").open()]
    speeds = sorted(row["steps_per_s"] for row in rows[1:])  # the first interval warms up
    print(f"{device}: logged steps {[row['step'] for row in rows][-3:]}, final loss "
          f"{rows[-1]['loss']:.4f}, median steps/s {speeds[len(speeds) // 2]:.1f}")
EOF

# The cuda checkpoint evaluated on the CPU (evaluation never needs a GPU), and the cpu one.
for device in cuda cpu; do
  CUDA_VISIBLE_DEVICES= cli eval --checkpoint "$WORK/train_$device/checkpoints/last" \
      --episodes 30 --video-episodes 0 --out-dir "$WORK/eval_$device" \
      --dataset "$WORK/push.hdf5" 2>&1 | tail -2 | tee -a "$OUT/summary.txt"
  cp "$WORK/eval_$device/eval_info.json" "$OUT/eval_info_$device.json"
done

"$PY" -m pytest -q -rf -p no:cacheprovider tests/policies tests/eval tests/datasets/test_windows.py \
    tests/test_io.py > "$OUT/pytest.txt" 2>&1 || true
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest.txt" | tail -8 | tee -a "$OUT/summary.txt"
