"""The slot environment of the rollout loop: a task that can start from a given state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


class _StartFromState(gym.Wrapper):
    """Resets, then restores the initial state its slot was given in the reset options."""

    def __init__(self, env: gym.Env, slot: int) -> None:
        super().__init__(env)
        self.slot = slot

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed)
        state = (options or {}).get("initial_states", {}).get(self.slot)
        if state is not None:
            obs = self.env.unwrapped.reset_to(np.asarray(state, dtype=np.float64))
        info = {**info, "context": getattr(self.env.unwrapped, "context", info.get("context"))}
        return obs, info


def make_slot_env(
    env_id: str, env_kwargs: Mapping[str, Any], slot: int, trusted: bool
) -> gym.Env:
    # Runs inside each worker: the env (and its renderer, made on first render) is built
    # there, after the spawn, never inherited from the parent.
    if trusted:
        env = gym.make(env_id, **env_kwargs)
    else:
        from polymimic.envs.allowlist import make_env

        env = make_env(env_id, env_kwargs)
    return _StartFromState(env, slot)
