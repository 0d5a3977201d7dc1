"""BCPolicy shapes, rollout history, overfitting, and the safetensors checkpoint round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import polymimic.policies  # noqa: F401  (registers bc_mlp)
from polymimic.datasets.windows import WindowDataset
from polymimic.policies.base import policy_class
from polymimic.policies.bc import BCConfig, BCPolicy
from polymimic.policies.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from polymimic.policies.train import TrainConfig, train

# A fixed linear map from the 6-D observation to the 2-D action: a perfect fit exists.
MAP = np.array([[1.0, -2.0, 0.5, 0.0, 3.0, -1.0], [0.0, 1.0, 1.0, -1.5, 0.5, 2.0]])


@pytest.fixture
def h5_path(tmp_path: Path, write_demo_file) -> Path:
    t = np.arange(20, dtype=np.float64)
    demos = {}
    for i in range(4):
        phase = t / 3.0 + i
        tip = np.stack([np.sin(phase), np.cos(phase)], axis=-1)
        block = np.stack(
            [np.sin(2 * phase), phase / 10, np.cos(3 * phase), 0.1 * i + 0 * t], axis=-1
        )
        obs = np.concatenate([tip, block], axis=-1)
        demos[f"demo_{i}"] = {"obs/tip_pos": tip, "obs/block_red": block, "actions": obs @ MAP.T}
    return write_demo_file(tmp_path / "linear.hdf5", demos, {"train": list(demos)})


def make_policy(dataset: WindowDataset, **overrides: object) -> BCPolicy:
    torch.manual_seed(0)
    obs_horizon = len(dataset.spec.offsets["obs"])
    config = BCConfig(
        obs_keys=dataset.obs_keys, obs_dim=dataset.obs_dim, action_dim=dataset.action_dim,
        obs_horizon=obs_horizon, hidden_dims=(64, 64), **overrides,
    )  # fmt: skip
    policy = BCPolicy(config)
    policy.set_normalization(dataset.stats())
    return policy


def full_loss(policy: BCPolicy, dataset: WindowDataset) -> float:
    with torch.no_grad():
        device = next(policy.parameters()).device  # train() moves it to cuda when there is one
        batch = {k: v.to(device) for k, v in dataset.get_batch(np.arange(len(dataset))).items()}
        return float(policy.compute_loss(batch, "main")["loss"])


def test_registered_and_shapes(h5_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"], obs_horizon=2, action_horizon=3)
    policy = make_policy(ds)
    assert policy_class("bc_mlp") is BCPolicy
    batch = ds.get_batch(np.arange(5))
    assert policy(batch["obs"]).shape == (5, 2)
    loss = policy.compute_loss(batch, "main")["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    action = policy.predict_action(ds.obs[:3])
    assert action.shape == (3, 2) and action.dtype == np.float32
    with pytest.raises(ValueError, match=r"expected observations \(B, 6\)"):
        policy.predict_action(np.zeros((1, 5)))


def test_predict_action_keeps_an_obs_history(h5_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"], obs_horizon=2)
    policy = make_policy(ds, dropout=0.5).train()  # predict_action must still be deterministic
    o0, o1, o2 = ds.obs[0], ds.obs[1], ds.obs[2]

    def expected(window: list[np.ndarray]) -> np.ndarray:
        policy.eval()
        with torch.no_grad():
            out = policy.unnormalize_action(policy(torch.from_numpy(np.stack(window))[None]))[0]
        policy.train()
        return out.numpy()

    def act(o: np.ndarray) -> np.ndarray:
        return policy.predict_action(o[None])[0]

    policy.reset()
    np.testing.assert_allclose(act(o0), expected([o0, o0]), rtol=1e-6)
    np.testing.assert_allclose(act(o1), expected([o0, o1]), rtol=1e-6)
    np.testing.assert_allclose(act(o2), expected([o1, o2]), rtol=1e-6)
    assert policy.training  # the caller's mode is left alone
    policy.reset()
    np.testing.assert_allclose(act(o2), expected([o2, o2]), rtol=1e-6)


def test_bc_overfits_a_tiny_deterministic_dataset(h5_path: Path, tmp_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"])
    policy = make_policy(ds, lr=3e-3, weight_decay=0.0)
    before = full_loss(policy, ds)
    cfg = TrainConfig(num_steps=200, batch_size=32, log_every=50, save_every=0, progress_bar=False)
    train(policy, ds, cfg, tmp_path / "run")
    after = full_loss(policy, ds)
    assert after < before / 10, (before, after)


def test_checkpoint_round_trip_gives_identical_actions(h5_path: Path, tmp_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"], obs_horizon=2)
    policy = make_policy(ds, activation="gelu").eval()
    save_checkpoint(policy, tmp_path / "ckpt", extra={"step": 7})
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert isinstance(loaded, BCPolicy) and not loaded.training
    assert loaded.config == policy.config and isinstance(loaded.config.hidden_dims, tuple)
    torch.testing.assert_close(
        loaded.obs_normalizer.scale, policy.obs_normalizer.scale, rtol=0, atol=0
    )
    policy.reset()
    loaded.reset()
    for t in range(5):
        np.testing.assert_array_equal(
            loaded.predict_action(ds.obs[t : t + 2]), policy.predict_action(ds.obs[t : t + 2])
        )
    document = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert (
        document["policy_type"] == "bc_mlp"
        and document["format_version"] == 2
        and document["step"] == 7
    )
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


def test_load_refuses_a_pickle_only_directory(h5_path: Path, tmp_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"])
    directory = tmp_path / "pickled"
    directory.mkdir()
    torch.save(make_policy(ds).state_dict(), directory / "model.pt")
    with pytest.raises(
        CheckpointError,
        match=r"missing model\.safetensors, config\.json \(found: model\.pt\).*never loaded",
    ):
        load_checkpoint(directory)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "absent")


def edit_config(directory: Path, **changes: object) -> None:
    document = json.loads((directory / "config.json").read_text())
    for key, value in changes.items():
        if key in document["config"]:
            document["config"][key] = value
        else:
            document[key] = value
    (directory / "config.json").write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"policy_type": "bc_nope"},
            r"unknown policy type 'bc_nope'; known policy types: .*bc_mlp",
        ),
        ({"format_version": 1}, r"format_version 1; this polymimic reads version 2"),
        ({"hidden_dims": [64, 32]}, r"tensors do not match a 'bc_mlp' policy"),
        ({"action_dim": 3}, r"tensors do not match a 'bc_mlp' policy"),
    ],
)
def test_load_rejects_inconsistent_checkpoints(
    h5_path: Path, tmp_path: Path, changes: dict, message: str
) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"])
    save_checkpoint(make_policy(ds), tmp_path / "ckpt")
    edit_config(tmp_path / "ckpt", **changes)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "ckpt")
