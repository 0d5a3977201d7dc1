"""A scripted operator behind the learner interface, so the evaluation protocol scores it.

The protocol's reference values (success, behaviour entropy, conditional entropy) come from
evaluating the operators that made the data exactly as a learner is evaluated: same
contexts, same rollout loop, same metrics. ``OperatorPolicy`` receives the flat observation
rows a learner receives, rebuilds the dict observation the scripts read, and starts a new
episode script (a new intention) for an environment whenever it is reset. The episode's
seed is drawn from that environment's ``torch.Generator``, so rollouts of one context differ
exactly as a stochastic learner's would. Given several operators (a dataset's population),
episode ``i`` of an evaluation is played by operator ``i mod n`` (the rollout loop's
``start_episode`` hook), so each operator plays an equal share, as each gave an equal share
of the dataset; without the hook the operator is drawn uniformly with the generator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from polymimic.operators import task_operators
from polymimic.operators.base import Operator, OperatorEpisode


@dataclasses.dataclass
class OperatorPolicyConfig:
    """What evaluation reads from a policy's config."""

    obs_keys: tuple[str, ...]
    obs_dim: int
    action_dim: int
    operators: list[dict[str, Any]]  # each operator's labels (id, strategy, style, quality)


class OperatorPolicy:
    """A scripted operator acting on batches of flat observations (one script per env)."""

    name = "scripted_operator"

    def __init__(self, env_id: str, operators: Operator | Sequence[Operator],
                 observation_space: gym.spaces.Dict, action_dim: int, horizon: int) -> None:  # fmt: skip
        self.operators = [operators] if isinstance(operators, Operator) else list(operators)
        self.entry = task_operators(env_id)
        keys = tuple(sorted(observation_space.spaces))
        self.widths = [int(np.prod(observation_space[k].shape)) for k in keys]
        self.shapes = [observation_space[k].shape for k in keys]
        self.horizon = horizon
        labels = [op.labels() for op in self.operators]
        self.config = OperatorPolicyConfig(keys, sum(self.widths), action_dim, labels)
        self.scripts: dict[int, Any] = {}
        self.assigned: dict[int, int] = {}  # env -> operator index of its current episode

    def start_episode(self, env_id: int, index: int) -> None:
        """The rollout loop's hook: episode ``index`` starts in ``env_id``."""
        self.assigned[env_id] = index % len(self.operators)

    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        """Forget the scripts of ``env_ids`` (None: all); the next call starts new episodes."""
        for env_id in list(self.scripts) if env_ids is None else env_ids:
            self.scripts.pop(env_id, None)

    def predict_action(
        self, obs: np.ndarray, generators: Sequence[torch.Generator] | None = None,
        row_by_row: bool = False,
    ) -> np.ndarray:  # fmt: skip
        """Flat ``(B, obs_dim)`` rows -> ``(B, action_dim)`` actions of each env's script."""
        actions = []
        for env_id, row in enumerate(np.asarray(obs)):
            if env_id not in self.scripts:
                generator = generators[env_id] if generators is not None else torch.Generator()
                seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
                pick = int(torch.randint(0, len(self.operators), (1,), generator=generator))
                pick = self.assigned.pop(env_id, pick)
                self.scripts[env_id] = OperatorEpisode(
                    self.operators[pick], self.entry.script_factory, seed, self.entry.motion,
                    self.entry.scene_utilities,
                )
            actions.append(np.asarray(self.scripts[env_id].act(self._unflatten(row))))
        return np.stack(actions).astype(np.float32)

    def _unflatten(self, row: np.ndarray) -> dict[str, np.ndarray]:
        parts = np.split(row, np.cumsum(self.widths)[:-1])
        return {k: p.reshape(shape).astype(np.float32)
                for k, p, shape in zip(self.config.obs_keys, parts, self.shapes, strict=True)}
