"""The one training loop: logs, checkpoints, exact resume, determinism."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from demo_files import random_demos, write_demo_file
from polymimic.config.values import ConfigValueError, config_from_values
from polymimic.datasets.windows import WindowDataset
from polymimic.policies import train as train_module
from polymimic.policies.bc import BCConfig, BCPolicy
from polymimic.policies.checkpoint import load_checkpoint
from polymimic.policies.train import EpochBatchSampler, RunDirectoryError, TrainConfig, train
from polymimic.policies.training_state import saved_train_wall_s


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> WindowDataset:
    demos = random_demos()
    path = write_demo_file(
        tmp_path_factory.mktemp("data") / "demos.hdf5", demos,
        {"train": ["demo_0", "demo_1", "demo_2"]},
    )
    return WindowDataset(path, ["tip_pos", "block_red"], obs_horizon=2)


def make_policy(dataset: WindowDataset, init_seed: int = 0) -> BCPolicy:
    torch.manual_seed(init_seed)
    # dropout > 0 makes the loop's use of the torch RNG visible to the resume test
    config = BCConfig(obs_dim=6, action_dim=2, obs_horizon=2, hidden_dims=(32, 32), dropout=0.2)
    policy = BCPolicy(config)
    policy.set_normalization(dataset.stats())
    return policy


def config(**overrides: object) -> TrainConfig:
    values = {
        "num_steps": 20,
        "batch_size": 16,
        "log_every": 5,
        "save_every": 10,
        "progress_bar": False,
    }
    return TrainConfig(**{**values, **overrides})


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def weights(policy: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_twenty_steps_write_checkpoint_and_logs(dataset: WindowDataset, tmp_path: Path) -> None:
    policy = make_policy(dataset)
    metrics = train(policy, dataset, config(), tmp_path)
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"  # device="auto"
    assert metrics["step"] == 20 and metrics["device"] == expected_device
    assert np.isfinite(metrics["loss"])
    log = read_log(tmp_path)
    assert [line["step"] for line in log] == [5, 10, 15, 20]
    assert all(line["loss"] > 0 and line["lr"] == policy.config.lr for line in log)
    ckpt = tmp_path / "checkpoints" / "last"
    assert json.loads((ckpt / "config.json").read_text())["step"] == 20
    assert_same_weights(weights(load_checkpoint(ckpt)), weights(policy))
    assert not (tmp_path / "checkpoints" / "last.staging").exists()
    with pytest.raises(RunDirectoryError, match="already holds a checkpoint; continue it with resume"):
        train(make_policy(dataset), dataset, config(), tmp_path)


def test_resume_continues_exactly_where_it_stopped(dataset: WindowDataset, tmp_path: Path) -> None:
    straight = make_policy(dataset)
    train(straight, dataset, config(num_steps=30), tmp_path / "straight")

    interrupted = make_policy(dataset)
    train(interrupted, dataset, config(num_steps=20), tmp_path / "split")
    # A fresh process would build a fresh policy: everything must come from the checkpoint.
    resumed = make_policy(dataset, init_seed=123)
    metrics = train(resumed, dataset, config(num_steps=30, resume=True), tmp_path / "split")
    assert metrics["step"] == 30
    assert [line["step"] for line in read_log(tmp_path / "split")] == [5, 10, 15, 20, 25, 30]
    assert_same_weights(weights(resumed), weights(straight))
    straight_log, split_log = read_log(tmp_path / "straight"), read_log(tmp_path / "split")
    assert [line["loss"] for line in split_log] == [line["loss"] for line in straight_log]


def test_host_and_device_batches_train_identically(dataset: WindowDataset, tmp_path: Path) -> None:
    """The one-time device copy and the DataLoader give the same batches, so a run may
    switch between them on resume."""
    runs = {}
    for on_device in (True, False):
        policy = make_policy(dataset)
        train(policy, dataset, config(data_on_device=on_device, save_every=0), tmp_path / str(on_device))
        runs[on_device] = weights(policy)
    assert_same_weights(runs[True], runs[False])


def test_same_seed_same_weights_other_seed_differs(dataset: WindowDataset, tmp_path: Path) -> None:
    runs = {}
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        policy = make_policy(dataset)
        train(policy, dataset, config(seed=seed, save_every=0), tmp_path / name)
        runs[name] = weights(policy)
    assert_same_weights(runs["a"], runs["b"])
    assert not torch.equal(runs["a"]["mlp.0.weight"], runs["c"]["mlp.0.weight"])


def test_batch_sampler_restarts_mid_epoch_identically() -> None:
    full = EpochBatchSampler(num_items=50, batch_size=16, seed=1)
    batches = [b for _, b in zip(range(10), full, strict=False)]
    assert all(len(b) == 16 for b in batches)
    assert sorted(sum(batches[:3], [])) == sorted(
        set(sum(batches[:3], []))
    )  # no repeats in an epoch
    assert batches[:3] != batches[3:6]  # each epoch reshuffles
    later = EpochBatchSampler(num_items=50, batch_size=16, seed=1, start_step=4)
    assert [b for _, b in zip(range(6), later, strict=False)] == batches[4:]


class FakeClock:
    """A budget clock that advances ``tick`` seconds at every read."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_max_minutes_stops_cleanly_and_carries_over_a_resume(
    dataset: WindowDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop reads its budget clock once before the first step and once after each step,
    so with 10 s per read a 1-minute budget is spent after step 6 (60 s of training)."""
    monkeypatch.setattr(train_module, "_clock", FakeClock(10.0))
    evaluated: list[int] = []

    def evaluator(step: int, policy: torch.nn.Module) -> dict[str, float | None]:
        evaluated.append(step)
        return {"success_rate": 0.0}

    policy = make_policy(dataset)
    metrics = train(policy, dataset, config(max_minutes=1.0), tmp_path, evaluator=evaluator)
    assert metrics["step"] == 6 and metrics["stopped_by"] == "max_minutes"
    assert metrics["train_wall_s"] == pytest.approx(60.0)
    assert evaluated == [6]  # the budget's stop is the end of training: final evaluation
    # save_every=10 and num_steps=20, yet the stop step is saved, with its training time.
    ckpt = tmp_path / "checkpoints" / "last"
    assert json.loads((ckpt / "config.json").read_text())["step"] == 6
    assert saved_train_wall_s(ckpt) == pytest.approx(60.0)
    assert_same_weights(weights(load_checkpoint(ckpt)), weights(policy))
    log = read_log(tmp_path)
    losses = [line for line in log if "loss" in line]
    assert [line["step"] for line in losses] == [5, 6]
    assert [line["train_wall_s"] for line in losses] == pytest.approx([50.0, 60.0])

    # Resuming with the same budget does nothing: the budget is spent, nothing is rewritten.
    before = (ckpt / "training_state.json").read_bytes()
    again = train(make_policy(dataset), dataset, config(max_minutes=1.0, resume=True), tmp_path)
    assert again["step"] == 6 and again["stopped_by"] == "max_minutes"
    assert (ckpt / "training_state.json").read_bytes() == before
    assert len(read_log(tmp_path)) == len(log)

    # A 2-minute budget continues from 60 s: 6 more steps of 10 s.
    more = train(make_policy(dataset), dataset, config(max_minutes=2.0, resume=True), tmp_path)
    assert more["step"] == 12 and more["stopped_by"] == "max_minutes"
    assert more["train_wall_s"] == pytest.approx(120.0)
    # A budget that is not reached leaves num_steps in charge.
    done = train(make_policy(dataset), dataset, config(max_minutes=60.0, resume=True), tmp_path)
    assert done["step"] == 20 and done["stopped_by"] == "num_steps"
    assert done["train_wall_s"] == pytest.approx(200.0)


def test_max_minutes_stop_resumes_into_the_uninterrupted_run(
    dataset: WindowDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping on the budget is a clean checkpoint: resuming without it gives the same
    weights as a run that never stopped."""
    straight = make_policy(dataset)
    train(straight, dataset, config(), tmp_path / "straight")
    monkeypatch.setattr(train_module, "_clock", FakeClock(10.0))
    train(make_policy(dataset), dataset, config(max_minutes=0.5), tmp_path / "budget")  # 3 steps
    monkeypatch.setattr(train_module, "_clock", time.perf_counter)
    resumed = make_policy(dataset, init_seed=7)
    metrics = train(resumed, dataset, config(resume=True), tmp_path / "budget")
    assert metrics["step"] == 20 and metrics["stopped_by"] == "num_steps"
    assert_same_weights(weights(resumed), weights(straight))


