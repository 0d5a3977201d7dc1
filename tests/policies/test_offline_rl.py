"""Known answers of the offline-RL learners (issue 14): a one-step bandit, conservatism on a
narrow action support, and the bootstrap target (a truncation is not terminal).

Datasets are real HDF5 files of one-step demonstrations (each ``terminated`` after its one
action) and training runs through the one training loop (``test_multimodality.trained``:
batch 64, seed 0, CPU). The shape, round-trip and exact-resume contracts are in
``test_learners.py``, which covers every registered learner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_multimodality import trained

import polymimic.policies  # noqa: F401  (registers the built-in learners)
from demo_files import random_demos, write_demo_file
from polymimic.config.values import config_from_values
from polymimic.datasets.windows import WindowDataset
from polymimic.policies.base import Policy, policy_class
from polymimic.policies.offline_rl import OfflineRLPolicy, bootstrap_target

OFFLINE_RL = ("iql", "cql", "td3_bc", "bcq")
STATES = np.array([[0.0], [1.0]], dtype=np.float32)  # both states of the files below
SMALL = {"hidden_dims": [32, 32], "critic_lr": 3e-3, "actor_lr": 3e-3, "use_failed": False}
# learner -> (config values, training steps). Measured over seeds 0-4 (1 core):
#   iql    0.73-0.80 (0.79 at seed 0); expectile 0.9 and beta 10 (the IQL paper's AntMaze
#          values): V -> the 0.9-expectile of Q in {0, 1} = 0.9, advantages +0.1 / -0.9, so
#          the weights favour +0.8 by exp(10) and the weighted mean is ~0.8. At the MuJoCo
#          values (0.7, 3) the converged mean is (e^3 * 0.8 - 0.8) / (e^3 + 1) = 0.72.
#   td3_bc 0.80 with alpha 10. At the paper's alpha 2.5 it is 0.54 on every seed: the BC
#          term pulls the actor towards the mean of the two demonstrated actions, 0.
#   cql    0.80; the entropy temperature starts at exp(-3) (CORL: 1) and learns 10x faster,
#          else at 600 steps the max-entropy term still dominates Q differences of 1
#          (measured -0.3 with log_alpha starting at 0).
#   bcq    0.80 with the paper's lambda 0.75, Phi 0.05.
BANDIT: dict[str, tuple[dict[str, Any], int]] = {
    "iql": ({**SMALL, "value_lr": 3e-3, "expectile": 0.9, "beta": 10.0}, 300),
    "td3_bc": ({**SMALL, "alpha": 10.0}, 300),
    "cql": ({**SMALL, "alpha_lr": 3e-3, "init_log_alpha": -3.0}, 600),
    "bcq": ({**SMALL, "vae_hidden_dims": [32, 32], "vae_lr": 3e-3}, 300),
}
# Conservatism: raw actions (no normalisation) and the env's bound max_action 1, so the actor
# could leave the data's [-0.5, 0.5] (with the default min_max normalisation its tanh bound
# *is* the data's range: see test_default_action_bound_is_the_data_range). Measured, seeds
# 0-4: iql 0.30-0.36, cql -0.20-0.20, bcq 0.01-0.10, td3_bc 0.42-0.54 with alpha 1.0;
# td3_bc at the paper's alpha 2.5 leaves the support (0.62-0.93): its BC term is quadratic,
# and this reward rises as steeply across the data as the BC term's pull.
RAW = {"action_normalization": "none", "max_action": 1.0}
CONSERVATIVE: dict[str, tuple[dict[str, Any], int]] = {
    "iql": ({**BANDIT["iql"][0], **RAW}, 300),
    "td3_bc": ({**SMALL, **RAW, "alpha": 1.0}, 300),
    "cql": ({**BANDIT["cql"][0], **RAW}, 600),
    "bcq": ({**BANDIT["bcq"][0], **RAW}, 300),
}
# The same actor-critics with their constraint switched off go to the bound (measured, seeds
# 0-4: cql without its penalty 0.88-0.94, td3_bc with alpha 1000 0.998-1.00).
UNCONSTRAINED: dict[str, tuple[dict[str, Any], int]] = {
    "cql_alpha_0": ({**CONSERVATIVE["cql"][0], "cql_alpha": 0.0}, 600),
    "td3_bc_alpha_1000": ({**CONSERVATIVE["td3_bc"][0], "alpha": 1000.0}, 300),
}


def one_step_file(path: Path, actions: np.ndarray, rewards: np.ndarray) -> Path:
    """One demo per action, each a single terminated step, alternating states 0 and 1."""
    demos = {
        f"demo_{i}": {
            "obs/state": np.full((1, 1), float(i // 2 % 2)),
            "actions": np.full((1, 1), a),
            "rewards": np.array([r]),
            "terminations": np.array([True]),
            "dones": np.array([1]),
        }  # fmt: skip
        for i, (a, r) in enumerate(zip(actions, rewards, strict=True))
    }
    return write_demo_file(path, demos, {"train": list(demos)})


@pytest.fixture(scope="module")
def bandit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """In both states half the demos take +0.8 (reward 1), half -0.8 (reward 0)."""
    good = np.arange(64) % 2 == 0
    path = tmp_path_factory.mktemp("bandit") / "bandit.hdf5"
    return one_step_file(path, np.where(good, 0.8, -0.8), good.astype(float))


@pytest.fixture(scope="module")
def support_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Actions uniform in [-0.5, 0.5], reward a + 0.5: higher is better, beyond is unseen."""
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, size=64)
    return one_step_file(
        tmp_path_factory.mktemp("support") / "support.hdf5", actions, actions + 0.5
    )


