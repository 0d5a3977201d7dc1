"""Every task's scripted expert realises each of its behaviours on demand.

Runs over every registered id. CI uses a few episodes per task; the full measurement the
task-suite issue asks for (100 episodes, >= 95% success, balanced behaviours) is
``scripts/expert_table.py``, whose output is committed under ``results/experts/``.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

from polymimic.envs import TASK_IDS
from polymimic.eval.metrics import OTHER_BEHAVIOUR
from polymimic.operators import expert_operator, record_episode, task_behaviours

# Episodes per behaviour asked for explicitly, capped so the many-behaviour tasks stay fast.
MAX_BEHAVIOURS_ON_DEMAND = 6


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_expert_realises_each_requested_behaviour(env_id: str) -> None:
    env = gym.make(env_id)
    behaviours = task_behaviours(env_id)
    assert behaviours == tuple(env.unwrapped.behaviours)
    step = max(1, len(behaviours) // MAX_BEHAVIOURS_ON_DEMAND)
    requested = behaviours[::step][:MAX_BEHAVIOURS_ON_DEMAND]
    failures = []
    for index, behaviour in enumerate(requested):
        operator = expert_operator(env_id, behaviours=(behaviour,))
        episode = record_episode(env, operator, episode_seed=index)
        attrs = episode.attrs
        assert attrs["intended_behaviour"] == behaviour
        if not attrs["success"] or attrs["behaviour"] != behaviour:
            failures.append((behaviour, attrs["success"], attrs["behaviour"]))
    # One miss in six is tolerated here (the >= 95% figure is measured over 100 episodes).
    assert len(failures) <= len(requested) // 6, failures


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_expert_labels_are_task_labels(env_id: str) -> None:
    env = gym.make(env_id)
    operator = expert_operator(env_id, seed=3)
    episode = record_episode(env, operator, episode_seed=5)
    assert episode.attrs["intended_behaviour"] in task_behaviours(env_id)
    assert episode.attrs["behaviour"] in (*task_behaviours(env_id), OTHER_BEHAVIOUR)
    assert 0 <= episode.attrs["context"] < env.unwrapped.num_contexts
