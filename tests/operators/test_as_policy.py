"""A scripted operator population behind the policy interface."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from polymimic.datasets.obs import flatten_obs
from polymimic.datasets.registry import dataset_spec
from polymimic.operators import as_policy
from polymimic.operators.as_policy import OperatorPolicy


def test_episode_index_picks_operators_in_turn(monkeypatch) -> None:
    spec = dataset_spec("polymimic/push/multi-operator-v1")
    env = gym.make(spec.env_id)
    policy = OperatorPolicy(spec.env_id, spec.operators, env.observation_space, 2, 400)
    used = []
    real = as_policy.OperatorEpisode

    def record(operator, *args):
        used.append(operator.operator_id)
        return real(operator, *args)

    monkeypatch.setattr(as_policy, "OperatorEpisode", record)
    obs, _ = env.reset(seed=0)
    flat = flatten_obs(obs, policy.config.obs_keys)[None]
    for index in range(8):  # the rollout loop calls reset, then start_episode, per episode
        policy.reset([0])
        policy.start_episode(0, index)
        action = policy.predict_action(flat, [torch.Generator().manual_seed(index)])
        assert action.shape == (1, 2) and np.isfinite(action).all()
    ids = [op.operator_id for op in spec.operators]
    assert used == [ids[i % len(ids)] for i in range(8)]  # equal shares, as in the dataset
    policy.reset([0])  # without the hook the operator comes from the generator
    policy.predict_action(flat, [torch.Generator().manual_seed(3)])
    assert used[-1] in ids and len(used) == 9