def eval_actions(policy: Policy) -> np.ndarray:
    policy.reset()
    return policy.predict_action(STATES)[:, 0]


@pytest.mark.parametrize("name", OFFLINE_RL)
def test_bandit_evaluation_action_is_the_rewarded_one(name: str, bandit_file: Path,
                                                      tmp_path: Path) -> None:  # fmt: skip
    values, steps = BANDIT[name]
    actions = eval_actions(trained(name, values, steps, bandit_file, tmp_path))
    assert np.all(np.abs(actions - 0.8) < 0.15), actions


def test_bandit_bc_mlp_averages_the_two_actions(bandit_file: Path, tmp_path: Path) -> None:
    policy = trained("bc_mlp", {"hidden_dims": [32, 32], "lr": 3e-3}, 300, bandit_file, tmp_path)
    actions = eval_actions(policy)
    assert np.all(np.abs(actions) < 0.15), actions  # imitation ignores the reward


@pytest.mark.parametrize("name", OFFLINE_RL)
def test_conservatism_stays_near_the_data_support(name: str, support_file: Path,
                                                  tmp_path: Path) -> None:  # fmt: skip
    values, steps = CONSERVATIVE[name]
    actions = eval_actions(trained(name, values, steps, support_file, tmp_path))
    assert np.all((actions > -0.6) & (actions < 0.6)), actions


@pytest.mark.parametrize("variant", sorted(UNCONSTRAINED))
def test_without_the_constraint_the_actor_leaves_the_support(variant: str, support_file: Path,
                                                             tmp_path: Path) -> None:  # fmt: skip
    """The conservatism test has teeth: the same learner unconstrained goes past 0.6."""
    values, steps = UNCONSTRAINED[variant]
    actions = eval_actions(
        trained(variant.split("_alpha")[0], values, steps, support_file, tmp_path)
    )
    assert np.all(actions > 0.7), actions


def build(name: str, **values: Any) -> OfflineRLPolicy:
    """An untrained learner with 1-D observations and actions."""
    cls = policy_class(name)
    config = config_from_values(
        cls.config_class,
        {"hidden_dims": [16, 16], **values, "obs_keys": ["state"], "obs_dim": 1, "action_dim": 1},
    )  # fmt: skip
    torch.manual_seed(0)
    return cls(config)


