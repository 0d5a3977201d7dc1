"""Behaviour cloning with an MLP: the simplest learner, and the compatibility scorer's base.

robomimic's ``BC`` (Mandlekar et al., 2021) without its RNN/GMM variants, which are separate
registered names. The network maps the normalised, flattened observation window
(obs_horizon * obs_dim) to the normalised first action of the action window; the loss is the
mean squared error in normalised action space, so every action dimension weighs the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.policies.base import Policy, PolicyConfig, register_policy
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

    def __init__(self, config: BCConfig) -> None:
        """Build the network; obs_dim and action_dim must already be set in ``config``."""
        if config.obs_dim <= 0 or config.action_dim <= 0:
            raise ValueError(
                f"BCConfig needs obs_dim and action_dim > 0 (got {config.obs_dim}, "
                f"{config.action_dim}); fill them from the dataset before building the policy"
            )
        if config.n_action_steps != 1:
            raise ValueError("bc_mlp predicts one action per step: n_action_steps must be 1")
        super().__init__(config)
        self.config: BCConfig = config
        self.mlp = build_mlp(
            config.obs_horizon * config.obs_dim,
            tuple(config.hidden_dims),
            config.action_dim,
            config.activation,
            config.dropout,
        )

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
        """Raw obs window (B, obs_horizon, obs_dim) -> normalised action (B, action_dim)."""
        return self.mlp(self.normalize_obs(obs).flatten(start_dim=1))

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str = "main"
    ) -> dict[str, torch.Tensor]:
        """MSE between predicted and demonstrated first action, in normalised units."""
        target = self.normalize_action(batch["actions"][:, 0])
        prediction = self(batch["obs"])
        return {"loss": nn.functional.mse_loss(prediction.float(), target)}

    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """(N, obs_horizon, obs_dim) raw -> (N, 1, action_dim) raw; deterministic."""
        return self.unnormalize_action(self(obs_window))[:, None]
