"""BC-RNN: it uses the observation history (a known-answer test MLP BC cannot pass), its
batches are sequences with aligned actions, and inference runs the LSTM over the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from demo_files import write_demo_file
from polymimic.datasets.windows import WindowDataset
from polymimic.policies.base import Policy
from polymimic.policies.bc import BCConfig, BCPolicy
from polymimic.policies.bc_rnn import BCRNNConfig, BCRNNPolicy
from polymimic.policies.train import TrainConfig, train

LAG = 2  # the action repeats the observation seen LAG steps earlier
STEPS = 50


def lagged(x: np.ndarray) -> np.ndarray:
    """a_t = x_{t-LAG}; before that, x_0 (what the dataset's start padding shows)."""
    return x[np.maximum(np.arange(len(x)) - LAG, 0)]


@pytest.fixture(scope="module")
def lag_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    demos = {}
    for i in range(20):
        x = rng.normal(size=(STEPS, 1))
        demos[f"demo_{i}"] = {"obs/x": x, "actions": lagged(x)}
    path = tmp_path_factory.mktemp("lag") / "lag.hdf5"
    return write_demo_file(path, demos, {"train": list(demos)})


def fit(policy: Policy, path: Path, run_dir: Path, steps: int = 400) -> Policy:
    dataset = WindowDataset(path, ("x",), spec=policy.batch_spec())
    policy.set_normalization(dataset.stats())
    cfg = TrainConfig(num_steps=steps, batch_size=64, log_every=steps, save_every=0,
                      device="cpu", progress_bar=False)  # fmt: skip
    train(policy, dataset, cfg, run_dir)
    return policy


def rollout_error(policy: Policy) -> float:
    """Mean squared error of the actions on 8 new episodes, stepping predict_action, as a
    fraction of the demonstrated actions' variance (1: no better than their mean)."""
    x = np.random.default_rng(1).normal(size=(8, STEPS, 1)).astype(np.float32)
    policy.reset()
    actions = np.stack([policy.predict_action(x[:, t]) for t in range(STEPS)], axis=1)
    wanted = np.stack([lagged(episode) for episode in x])
    return float(np.mean((actions - wanted)[:, LAG:] ** 2) / np.var(wanted[:, LAG:]))


def test_bc_rnn_uses_history_bc_mlp_cannot(lag_file: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    rnn = BCRNNPolicy(BCRNNConfig(obs_keys=("x",), obs_dim=1, action_dim=1, obs_horizon=4,
                                  rnn_hidden_dim=32, rnn_num_layers=1, lr=3e-3))  # fmt: skip
    torch.manual_seed(0)
    mlp = BCPolicy(BCConfig(obs_keys=("x",), obs_dim=1, action_dim=1, obs_horizon=1,
                            hidden_dims=(32, 32), lr=3e-3))  # fmt: skip
    rnn_error = rollout_error(fit(rnn, lag_file, tmp_path / "rnn"))
    mlp_error = rollout_error(fit(mlp, lag_file, tmp_path / "mlp"))
    assert rnn_error < 0.1, rnn_error  # it recalls x_{t-2} from its window
    assert mlp_error > 0.9, mlp_error  # x_t says nothing about x_{t-2}: 1 is its floor


def test_batches_are_sequences_with_aligned_actions(lag_file: Path) -> None:
    policy = BCRNNPolicy(BCRNNConfig(obs_dim=1, action_dim=1, obs_horizon=3, rnn_hidden_dim=4))
    assert policy.batch_spec().offsets == {"obs": (-2, -1, 0), "actions": (-2, -1, 0)}
    dataset = WindowDataset(lag_file, ("x",), spec=policy.batch_spec())
    batch = dataset.get_batch([10])
    # Step 10's sequence: obs 8, 9, 10 and actions 8, 9, 10, i.e. x 6, 7, 8.
    torch.testing.assert_close(batch["actions"][0], torch.from_numpy(dataset.obs[6:9]))
    with pytest.raises(ValueError, match="action_horizon and n_action_steps must be 1"):
        BCRNNPolicy(BCRNNConfig(obs_dim=1, action_dim=1, action_horizon=2))


def test_each_action_runs_the_lstm_over_the_last_window() -> None:
    torch.manual_seed(0)
    policy = BCRNNPolicy(BCRNNConfig(obs_dim=2, action_dim=1, obs_horizon=3, rnn_hidden_dim=8))
    obs = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    policy.reset()
    got = [policy.predict_action(obs[t : t + 1])[0] for t in range(5)]
    with torch.no_grad():
        for t in range(5):
            window = obs[[max(t - 2, 0), max(t - 1, 0), t]]  # a fresh episode repeats obs 0
            expected = policy.unnormalize_action(policy(torch.from_numpy(window)[None])[:, -1])
            np.testing.assert_allclose(got[t], expected[0].numpy(), rtol=1e-5, atol=1e-6)
    # Not a carried hidden state: the window's first observation is forgotten after 3 steps.
    changed = obs.copy()
    changed[0] += 5.0
    policy.reset()
    again = [policy.predict_action(changed[t : t + 1])[0] for t in range(5)]
    assert not np.allclose(again[2], got[2]) and np.array_equal(again[3], got[3])