@pytest.mark.parametrize("name", OFFLINE_RL)
def test_default_action_bound_is_the_data_range(name: str, support_file: Path) -> None:
    """With min_max normalisation (the default) even a saturated actor stays in the range of
    the data's actions: tanh's bound 1 is the data's max."""
    policy = build(name, use_failed=False)  # the file has no mask/failed
    assert policy.config.action_normalization == "min_max"
    dataset = WindowDataset(support_file, ("state",), spec=policy.batch_spec())
    policy.set_normalization(dataset.stats())
    with torch.no_grad():
        for param in policy.parameters():
            param.mul_(100.0)  # saturate every tanh
    policy.reset()
    actions = policy.predict_action(np.linspace(-3, 3, 50, dtype=np.float32)[:, None])
    low, high = dataset.actions.min(), dataset.actions.max()
    assert np.all((actions >= low - 1e-5) & (actions <= high + 1e-5)), (
        actions.min(),
        actions.max(),
    )


def test_bootstrap_target_ignores_truncation_and_stops_at_termination() -> None:
    rewards = torch.tensor([1.0, 0.5, 0.5])
    terminated = torch.tensor([1.0, 0.0, 0.0])  # row 2 is a truncated (time-limit) step
    target = bootstrap_target(rewards, terminated, torch.tensor([10.0, 10.0, -4.0]), 0.9)
    torch.testing.assert_close(target, torch.tensor([1.0, 9.5, -3.1]))


def hand_batch(terminated: float, truncated: float) -> dict[str, torch.Tensor]:
    """Four copies of one transition with the given end flags, as the loader shapes it."""
    return {
        "obs": torch.full((4, 1, 1), 0.3), "actions": torch.full((4, 1, 1), 0.2),
        "rewards": torch.full((4, 1), 0.5), "next_obs": torch.full((4, 1, 1), -0.7),
        "terminations": torch.full((4, 1), terminated), "truncations": torch.full((4, 1), truncated),
    }  # fmt: skip


@pytest.mark.parametrize("name", OFFLINE_RL)
def test_critic_loss_bootstraps_truncated_not_terminated(name: str) -> None:
    """Through the learner's own critic loss: terminated -> target r; truncated -> r plus
    the discounted next value, the same as an ordinary step's."""
    policy = build(name)

    def td(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(1)  # the same target-action noise for every call
        loss = policy.compute_loss(batch, "critic")["td_loss"]
        torch.manual_seed(1)
        target = policy.critic_target_value(policy.transition(batch))
        return loss, target

    q1, q2 = policy.critic(*policy.transition(hand_batch(0, 0))[:2])
    loss, target = td(hand_batch(1, 0))
    torch.testing.assert_close(target, torch.full((4,), 0.5))  # no future after termination
    torch.testing.assert_close(loss, ((q1 - 0.5) ** 2).mean() + ((q2 - 0.5) ** 2).mean())
    loss_cut, target_cut = td(hand_batch(0, 1))
    loss_mid, target_mid = td(hand_batch(0, 0))
    assert not torch.allclose(target_cut, torch.full((4,), 0.5))  # it bootstraps
    torch.testing.assert_close(target_cut, target_mid, rtol=0, atol=0)
    torch.testing.assert_close(loss_cut, loss_mid, rtol=0, atol=0)
    torch.testing.assert_close(
        loss_cut, ((q1 - target_cut) ** 2).mean() + ((q2 - target_cut) ** 2).mean()
    )


@pytest.mark.parametrize("use_failed", [True, False])
def test_failed_demos_join_the_training_items_by_switch(use_failed: bool, tmp_path: Path) -> None:
    path = write_demo_file(tmp_path / "demos.hdf5", random_demos(count=3, steps=5),
                           {"train": ["demo_0", "demo_1"], "failed": ["demo_2"]})  # fmt: skip
    policy = build("iql", use_failed=use_failed)
    dataset = WindowDataset(path, ("tip_pos",), spec=policy.batch_spec())
    assert dataset.demo_names == (
        ["demo_0", "demo_1", "demo_2"] if use_failed else ["demo_0", "demo_1"]
    )
