"""``polymimic train`` end to end through Hydra, in a subprocess like a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from demo_files import random_demos, write_demo_file
from polymimic.eval.rollout import TRAIN_EVAL_SEED_START
from polymimic.policies.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def h5_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demos = random_demos()
    return write_demo_file(
        tmp_path_factory.mktemp("data") / "demos.hdf5", demos,
        {"train": ["demo_0", "demo_1", "demo_2"]},
    )


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = f"from polymimic.cli.train import main; main({args!r})"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def common(h5_path: Path) -> list[str]:
    return [
        f"dataset={h5_path}",
        "train.num_steps=10",
        "train.batch_size=8",
        "policy.hidden_dims=[16,16]",
        "train.progress_bar=false",
    ]


def test_single_run_writes_checkpoint_and_resolved_config(h5_path: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_cli([*common(h5_path), f"hydra.run.dir={run_dir}", "policy.obs_horizon=2"], cwd=tmp_path)
    resolved = yaml.safe_load((run_dir / "resolved_config.yaml").read_text())
    assert resolved == json.loads((run_dir / "train_config.json").read_text())
    assert resolved["obs_keys"] == ["block_red", "tip_pos"]  # empty obs_keys filled from the file
    assert resolved["policy"]["type"] == "bc_mlp" and resolved["policy"]["obs_dim"] == 6
    assert (
        resolved["train"]["num_steps"] == 10 and resolved["train"]["seed"] == resolved["seed"] == 0
    )
    assert resolved["train"]["device"] == "auto"
    policy = load_checkpoint(run_dir / "checkpoints" / "last")
    assert policy.config.obs_horizon == 2 and policy.config.hidden_dims == (16, 16)
    assert policy.predict_action(np.zeros((3, 6), dtype=np.float32)).shape == (3, 2)
    document = json.loads((run_dir / "checkpoints" / "last" / "config.json").read_text())
    assert document["step"] == 10 and document["env_args"]["env_name"] == "polymimic/Push-v1"
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 10
    assert not (tmp_path / "outputs").exists()  # hydra.run.dir was honoured


def test_multirun_sweeps_into_separate_run_directories(h5_path: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    run_cli(["--multirun", *common(h5_path), "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    run_dirs = sorted(
        p for p in sweep.iterdir() if p.is_dir() and (p / "train_config.json").exists()
    )
    assert [p.name for p in run_dirs] == ["0", "1"]
    seeds = [json.loads((p / "train_config.json").read_text())["train"]["seed"] for p in run_dirs]
    assert seeds == [0, 1]
    first, second = (load_checkpoint(p / "checkpoints" / "last").mlp[0].weight for p in run_dirs)
    assert not torch.equal(first, second)  # the seed reached weight initialisation


def test_eval_episodes_run_rollouts_during_and_after_training(
    tiny_push_dataset: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_cli(
        [f"dataset={tiny_push_dataset}", "train.num_steps=6", "train.batch_size=8",
         "policy.hidden_dims=[16]", "train.progress_bar=false", "eval_episodes=1",
         "train.eval_every=3", "train.log_every=3", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
    )  # fmt: skip
    for step in (3, 6):
        info = json.loads((run_dir / "eval" / f"step_{step}" / "eval_info.json").read_text())
        assert [e["seed"] for e in info["per_episode"]] == [TRAIN_EVAL_SEED_START]
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    evals = [line for line in log if "eval/success_rate" in line]
    assert [line["step"] for line in evals] == [3, 6]
    assert all(0.0 <= line["eval/success_rate"] <= 1.0 for line in evals)
    metrics = json.loads((run_dir / "train_metrics.json").read_text())
    assert metrics["eval/success_rate"] == evals[-1]["eval/success_rate"]


def test_presets_and_plain_learners_train_and_are_recorded(h5_path: Path, tmp_path: Path) -> None:
    """policy=<learner> trains its dataclass defaults, policy=<learner>/<preset> its named
    preset (later policy.* overrides still win); the preset is in the run's record."""
    sweep = tmp_path / "sweep"
    run_cli(
        ["--multirun", f"dataset={h5_path}", "train.num_steps=3", "train.batch_size=8",
         "train.progress_bar=false", f"hydra.sweep.dir={sweep}",
         "policy=bc_gmm,bc_rnn,bc_transformer/cpu_small,bc_rnn/reference,diffusion/cpu_small,"
         "diffusion_transformer/cpu_small,bet/cpu_small"],
        cwd=tmp_path,
    )  # fmt: skip
    runs = {}
    for run_dir in sorted(p for p in sweep.iterdir() if p.is_dir()):
        resolved = yaml.safe_load((run_dir / "resolved_config.yaml").read_text())
        document = json.loads((run_dir / "checkpoints" / "last" / "config.json").read_text())
        policy = resolved["policy"]
        assert document["policy_preset"] == policy["preset"]
        assert document["config"] == {k: v for k, v in policy.items() if k not in ("type", "preset")}
        assert load_checkpoint(run_dir / "checkpoints" / "last").name == policy["type"]
        runs[(policy["type"], policy["preset"])] = policy
    assert set(runs) == {("bc_gmm", "default"), ("bc_rnn", "default"),
                         ("bc_transformer", "cpu_small"), ("bc_rnn", "reference"),
                         ("diffusion", "cpu_small"), ("diffusion_transformer", "cpu_small"),
                         ("bet", "cpu_small")}  # fmt: skip
    assert runs[("bc_gmm", "default")]["gmm_modes"] == 5  # the dataclass defaults
    assert runs[("bc_rnn", "default")]["gmm_modes"] == 0 and runs[("bc_rnn", "default")]["lr"] == 1e-3
    assert runs[("bc_rnn", "reference")]["gmm_modes"] == 5 and runs[("bc_rnn", "reference")]["lr"] == 1e-4
    small = runs[("bc_transformer", "cpu_small")]
    assert (small["embed_dim"], small["num_layers"], small["num_heads"]) == (128, 2, 4)
    # Tuple fields of the new learners' presets survive Hydra and the checkpoint.
    assert runs[("diffusion", "cpu_small")]["down_dims"] == [32, 64, 128]
    assert runs[("diffusion_transformer", "cpu_small")]["adam_betas"] == [0.9, 0.95]
    assert runs[("bet", "cpu_small")]["n_bins"] == 64


