"""The one interface every learner implements, and the one registry that names them.

A policy is a ``torch.nn.Module`` that owns its normalisation statistics (as buffers, so
they travel inside ``model.safetensors``) and is built from a JSON-serialisable config
dataclass. The training loop only ever calls ``compute_loss``; the rollout function only
ever calls ``reset`` and ``predict_action``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.registry import lookup

#: Bounds of the shared config fields (checked before a policy is built from a file).
MAX_OBS_DIM = 100_000
MAX_ACTION_DIM = 64
MAX_HORIZON = 1024


@dataclasses.dataclass
class PolicyConfig:
    """Fields every learner's config has; learners subclass it and add their own.

    Sizes carry bounds (``polymimic.config.values.bounded``): configs read from files are
    checked against them before anything is allocated.
    """

    obs_keys: tuple[str, ...] = ()  # low-dim observation keys, concatenated in this order
    obs_dim: int = bounded(0, 0, MAX_OBS_DIM)  # sum of the keys' widths, set from the dataset
    action_dim: int = bounded(0, 0, MAX_ACTION_DIM)  # set from the dataset at build time
    obs_horizon: int = bounded(1, 1, MAX_HORIZON)  # how many past observations the policy sees
    action_horizon: int = bounded(1, 1, MAX_HORIZON)  # future actions one training target spans


class Policy(nn.Module):
    """Base class of every learner.

    Subclasses set ``name`` and ``config_class`` and implement ``compute_loss`` and
    ``_predict``. Normalisation is shared here so no learner re-implements it.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("obs_mean", torch.zeros(config.obs_dim))
        self.register_buffer("obs_std", torch.ones(config.obs_dim))
        self.register_buffer("action_mean", torch.zeros(config.action_dim))
        self.register_buffer("action_std", torch.ones(config.action_dim))

    # --- normalisation ------------------------------------------------------------------
    def set_normalization(self, stats: dict[str, np.ndarray]) -> None:
        """Copy dataset statistics (keys obs_mean, obs_std, action_mean, action_std) in."""
        for key in ("obs_mean", "obs_std", "action_mean", "action_std"):
            getattr(self, key).copy_(torch.as_tensor(np.asarray(stats[key]), dtype=torch.float32))

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_mean) / self.action_std

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return action * self.action_std + self.action_mean

    # --- the interface ------------------------------------------------------------------
    def compute_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return a dict with at least ``"loss"`` (scalar) for one batch.

        ``batch["obs"]``: (B, obs_horizon, obs_dim) raw (unnormalised) observations;
        ``batch["actions"]``: (B, action_horizon, action_dim) raw actions.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Clear per-episode memory (observation history, action queue)."""

    @torch.no_grad()
    def predict_action(self, obs: np.ndarray) -> np.ndarray:
        """Map one flat raw observation (obs_dim,) to one raw action (action_dim,)."""
        raise NotImplementedError


PolicyFactory = Callable[[PolicyConfig], Policy]
_REGISTRY: dict[str, type[Policy]] = {}


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make a learner available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} needs a non-empty class attribute `name`")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"policy name {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def policy_class(name: str) -> type[Policy]:
    """Look a learner up by name, with an error listing the known ones."""
    return lookup(_REGISTRY, name, "policy type")


def registered_policies() -> list[str]:
    return sorted(_REGISTRY)


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(config))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
