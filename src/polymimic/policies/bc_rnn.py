"""Behaviour cloning with an LSTM over the observation history: robomimic's BC-RNN.

Mandlekar et al., "What Matters in Learning from Offline Human Demonstrations for Robot
Manipulation" (CoRL 2021) found that conditioning on history was the single largest gain on
human demonstrations: people pause, hesitate and correct, so the current observation alone
does not say what they do next. BC-RNN runs an LSTM (Hochreiter & Schmidhuber, 1997; 2
layers of 400 in the paper) over a sequence of T = ``obs_horizon`` observations (robomimic's
``train.seq_length`` = ``rnn.horizon`` = 10) and predicts the action at every step::

    h_t = LSTM(norm(o_t), h_{t-1}),   h_0 = 0
    a_t = head(MLP(h_t))             (MSE head, or a Gaussian mixture if gmm_modes > 0)
    loss = mean over the T steps of the head's loss on the demonstrated a_t

as robomimic trains it: actions are asked for at the same frame offsets as the observations
(``batch_spec``), every step of the sequence is supervised, and frames before an episode's
start are the first frame repeated (the dataset's padding, also what a fresh rollout's
history holds). The head code is shared with ``bc_gmm`` (``policies.heads``).

Inference: robomimic keeps the LSTM state across control steps and resets it every
``horizon`` steps, so its context saw-tooths between 1 and T observations. Here the LSTM is
run from a zero state over the last T observations at every step (the window the base class
keeps per environment): every action sees the full T-step context it was trained on at the
sequence's last position, environments stay independent in a batch, and there is no hidden
state to checkpoint or to reset. It costs T LSTM steps per action instead of one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.datasets.windows import BatchSpec
from polymimic.policies.base import MAX_HORIZON, Policy, PolicyConfig, register_policy
from polymimic.policies.bc import build_mlp
from polymimic.policies.heads import GMMHeadConfig, make_action_head
from polymimic.policies.optim import OptimizerSpec, adamw_with_schedule

MAX_WIDTH = 16_384


@dataclasses.dataclass
class BCRNNConfig(GMMHeadConfig, PolicyConfig):
    """Configuration of :class:`BCRNNPolicy` (plus ``PolicyConfig`` and the head's fields)."""

    obs_horizon: int = bounded(10, 1, MAX_HORIZON)  # sequence length T (robomimic: 10)
    rnn_hidden_dim: int = bounded(400, 1, MAX_WIDTH)  # LSTM width (robomimic: 400)
    rnn_num_layers: int = bounded(2, 1, 16)  # stacked LSTM layers (robomimic: 2)
    # MLP between the LSTM and the head (robomimic's actor_layer_dims; () in its BC-RNN runs)
    hidden_dims: tuple[int, ...] = bounded((), 1, MAX_WIDTH)
    activation: str = "relu"  # of the MLP's hidden layers (bc.build_mlp names)
    lr: float = bounded(1e-3, 0.0, 1.0)  # AdamW lr (issue 17's Push run; robomimic paper 1e-4)
    weight_decay: float = bounded(0.0, 0.0, 1.0)  # AdamW decoupled decay (robomimic L2: 0)
    lr_schedule: str = "constant"  # constant, constant_with_warmup, linear or cosine
    lr_warmup_steps: int = bounded(0, 0, 10**9)  # linear warm-up steps of the schedule


# Named configs (``policy=bc_rnn/<name>``), each value with its source.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # robomimic 0.3.0 scripts/generate_paper_configs.py, modify_bc_rnn_config_for_dataset:
        # train.seq_length = rnn.horizon = 10, rnn.hidden_dim = 400, actor_layer_dims = (),
        # gmm.enabled = True (human ph/mh datasets), lr 1e-4
        "obs_horizon": 10,
        "rnn_hidden_dim": 400,
        "hidden_dims": (),
        "gmm_modes": 5,  # robomimic bc_config.py gmm.num_modes
        "lr": 1e-4,
        # robomimic bc_config.py: rnn.num_layers 2, gmm.min_std 1e-4, softplus,
        # low_noise_eval True, regularization.L2 0
        "rnn_num_layers": 2,
        "gmm_min_std": 1e-4,
        "gmm_std_activation": "softplus",
        "low_noise_eval": True,
        "weight_decay": 0.0,
        "lr_schedule": "constant",
    },
    "cpu_small": {
        # issue 17's Push run (LSTM 2x400, T 10, lr 1e-3: 0.27 success at 6k steps) at a
        # width that trains on 2 CPU cores; mixture head as robomimic's human-data runs
        "obs_horizon": 10,
        "rnn_hidden_dim": 128,
        "rnn_num_layers": 2,
        "hidden_dims": (),
        "gmm_modes": 5,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "lr_schedule": "constant",
    },
}


@register_policy
class BCRNNPolicy(Policy):
    """LSTM behaviour cloning over an observation window, supervised at every step."""

    name = "bc_rnn"
    config_class = BCRNNConfig
    presets = PRESETS

    def __init__(self, config: BCRNNConfig) -> None:
        """Build the network; obs_dim and action_dim must already be set in ``config``."""
        if config.action_horizon != 1 or config.n_action_steps != 1:
            raise ValueError(
                "bc_rnn predicts one action per step (at every step of its sequence): "
                "action_horizon and n_action_steps must be 1"
            )
        super().__init__(config)
        self.config: BCRNNConfig = config
        self.head = make_action_head(config.action_dim, config)
        self.rnn = nn.LSTM(
            config.obs_dim, config.rnn_hidden_dim, config.rnn_num_layers, batch_first=True
        )
        self.decoder = build_mlp(
            config.rnn_hidden_dim, tuple(config.hidden_dims), self.head.raw_dim,
            config.activation, 0.0,
        )  # fmt: skip

    def batch_spec(self) -> BatchSpec:
        """Observations and actions at the same offsets ``1-T .. 0``: a T-step sequence."""
        window = tuple(range(1 - self.config.obs_horizon, 1))
        return BatchSpec({"obs": window, "actions": window})

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """One AdamW over every parameter, with the config's schedule (robomimic's BC-RNN)."""
        c = self.config
        return [
            adamw_with_schedule(
                "main", self.parameters(), c.lr, c.weight_decay, c.lr_schedule,
                c.lr_warmup_steps, num_training_steps,
            )
        ]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw obs sequence (B, T, obs_dim) -> the head's raw output at every step (B, T, raw)."""
        features, _ = self.rnn(self.normalize_obs(obs))  # zero initial state, as robomimic
        return self.decoder(features)

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str = "main"
    ) -> dict[str, torch.Tensor]:
        """The head's loss averaged over every step of every sequence, in normalised units."""
        target = self.normalize_action(batch["actions"])
        return {"loss": self.head.loss(self(batch["obs"]), target)}

    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """(N, T, obs_dim) raw -> (N, 1, action_dim) raw: the action at the window's last step."""
        raw = self(obs_window)[:, -1]
        return self.unnormalize_action(self.head.predict(raw, generators))[:, None]
