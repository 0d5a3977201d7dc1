"""Behaviour cloning with an MLP: the simplest learner, and the compatibility scorer's base.

robomimic's ``BC`` (Mandlekar et al., 2021) without its RNN/GMM variants, which are separate
registered names. The network maps the normalised, flattened observation window
(obs_horizon * obs_dim) to the normalised first action of the action window; the loss is the
mean squared error in normalised action space, so every action dimension weighs the same.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.policies.base import Policy, PolicyConfig, register_policy

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
    lr: float = bounded(1e-3, 0.0, 1.0)  # AdamW learning rate used by the training loop
    weight_decay: float = bounded(1e-6, 0.0, 1.0)  # AdamW decoupled weight decay


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
        super().__init__(config)
        self.config: BCConfig = config
        self.mlp = build_mlp(
            config.obs_horizon * config.obs_dim,
            tuple(config.hidden_dims),
            config.action_dim,
            config.activation,
            config.dropout,
        )
        self._obs_history: collections.deque[np.ndarray] = collections.deque(
            maxlen=config.obs_horizon
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw obs window (B, obs_horizon, obs_dim) -> normalised action (B, action_dim)."""
        return self.mlp(self.normalize_obs(obs).flatten(start_dim=1))

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MSE between predicted and demonstrated first action, in normalised units."""
        target = self.normalize_action(batch["actions"][:, 0])
        prediction = self(batch["obs"])
        return {"loss": nn.functional.mse_loss(prediction.float(), target)}

    def reset(self) -> None:
        """Forget the observation history at the start of a rollout episode."""
        self._obs_history.clear()

    @torch.no_grad()
    def predict_action(self, obs: np.ndarray) -> np.ndarray:
        """One raw flat observation (obs_dim,) -> one raw action (action_dim,) float32.

        The first observation of an episode fills the whole history, matching the dataset's
        padding before an episode start.
        """
        obs = np.asarray(obs, dtype=np.float32).reshape(-1)
        if obs.shape[0] != self.config.obs_dim:
            raise ValueError(
                f"expected an observation of width {self.config.obs_dim}, got {obs.shape[0]}"
            )
        if not self._obs_history:
            self._obs_history.extend([obs] * self.config.obs_horizon)
        else:
            self._obs_history.append(obs)
        window = torch.from_numpy(np.stack(self._obs_history)).to(self.obs_mean.device)
        was_training = self.training
        self.eval()  # dropout must be off for rollouts whatever mode the caller left us in
        try:
            action = self.unnormalize_action(self(window[None]))[0]
        finally:
            self.train(was_training)
        return action.float().cpu().numpy()