def test_max_minutes_must_be_positive() -> None:
    with pytest.raises(ConfigValueError, match="max_minutes"):
        config_from_values(TrainConfig, {"max_minutes": 0.0}, where="train")


@pytest.fixture(scope="module")
def held_out_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[WindowDataset, WindowDataset]:
    """Training windows of demos 0-2 and held-out windows of demo 3 of one file."""
    path = write_demo_file(
        tmp_path_factory.mktemp("held_out") / "demos.hdf5", random_demos(),
        {"train": ["demo_0", "demo_1", "demo_2"], "valid": ["demo_3"]},
    )
    keys = ["tip_pos", "block_red"]
    return WindowDataset(path, keys, obs_horizon=2), WindowDataset(path, keys, "valid", obs_horizon=2)


def test_held_out_loss_is_logged_at_evaluations_and_is_the_mean_over_the_split(
    held_out_pair: tuple[WindowDataset, WindowDataset], tmp_path: Path
) -> None:
    """``valid/loss`` appears at each eval_every step and the last, and equals the policy's own
    loss on the whole held-out split (20 items, fewer than one cap); the training loss is not."""
    from polymimic.policies.held_out import held_out_loss

    train_set, held_out = held_out_pair
    policy = make_policy(train_set)
    metrics = train(policy, train_set, config(eval_every=8), tmp_path / "run", held_out=held_out)
    records = [r for r in read_log(tmp_path / "run") if "valid/loss" in r]
    assert [r["step"] for r in records] == [8, 16, 20]
    assert metrics["valid/loss"] == records[-1]["valid/loss"]
    policy.eval()
    with torch.no_grad():
        batch = held_out.get_batch(list(range(len(held_out))))
        expected = float(policy.compute_loss(batch, "policy")["loss"])
    assert metrics["valid/loss"] == pytest.approx(expected, rel=1e-5)
    assert held_out_loss(policy, held_out, ["policy"], 7, torch.device("cpu"))["loss"] == (
        pytest.approx(expected, rel=1e-5)
    )  # batching does not change the mean
    assert abs(metrics["valid/loss"] - metrics["loss"]) > 1e-3


