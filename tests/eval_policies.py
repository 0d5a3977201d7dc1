"""Policies the evaluation tests share: the scripted expert, a small untrained BC-MLP, and
a recorder of what a policy was shown (imported by tests; ``tests/`` is on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from polymimic.operators import expert_operator
from polymimic.operators.as_policy import OperatorPolicy
from polymimic.policies.bc import BCConfig, BCPolicy

PUSH = "polymimic/Push-v1"
#: The keys ``eval_info.json``'s ``aggregated`` block documents (``polymimic.eval.aggregate``).
AGGREGATED_KEYS = frozenset({
    "num_episodes", "num_successes", "success_rate", "success_rate_ci95", "design_effect",
    "behaviour_counts", "behaviour_distribution", "num_behaviours", "behaviour_entropy",
    "behaviour_entropy_ci95", "conditional_behaviour_entropy",
    "conditional_behaviour_entropy_ci95", "kl_to_reference", "d3il_score",
    "num_invalid_action_episodes", "mean_return", "mean_length",
})  # fmt: skip


def expert(env: gym.Env) -> OperatorPolicy:
    """The scripted expert behind the policy interface: succeeds, ends episodes early."""
    return OperatorPolicy(PUSH, expert_operator(PUSH), env.observation_space,
                          int(np.prod(env.action_space.shape)), env.spec.max_episode_steps)  # fmt: skip


def untrained_bc(env: gym.Env) -> BCPolicy:
    """A small deterministic learner sized for Push (default normalisation)."""
    keys = tuple(sorted(env.observation_space.spaces))
    obs_dim = sum(int(np.prod(env.observation_space[k].shape)) for k in keys)
    config = BCConfig(obs_keys=keys, obs_dim=obs_dim,
                      action_dim=int(np.prod(env.action_space.shape)), hidden_dims=(16,))  # fmt: skip
    with torch.random.fork_rng():  # fixed weights, the caller's RNG untouched
        torch.manual_seed(0)
        return BCPolicy(config)


class Recorder:
    """Wraps a policy; keeps every episode's observations (one worker: episodes in order)."""

    def __init__(self, policy: Any) -> None:
        self.policy, self.config = policy, policy.config
        self.episodes: list[list[np.ndarray]] = []
        self._current: dict[int, list[np.ndarray]] = {}

    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        for env_id in env_ids if env_ids is not None else list(self._current):
            self._current[env_id] = []
            self.episodes.append(self._current[env_id])
        self.policy.reset(env_ids)

    def predict_action(self, obs: np.ndarray, generators=None, row_by_row=False) -> np.ndarray:
        for env_id, row in enumerate(np.asarray(obs)):
            self._current[env_id].append(row.copy())
        return self.policy.predict_action(obs, generators, row_by_row=row_by_row)

    def played(self) -> list[list[np.ndarray]]:
        """The episodes that got at least one action (the last reset starts none)."""
        return [e for e in self.episodes if e]
