"""Behaviour cloning with an MLP: the simplest learner, and the compatibility scorer's base.

robomimic's ``BC`` (Mandlekar et al., 2021) without its RNN/GMM variants, which are separate
registered names (``bc_gmm`` subclasses this one with another head). The network maps the
normalised, flattened observation window (obs_horizon * obs_dim) to the normalised first
action of the action window; the loss is the mean squared error in normalised action space,
so every action dimension weighs the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.policies.base import Policy, PolicyConfig, register_policy
from polymimic.policies.heads import GMMHead, MSEHead
from polymimic.policies.optim import OptimizerSpec, adamw_with_schedule

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "mish": nn.Mish,
}


@dataclasses.dataclass
class BCConfig(PolicyConfig):
    """Configuration of :class:`BCPolicy` (plus the shared fields of ``PolicyConfig``)."""

    hidden_dims: tuple[int, ...] = bounded((256, 256), 1, 16_384)  # hidden widths, input first
    activation: str = "relu"  # one of relu, gelu, silu, tanh, mish
    dropout: float = bounded(0.0, 0.0, 1.0, high_open=True)  # after every hidden activation
    lr: float = bounded(1e-3, 0.0, 1.0)  # AdamW learning rate
    weight_decay: float = bounded(1e-6, 0.0, 1.0)  # AdamW decoupled weight decay
    lr_schedule: str = "constant"  # constant, constant_with_warmup, linear or cosine
    lr_warmup_steps: int = bounded(0, 0, 10**9)  # linear warm-up steps of the schedule


# Named configs (``policy=bc_mlp/<name>``), each value with its source.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # robomimic 0.3.0 config/bc_config.py: algo.actor_layer_dims = (1024, 1024)
        "hidden_dims": (1024, 1024),
        # robomimic scripts/generate_paper_configs.py, modify_bc_config_for_dataset: lr 1e-4
        "lr": 1e-4,
        # robomimic bc_config.py: optim_params.policy.regularization.L2 = 0.0
        "weight_decay": 0.0,
        # robomimic's multistep scheduler with an empty epoch_schedule keeps the lr constant
        "lr_schedule": "constant",
    },
    "cpu_small": {
        # polymimic's BC-MLP size (README demo); issue 17 measured robomimic's BC at the same
        # settings scoring the same as this learner on Push (11/120 over 4 seeds each)
        "hidden_dims": (256, 256),
        "lr": 1e-3,
        "weight_decay": 1e-6,
        "lr_schedule": "constant",
    },
}


def build_mlp(
    in_dim: int, hidden_dims: tuple[int, ...], out_dim: int, activation: str, dropout: float
) -> nn.Sequential:
    """A plain MLP: (Linear, activation, Dropout) per hidden layer, then a linear head.

    Raises:
        ValueError: for an unknown activation name.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers += [nn.Linear(width, hidden), _ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


@register_policy
class BCPolicy(Policy):
    """MLP behaviour cloning from an observation window to the next action."""

    name = "bc_mlp"
    config_class = BCConfig
    presets = PRESETS

    def __init__(self, config: BCConfig) -> None:
        """Build the network; obs_dim and action_dim must already be set in ``config``."""
        if config.n_action_steps != 1:
            raise ValueError(f"{self.name} predicts one action per step: n_action_steps must be 1")
        super().__init__(config)
        self.config: BCConfig = config
        self.head = self.make_head(config)
        self.mlp = build_mlp(
            config.obs_horizon * config.obs_dim,
            tuple(config.hidden_dims),
            self.head.raw_dim,
            config.activation,
            config.dropout,
        )

    def make_head(self, config: BCConfig) -> MSEHead | GMMHead:
        """The output head: MSE here, a Gaussian mixture in ``bc_gmm``."""
        return MSEHead(config.action_dim)

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """One AdamW over every parameter, with the config's schedule (robomimic's BC)."""
        c = self.config
        return [
            adamw_with_schedule(
                "main", self.parameters(), c.lr, c.weight_decay, c.lr_schedule,
                c.lr_warmup_steps, num_training_steps,
            )
        ]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw obs window (B, obs_horizon, obs_dim) -> the head's raw output (B, raw_dim);
        for the MSE head that is the normalised action (B, action_dim)."""
        return self.mlp(self.normalize_obs(obs).flatten(start_dim=1))

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str = "main"
    ) -> dict[str, torch.Tensor]:
        """The head's loss (MSE here) on the demonstrated first action, in normalised units."""
        target = self.normalize_action(batch["actions"][:, 0])
        return {"loss": self.head.loss(self(batch["obs"]), target)}

    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """(N, obs_horizon, obs_dim) raw -> (N, 1, action_dim) raw; the MSE head ignores
        ``generators``."""
        return self.unnormalize_action(self.head.predict(self(obs_window), generators))[:, None]