def test_scoring_a_held_out_split_does_not_change_training(tmp_path: Path) -> None:
    """Diffusion's loss draws noise and timesteps from the torch RNG even in eval mode:
    scoring the split between steps must not shift the training stream (it runs in a forked,
    seeded RNG), so the weights match a run without a split bit for bit, and two scorings of
    the same weights agree exactly."""
    from polymimic.policies.base import policy_class
    from polymimic.policies.held_out import held_out_loss

    path = write_demo_file(tmp_path / "demos.hdf5", random_demos(),
                           {"train": ["demo_0", "demo_1", "demo_2"], "valid": ["demo_3"]})  # fmt: skip
    cls = policy_class("diffusion")

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        values = {"down_dims": [8, 16], "kernel_size": 3, "n_groups": 4,
                  "diffusion_step_embed_dim": 8, "obs_keys": ["tip_pos", "block_red"],
                  "obs_dim": 6, "action_dim": 2}  # fmt: skip
        return cls(config_from_values(cls.config_class, values))

    plain, scored = build(), build()
    keys = ["tip_pos", "block_red"]
    train_set = WindowDataset(path, keys, spec=plain.batch_spec())
    held_out = WindowDataset(path, keys, "valid", spec=plain.batch_spec())
    for policy in (plain, scored):
        policy.set_normalization(train_set.stats())
    train(plain, train_set, config(), tmp_path / "plain")
    train(scored, train_set, config(eval_every=3), tmp_path / "scored", held_out=held_out)
    assert_same_weights(weights(plain), weights(scored))
    device = torch.device("cpu")
    first = held_out_loss(scored, held_out, ["policy"], 8, device)
    assert held_out_loss(scored, held_out, ["policy"], 8, device) == first
