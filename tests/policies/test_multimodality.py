"""Known-answer multimodality test (issue 17): two states; in state A the demonstrated
actions are -1 and +1 with equal probability, in state B they are all +0.5.

A multimodal learner puts 30-70 % of its samples within 0.2 of each mode in A and >= 90 %
within 0.2 of +0.5 in B; MSE behaviour cloning predicts the mean, near 0, in A. The data is a
real HDF5 file and training runs through the one training loop. Stochastic learners join by
adding an entry to ``MULTIMODAL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import polymimic.policies  # noqa: F401  (registers the built-in learners)
from demo_files import write_demo_file
from polymimic.config.values import config_from_values
from polymimic.datasets.windows import WindowDataset
from polymimic.policies.base import Policy, policy_class
from polymimic.policies.train import TrainConfig, train

STATE_A, STATE_B = 0.0, 1.0
SAMPLES = 400  # per state; a 30-70 % band is > 8 standard errors wide at 50 %

# learner id -> (registered name, config values, training steps). Small nets, few steps.
# gmm_min_std 0.05 (normalised units) instead of robomimic's 1e-4: these actions are exact
# repeated values, on which a mixture's likelihood grows without bound as a std shrinks to its
# floor; with a 1e-4 floor the tiny nets at this learning rate lost a mode on 1 of 3 seeds
# (measured), with 0.05 none did. Sampling is the default low-noise evaluation.
MULTIMODAL: dict[str, tuple[str, dict[str, Any], int]] = {
    "bc_gmm": ("bc_gmm", {"hidden_dims": [32, 32], "gmm_modes": 5, "gmm_min_std": 0.05,
                          "lr": 3e-3}, 300),  # fmt: skip
    "bc_rnn_gmm": ("bc_rnn", {"rnn_hidden_dim": 32, "rnn_num_layers": 1, "obs_horizon": 2,
                              "gmm_modes": 5, "gmm_min_std": 0.05, "lr": 3e-3}, 300),  # fmt: skip
    "bc_transformer_gmm": ("bc_transformer", {"embed_dim": 32, "num_layers": 1, "num_heads": 2,
                                              "obs_horizon": 2, "gmm_modes": 5,
                                              "gmm_min_std": 0.05, "lr": 3e-3,
                                              "emb_dropout": 0.0, "attn_dropout": 0.0,
                                              "block_dropout": 0.0}, 300),  # fmt: skip
    # Diffusion: the sampled window is To=2 observations' worth of past plus the future, the
    # first executed action sits at index To-1 (the chunk alignment under test); DDIM with
    # the default 10 steps; constant lr (the paper's 1e-4 with warm-up needs ~100x the steps).
    # 600 steps: at 300 the U-Net left ~25 % of its samples between the modes (measured).
    "diffusion": ("diffusion", {"down_dims": [32], "kernel_size": 3, "n_groups": 4,
                                "diffusion_step_embed_dim": 16, "obs_horizon": 2,
                                "action_horizon": 4, "n_action_steps": 2, "lr": 3e-3,
                                "lr_schedule": "constant", "lr_warmup_steps": 0}, 600),  # fmt: skip
    "diffusion_transformer": ("diffusion_transformer", {"n_layer": 1, "n_head": 2, "n_emb": 32,
                                                        "p_drop_attn": 0.0, "obs_horizon": 2,
                                                        "action_horizon": 4, "n_action_steps": 2,
                                                        "lr": 3e-3, "lr_schedule": "constant",
                                                        "lr_warmup_steps": 0}, 600),  # fmt: skip
    # k-means puts bins on -1, +1 and 0.5 exactly; the bin is drawn from the softmax.
    "bet": ("bet", {"n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.0, "obs_horizon": 2,
                    "n_bins": 8, "lr": 3e-3}, 300),  # fmt: skip
}


@pytest.fixture(scope="module")
def two_state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 demos of 25 steps in state A (actions a shuffled half -1, half +1) and 16 in B."""
    rng = np.random.default_rng(0)
    demos = {}
    for i in range(32):
        in_a = i % 2 == 0
        actions = rng.permutation(np.arange(25) % 2 * 2.0 - 1.0) if in_a else np.full(25, 0.5)
        state = np.full((25, 1), STATE_A if in_a else STATE_B)
        demos[f"demo_{i}"] = {"obs/state": state, "actions": actions[:, None]}
    path = tmp_path_factory.mktemp("multimodal") / "two_states.hdf5"
    return write_demo_file(path, demos, {"train": list(demos)})


def trained(name: str, values: dict[str, Any], steps: int, path: Path, run_dir: Path) -> Policy:
    cls = policy_class(name)
    config = config_from_values(
        cls.config_class, {**values, "obs_keys": ["state"], "obs_dim": 1, "action_dim": 1}
    )
    torch.manual_seed(0)
    policy = cls(config)
    dataset = WindowDataset(path, ("state",), spec=policy.batch_spec())
    policy.set_normalization(dataset.stats())
    cfg = TrainConfig(num_steps=steps, batch_size=64, log_every=steps, save_every=0, seed=0,
                      device="cpu", progress_bar=False)  # fmt: skip
    train(policy, dataset, cfg, run_dir)
    return policy


def samples(policy: Policy, state: float, seed: int) -> np.ndarray:
    """One action for each of SAMPLES fresh environments in ``state``, own generator each."""
    policy.reset()
    gens = [torch.Generator().manual_seed(seed * SAMPLES + i) for i in range(SAMPLES)]
    return policy.predict_action(np.full((SAMPLES, 1), state, dtype=np.float32), gens)[:, 0]


def near(actions: np.ndarray, value: float) -> float:
    return float(np.mean(np.abs(actions - value) < 0.2))


@pytest.mark.parametrize("learner", sorted(MULTIMODAL))
def test_stochastic_learner_samples_both_modes(learner: str, two_state_file: Path,
                                               tmp_path: Path) -> None:  # fmt: skip
    name, values, steps = MULTIMODAL[learner]
    policy = trained(name, values, steps, two_state_file, tmp_path)
    in_a, in_b = samples(policy, STATE_A, seed=1), samples(policy, STATE_B, seed=2)
    shares = {"-1": near(in_a, -1.0), "+1": near(in_a, 1.0), "B +0.5": near(in_b, 0.5)}
    assert 0.3 <= shares["-1"] <= 0.7 and 0.3 <= shares["+1"] <= 0.7, shares
    assert shares["B +0.5"] >= 0.9, shares


def test_bc_mlp_averages_the_modes(two_state_file: Path, tmp_path: Path) -> None:
    policy = trained("bc_mlp", {"hidden_dims": [32, 32], "lr": 3e-3}, 300, two_state_file, tmp_path)
    in_a, in_b = samples(policy, STATE_A, seed=1), samples(policy, STATE_B, seed=2)
    assert np.all(np.abs(in_a) < 0.2), in_a[:5]  # the mean of -1 and +1, an action nobody took
    assert near(in_a, -1.0) == near(in_a, 1.0) == 0.0
    assert np.all(np.abs(in_b - 0.5) < 0.2), in_b[:5]  # it did learn: B is fitted
