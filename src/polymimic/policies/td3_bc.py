"""TD3+BC (Fujimoto & Gu, "A Minimalist Approach to Offline Reinforcement Learning", NeurIPS
2021): TD3 (Fujimoto, van Hoof & Meger, ICML 2018) with a behaviour-cloning term in the actor.

A deterministic actor ``pi_phi(s) = max_action * tanh(f_phi(s))``, twin critics ``Q_theta1,2``
and target copies ``pi_phi'``, ``Q_theta'`` of both. On transitions ``(s, a, r, s', d)``::

    a~'        = clip(pi_phi'(s') + clip(eps, -c, c), -max_action, max_action),
                 eps ~ N(0, sigma^2)                          (target policy smoothing)
    y          = r + gamma (1 - d) min_i Q_theta'_i(s', a~')
    L_Q(theta) = sum_i E[(Q_theta_i(s, a) - y)^2]                          (every step)
    L_pi(phi)  = -lambda E[Q_theta1(s, pi_phi(s))] + E[(pi_phi(s) - a)^2],
                 lambda = alpha / E[|Q_theta1(s, pi_phi(s))|]  (no gradient; the paper's code
                 normalises by Q at the actor's action)           (every policy_freq steps)
    phi' <- tau phi + (1 - tau) phi',  theta' <- tau theta + (1 - tau) theta'
                                             (after each actor step, as TD3 does)

``lambda`` makes the Q term scale-free, so one ``alpha`` serves every reward scale. The
evaluation action is the actor's output. The paper normalises states (``mean_std`` here) and
keeps actions in [-1, 1] (``min_max`` here, ``policies.offline_rl``).

Reward: the dataset's sparse success reward (``policies.offline_rl``).
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
    polyak_update,
    tanh_bound,
    target_copy,
    twin_td_loss,
)
from polymimic.policies.optim import OptimizerSpec


@dataclasses.dataclass
class TD3BCConfig(OfflineRLConfig):
    """Configuration of :class:`TD3BCPolicy` (plus the shared offline-RL fields)."""

    alpha: float = bounded(2.5, 0.0, 1e6)  # weight of the Q term against behaviour cloning
    policy_noise: float = bounded(0.2, 0.0, 1e3)  # sigma of target smoothing, x max_action
    noise_clip: float = bounded(0.5, 0.0, 1e3)  # c of target smoothing, x max_action
    policy_freq: int = bounded(2, 1, 10**6)  # actor and target update every this many steps


PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # TD3+BC paper, hyperparameter table (TD3's): 2 hidden layers of 256, Adam lr 3e-4
        "hidden_dims": (256, 256),
        "critic_lr": 3e-4,
        "actor_lr": 3e-4,
        # same table: discount 0.99, target update rate 5e-3, policy noise 0.2, noise clip 0.5,
        # policy update frequency 2, alpha 2.5 (mini-batch 256 is the loop's train.batch_size)
        "discount": 0.99,
        "tau": 0.005,
        "policy_noise": 0.2,
        "noise_clip": 0.5,
        "policy_freq": 2,
        "alpha": 2.5,
    },
    "cpu_small": {
        # the paper's network is already small; the paper's settings otherwise
        "hidden_dims": (256, 256),
        "alpha": 2.5,
        "policy_freq": 2,
    },
}


class DeterministicActor(nn.Module):
    """``pi(s) = max_action * tanh(f(s))``."""

    def __init__(self, obs_dim: int, action_dim: int, config: TD3BCConfig) -> None:
        super().__init__()
        self.net = mlp(obs_dim, action_dim, config)
        self.max_action = config.max_action

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return tanh_bound(self.net(obs).float(), self.max_action)


@register_policy
class TD3BCPolicy(OfflineRLPolicy):
    """TD3 with behaviour cloning in the actor's loss."""

    name = "td3_bc"
    config_class = TD3BCConfig
    presets = PRESETS

    def __init__(self, config: TD3BCConfig) -> None:
        super().__init__(config)
        self.config: TD3BCConfig = config
        self.critic = TwinQ(config.obs_dim, config.action_dim, config)
        self.critic_target = target_copy(self.critic)
        self.actor = DeterministicActor(config.obs_dim, config.action_dim, config)
        self.actor_target = target_copy(self.actor)

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """The critic every step, the actor every ``policy_freq`` steps (delayed updates)."""
        c = self.config
        return [
            self.optimizer("critic", self.critic, c.critic_lr, num_training_steps),
            self.optimizer("actor", self.actor, c.actor_lr, num_training_steps, c.policy_freq),
        ]

    def critic_target_value(self, t: Transition) -> torch.Tensor:
        """``y = r + gamma (1 - d) min_i Q_theta'_i(s', a~')`` with target policy smoothing."""
        c = self.config
        with torch.no_grad():
            noise = torch.randn_like(t.actions) * c.policy_noise * c.max_action
            noise = noise.clamp(-c.noise_clip * c.max_action, c.noise_clip * c.max_action)
            next_action = (self.actor_target(t.next_obs) + noise).clamp(-c.max_action, c.max_action)
            next_q = self.critic_target.min(t.next_obs, next_action)
            return bootstrap_target(t.rewards, t.terminations, next_q, c.discount)

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str
    ) -> dict[str, torch.Tensor]:
        """``L_Q`` (``critic``) or ``L_pi`` (``actor``) of the module docstring."""
        t = self.transition(batch)
        if optimizer == "critic":
            td = twin_td_loss(self.critic, t, self.critic_target_value(t))
            return {"loss": td, "td_loss": td}
        pi = self.actor(t.obs)
        q = self.critic.q1(torch.cat([t.obs, pi], dim=-1))[..., 0].float()
        lam = self.config.alpha / q.abs().mean().detach().clamp(min=1e-6)
        bc = (pi - t.actions).square().mean()
        return {"loss": -lam * q.mean() + bc, "bc_loss": bc, "lambda": lam}

    def on_step_end(self, step: int) -> None:
        """Polyak update of both targets after each actor step (TD3's delayed targets)."""
        if step % self.config.policy_freq == 0:
            polyak_update(self.critic_target, self.critic, self.config.tau)
            polyak_update(self.actor_target, self.actor, self.config.tau)

    def act(self, obs: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
        """The actor's action (deterministic; ``generators`` unused)."""
        return self.actor(obs)
