"""Tiny end-to-end runs of every command, as a user types them (cleanrl-style)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import imageio.v3 as iio

from polymimic.eval.protocol import SPLIT_SEED_START

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def polymimic(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "polymimic.cli.main", *args],
        capture_output=True, text=True, env=ENV, timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"polymimic {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_generate_train_eval(tmp_path: Path) -> None:
    data = tmp_path / "push.hdf5"
    out = polymimic("data", "generate", "--out", str(data), "--demos-per-operator", "1")
    assert "6 demos" in out.stdout
    with h5py.File(data, "r") as f:
        assert sorted(f["data"].keys()) == [f"demo_{i}" for i in range(6)]
        assert {f"operator_op{i}" for i in range(1, 7)} <= set(f["mask"].keys())
    info = json.loads(polymimic("data", "info", str(data)).stdout)
    assert info["num_demos"] == 6 and info["action_dim"] == 2

    run_dir = tmp_path / "run"
    polymimic("train", f"dataset={data}", "train.num_steps=20", f"hydra.run.dir={run_dir}",
              "train.progress_bar=false")
    checkpoint = run_dir / "checkpoints" / "last"
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "config.json").is_file()

    eval_dir = tmp_path / "eval"
    eval_args = ("eval", "--checkpoint", str(checkpoint), "--protocol", "cpu", "--contexts", "1",
                 "--out-dir", str(eval_dir))
    out = polymimic(*eval_args, "--rollouts", "2", "--video-episodes", "1", "--dataset", str(data))
    assert "success rate" in out.stdout and "behaviour entropy" in out.stdout
    assert "protocol custom" in out.stdout and "1 contexts x 2 rollouts" in out.stdout
    eval_info = json.loads((eval_dir / "eval_info.json").read_text())
    assert eval_info["env"]["id"] == "polymimic/Push-v1"
    assert eval_info["protocol"]["name"] == "custom" and eval_info["protocol"]["split"] == "test"
    start = SPLIT_SEED_START["test"]
    assert [(e["context"], e["rollout"], e["seed"]) for e in eval_info["per_episode"]] == [
        (0, 0, start), (0, 1, start)
    ]
    assert eval_info["checkpoint"]["path"] == str(checkpoint)
    assert eval_info["reference"]["source"] == str(data)
    assert eval_info["video"] == str(eval_dir / "rollouts.mp4") and eval_info["video_error"] is None
    first_length = eval_info["per_episode"][0]["length"]
    reader = iio.imiter(eval_dir / "rollouts.mp4")
    assert sum(1 for _ in reader) == first_length + 1  # reset frame + one per step

    # An existing eval_info.json is not replaced without --overwrite ...
    before = (eval_dir / "eval_info.json").read_bytes()
    refused = polymimic(*eval_args, "--rollouts", "1", "--video-episodes", "0", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "--overwrite" in refused.stderr
    assert (eval_dir / "eval_info.json").read_bytes() == before
    # ... and is with it.
    polymimic(*eval_args, "--rollouts", "1", "--video-episodes", "0", "--overwrite")
    replaced = json.loads((eval_dir / "eval_info.json").read_text())
    assert len(replaced["per_episode"]) == 1 and replaced["video"] is None
    assert replaced["per_episode"][0] == eval_info["per_episode"][0]  # same context, rollout 0


def test_user_errors_are_one_clear_line(tmp_path: Path) -> None:
    missing = polymimic("data", "info", str(tmp_path / "nope.hdf5"), check=False)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    unknown = polymimic("data", "generate", "--dataset", "polymimic/nope-v0", "--out",
                        str(tmp_path / "x.hdf5"), check=False)
    assert unknown.returncode == 1 and "known datasets" in unknown.stderr
    bad_command = polymimic("fly", check=False)
    assert bad_command.returncode == 1 and "unknown command" in bad_command.stderr
    no_data = polymimic("train", f"dataset={tmp_path / 'nope.hdf5'}",
                        f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert no_data.returncode == 1 and "does not exist" in no_data.stderr
    assert "Traceback" not in no_data.stderr
    no_checkpoint = polymimic("eval", "--checkpoint", str(tmp_path / "none"), check=False)
    assert no_checkpoint.returncode == 1 and "Traceback" not in no_checkpoint.stderr