def test_a_preset_override_wins_and_a_hand_set_preset_is_refused(
    h5_path: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_cli([*common(h5_path), "policy=bc_gmm/reference", "policy.hidden_dims=[8]",
             f"hydra.run.dir={run_dir}"], cwd=tmp_path)  # fmt: skip
    policy = yaml.safe_load((run_dir / "resolved_config.yaml").read_text())["policy"]
    assert policy["preset"] == "reference" and policy["hidden_dims"] == [8]  # the override won
    assert policy["lr"] == 1e-4  # the rest is the preset's
    # A label that does not say where the values came from is refused before any file.
    args = [*common(h5_path), "policy=bc_gmm", "policy.preset=reference",
            f"hydra.run.dir={tmp_path / 'mislabelled'}"]  # fmt: skip
    code = f"from polymimic.cli.train import main; main({args!r})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "policy.preset='reference' does not match the composed config" in result.stderr
    assert not (tmp_path / "mislabelled" / "checkpoints").exists()


def test_a_multi_optimiser_learner_reports_its_own_losses(h5_path: Path, tmp_path: Path) -> None:
    """The last line names every loss term the metrics hold (``value/loss``,
    ``critic/loss``, ...), with its value; never a loss the run did not log."""
    run_dir = tmp_path / "run"
    result = run_cli([*common(h5_path), "policy=iql", "policy.use_failed=false",
                      f"hydra.run.dir={run_dir}"], cwd=tmp_path)  # fmt: skip
    line = result.stdout.strip().splitlines()[-1]
    metrics = json.loads((run_dir / "train_metrics.json").read_text())
    names = [k for k in metrics if k.endswith("loss")]
    assert {"value/loss", "critic/loss", "actor/loss"} <= set(names)
    assert line.startswith("trained to step 10 (") and "nan" not in line
    for name in names:
        assert f"{name} {metrics[name]:.4g}" in line


def test_a_held_out_mask_logs_its_loss_and_the_training_mask_is_refused_as_one(
    tmp_path: Path,
) -> None:
    """valid_filter_key=valid logs valid/loss at each evaluation; the training mask itself,
    or a mask the file lacks, is refused with one line naming it, before anything is written."""
    path = write_demo_file(tmp_path / "demos.hdf5", random_demos(),
                           {"train": ["demo_0", "demo_1", "demo_2"], "valid": ["demo_3"]})  # fmt: skip
    run_dir = tmp_path / "run"
    run_cli([f"dataset={path}", "train.num_steps=10", "train.batch_size=8", "train.eval_every=5",
             "policy.hidden_dims=[16,16]", "train.progress_bar=false", "valid_filter_key=valid",
             f"hydra.run.dir={run_dir}"], cwd=tmp_path)  # fmt: skip
    steps = [json.loads(line).get("step") for line in (run_dir / "train_log.jsonl").open()
             if "valid/loss" in line]  # fmt: skip
    assert steps == [5, 10]
    assert "valid/loss" in json.loads((run_dir / "train_metrics.json").read_text())
    for key, words in (("train", "is the training mask"), ("nope", "nope")):
        bad_dir = tmp_path / f"bad_{key}"
        code = ("from polymimic.cli.train import main; main(["
                f"'dataset={path}', 'valid_filter_key={key}', 'hydra.run.dir={bad_dir}'])")  # fmt: skip
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        assert result.returncode != 0 and words in result.stderr
        assert result.stderr.count("error:") == 1
        assert not bad_dir.exists() or not any(bad_dir.iterdir())  # Hydra makes it; we write nothing
