"""``polymimic eval --sampler/--inference-steps``: a diffusion checkpoint evaluated with another
sampler (the DDIM-vs-DDPM paired rollouts of results/learners use it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}


def polymimic(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "polymimic.cli.main", *args],
                            capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"polymimic {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def train(dataset: Path, run_dir: Path, *policy: str) -> Path:
    polymimic("train", f"dataset={dataset}", *policy, "train.num_steps=4", "train.batch_size=8",
              "train.progress_bar=false", f"hydra.run.dir={run_dir}")  # fmt: skip
    return run_dir / "checkpoints" / "last"


@pytest.fixture(scope="module")
def diffusion_checkpoint(tiny_push_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(tiny_push_dataset, tmp_path_factory.mktemp("diffusion"), "policy=diffusion",
                 "policy.down_dims=[8,16]", "policy.n_groups=4",
                 "policy.diffusion_step_embed_dim=8")  # fmt: skip


def evaluate(checkpoint: Path, out: Path, *extra: str, check: bool = True):
    return polymimic("eval", "--checkpoint", str(checkpoint), "--protocol", "cpu", "--contexts",
                     "1", "--rollouts", "1", "--video-episodes", "0", "--out-dir", str(out),
                     *extra, check=check)  # fmt: skip


def test_the_sampler_is_switched_and_recorded(diffusion_checkpoint: Path, tmp_path: Path) -> None:
    evaluate(diffusion_checkpoint, tmp_path / "ddpm", "--sampler", "ddpm", "--inference-steps", "3")
    recorded = json.loads((tmp_path / "ddpm" / "eval_info.json").read_text())["policy"]["config"]
    assert (recorded["sampler"], recorded["num_inference_steps"]) == ("ddpm", 3)
    # Without the options the checkpoint's own sampler (DDIM-10) is what runs.
    evaluate(diffusion_checkpoint, tmp_path / "own")
    own = json.loads((tmp_path / "own" / "eval_info.json").read_text())["policy"]["config"]
    assert (own["sampler"], own["num_inference_steps"]) == ("ddim", 10)


def test_bad_sampler_requests_are_one_clear_line(
    diffusion_checkpoint: Path, tiny_push_dataset: Path, tmp_path: Path
) -> None:
    too_many = evaluate(diffusion_checkpoint, tmp_path / "a", "--inference-steps", "101",
                        check=False)  # fmt: skip
    assert too_many.returncode == 1 and "num_train_timesteps (100)" in too_many.stderr
    assert "Traceback" not in too_many.stderr
    mlp = train(tiny_push_dataset, tmp_path / "mlp", "policy=bc_mlp", "policy.hidden_dims=[8]")
    refused = evaluate(mlp, tmp_path / "b", "--sampler", "ddpm", check=False)
    assert refused.returncode == 1 and "apply to diffusion learners" in refused.stderr
    assert "bc_mlp" in refused.stderr and not (tmp_path / "b" / "eval_info.json").exists()
