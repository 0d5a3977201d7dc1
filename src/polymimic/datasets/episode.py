"""The in-memory record of one demonstration, as operators produce it and HDF5 stores it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass
class Episode:
    """One demonstration, step-aligned: index t holds the state *before* action t.

    Attributes:
        obs: observation key -> (T, ...) array seen before each action.
        next_obs: observation key -> (T, ...) array seen after each action.
        actions: (T, A) float array of actions as sent to ``env.step``.
        rewards: (T,) float array.
        terminations: (T,) bool; True where the task ended (success).
        truncations: (T,) bool; True where the time limit ended the episode.
        states: (T, S) float64 array of ``env.get_state()`` before each action;
            ``env.reset_to(states[0])`` followed by ``actions`` replays the demo.
        attrs: per-demo metadata (operator, strategy, style, quality, behaviour, seed,
            success, ...); JSON-serialisable scalars and strings only.
    """

    obs: dict[str, np.ndarray]
    next_obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    states: np.ndarray
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def dones(self) -> np.ndarray:
        """robomimic's ``dones``: the episode ended here, by termination or truncation."""
        return np.logical_or(self.terminations, self.truncations)
