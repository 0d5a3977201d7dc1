"""Implicit Q-Learning (Kostrikov, Nair & Levine, "Offline Reinforcement Learning with Implicit
Q-Learning", ICLR 2022), as CORL's single-file ``iql.py`` (Tarasov et al., NeurIPS 2023 D&B).

IQL never queries the critic at actions outside the data. Three networks: a value function
``V_psi(s)``, twin critics ``Q_theta1,2(s, a)`` with a target copy ``Q_theta^`` and a Gaussian
actor ``pi_phi(a | s)``. On transitions ``(s, a, r, s', d)`` of the data (``d``: terminated)::

    L_V(psi)   = E[ L_2^tau( min_i Q_theta^_i(s, a) - V_psi(s) ) ],
                 L_2^tau(u) = |tau - 1(u < 0)| u^2                       (expectile regression)
    L_Q(theta) = sum_i E[ (r + gamma (1 - d) V_psi(s') - Q_theta_i(s, a))^2 ]
    L_pi(phi)  = -E[ exp(beta (min_i Q_theta^_i(s, a) - V_psi(s))) log pi_phi(a | s) ],
                 the weight clipped at 100                        (advantage-weighted regression)
    theta^ <- tau_target theta + (1 - tau_target) theta^                  (after every step)

With expectile ``tau`` near 1, ``V`` approaches the best value among the data's actions; the
actor is behaviour cloning weighted by ``exp(beta * advantage)``, so it stays on the data's
support. The actor is CORL's ``GaussianPolicy``: mean ``max_action * tanh(f_phi(s))`` and a
state-independent log standard deviation; evaluation takes the mean.

Reward: the dataset's sparse success reward (``policies.offline_rl``), scaled and shifted by
``reward_scale``, ``reward_shift``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.policies.base import register_policy
from polymimic.policies.offline_rl import (
    OfflineRLConfig,
    OfflineRLPolicy,
    Transition,
    TwinQ,
    bootstrap_target,
    mlp,
    tanh_bound,
    target_copy,
    twin_td_loss,
)
from polymimic.policies.optim import OptimizerSpec

#: CORL's clamp of the actor's log standard deviation and of the AWR weight.
LOG_STD_RANGE = (-20.0, 2.0)
MAX_EXP_ADV = 100.0


@dataclasses.dataclass
class IQLConfig(OfflineRLConfig):
    """Configuration of :class:`IQLPolicy` (plus the shared offline-RL fields)."""

    expectile: float = bounded(0.7, 0.0, 1.0, high_open=True)  # tau of L_2^tau
    beta: float = bounded(3.0, 0.0, 1e3)  # inverse temperature of the advantage weights
    value_lr: float = bounded(3e-4, 0.0, 1.0)  # Adam learning rate of V
    actor_lr_schedule: str = "cosine"  # CORL anneals the actor's lr over the run


PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # IQL paper (experimental details) and CORL iql.py: 2 hidden layers of 256 everywhere
        "hidden_dims": (256, 256),
        # IQL paper, AntMaze settings (sparse 0/1 goal reward, like polymimic's success
        # reward): expectile 0.9, beta (inverse temperature) 10; MuJoCo uses 0.7 and 3.0
        "expectile": 0.9,
        "beta": 10.0,
        # IQL paper / CORL iql.py: Adam, lr 3e-4 for all networks, discount 0.99, tau 0.005
        "critic_lr": 3e-4,
        "value_lr": 3e-4,
        "actor_lr": 3e-4,
        "discount": 0.99,
        "tau": 0.005,
        # CORL iql.py: CosineAnnealingLR on the actor's optimiser over the whole run.
        # (The paper's AntMaze runs also subtract 1 from every reward, policy.reward_shift=-1;
        # polymimic's presets keep the dataset's reward so every learner sees the same one.)
        "actor_lr_schedule": "cosine",
    },
    "cpu_small": {
        # the paper's sizes are already small; kept, with the AntMaze (sparse) settings
        "hidden_dims": (256, 256),
        "expectile": 0.9,
        "beta": 10.0,
        "actor_lr_schedule": "cosine",
    },
}


class GaussianActor(nn.Module):
    """``pi(a | s) = N(max_action * tanh(f(s)), diag(exp(log_std))^2)``, log_std learned
    per action dimension, not per state (CORL's ``GaussianPolicy``)."""

    def __init__(self, obs_dim: int, action_dim: int, config: IQLConfig) -> None:
        super().__init__()
        self.net = mlp(obs_dim, action_dim, config)
        self.log_std = nn.Parameter(torch.zeros(action_dim))
        self.max_action = config.max_action

    def forward(self, obs: torch.Tensor) -> torch.distributions.Normal:
        mean = tanh_bound(self.net(obs).float(), self.max_action)
        std = self.log_std.clamp(*LOG_STD_RANGE).exp()
        return torch.distributions.Normal(mean, std)


@register_policy
class IQLPolicy(OfflineRLPolicy):
    """Implicit Q-learning: expectile value, twin critics, advantage-weighted actor."""

    name = "iql"
    config_class = IQLConfig
    presets = PRESETS

    def __init__(self, config: IQLConfig) -> None:
        super().__init__(config)
        self.config: IQLConfig = config
        self.value = mlp(config.obs_dim, 1, config)
        self.critic = TwinQ(config.obs_dim, config.action_dim, config)
        self.critic_target = target_copy(self.critic)
        self.actor = GaussianActor(config.obs_dim, config.action_dim, config)

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """V, then Q (which bootstraps from V), then the actor, every step (CORL's order)."""
        c = self.config
        return [
            self.optimizer("value", self.value, c.value_lr, num_training_steps),
            self.optimizer("critic", self.critic, c.critic_lr, num_training_steps),
            self.optimizer(
                "actor", self.actor, c.actor_lr, num_training_steps, schedule=c.actor_lr_schedule
            ),  # fmt: skip
        ]

    def v(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(obs)[..., 0].float()

    def critic_target_value(self, t: Transition) -> torch.Tensor:
        """``y = r + gamma (1 - d) V_psi(s')``."""
        with torch.no_grad():
            return bootstrap_target(t.rewards, t.terminations, self.v(t.next_obs),
                                    self.config.discount)  # fmt: skip

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str
    ) -> dict[str, torch.Tensor]:
        """``L_V``, ``L_Q`` or ``L_pi`` of the module docstring, by optimiser name."""
        t = self.transition(batch)
        if optimizer == "critic":
            td = twin_td_loss(self.critic, t, self.critic_target_value(t))
            return {"loss": td, "td_loss": td}
        with torch.no_grad():
            q_target = self.critic_target.min(t.obs, t.actions)
        if optimizer == "value":
            u = q_target - self.v(t.obs)
            weight = torch.abs(self.config.expectile - (u < 0).float())
            return {"loss": (weight * u.square()).mean(), "v_mean": (q_target - u).mean()}
        with torch.no_grad():
            advantage = q_target - self.v(t.obs)
            weight = torch.exp(self.config.beta * advantage).clamp(max=MAX_EXP_ADV)
        log_prob = self.actor(t.obs).log_prob(t.actions).sum(-1)
        return {"loss": -(weight * log_prob).mean(), "advantage": advantage.mean()}

    def act(self, obs: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
        """The policy's mean (deterministic; ``generators`` unused)."""
        return self.actor(obs).mean
