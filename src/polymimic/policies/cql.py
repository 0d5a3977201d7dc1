"""Conservative Q-Learning (Kumar, Zhou, Tucker & Levine, "Conservative Q-Learning for Offline
Reinforcement Learning", NeurIPS 2020), the CQL(H) variant on soft actor-critic as CORL's
``cql.py`` (Tarasov et al., NeurIPS 2023 D&B) implements it, without the Lagrange variant.

A tanh-Gaussian actor ``pi_phi`` (``a = max_action * tanh(u)``, ``u ~ N(mu_phi(s),
sigma_phi(s)^2)``), twin critics ``Q_theta1,2`` with target copies ``Q_theta'``, and an entropy
temperature ``alpha_ent = exp(log_alpha)``. On transitions ``(s, a, r, s', d)``::

    y          = r + gamma (1 - d) min_i Q_theta'_i(s', a'),    a' ~ pi_phi(. | s')
    L_Q(theta) = sum_i { E[(Q_theta_i(s, a) - y)^2]
                         + alpha E_s[ log sum_{a~} exp Q_theta_i(s, a~) - Q_theta_i(s, a) ] }
    L_pi(phi)  = E_s[ alpha_ent log pi_phi(a~ | s) - min_i Q_theta_i(s, a~) ],  a~ ~ pi_phi(. | s)
    L(log_alpha) = -E[ log_alpha (log pi_phi(a~ | s) + H_target) ],   H_target = -action_dim
    theta' <- tau theta + (1 - tau) theta'                               (after every step)

The conservative term pushes Q down at actions the actor or a uniform proposal would take
and up at the data's actions, so the actor is not lured off the data by over-estimated
values. ``log sum exp`` is estimated by importance sampling over ``n_actions`` actions each
from ``U(-max_action, max_action)`` (density ``(2 max_action)^-A``), ``pi(. | s)`` and
``pi(. | s')`` (all evaluated at ``s``), each term minus its log density (CORL's
``cql_importance_sample``). The evaluation action is the tanh of the Gaussian's mean.

Reward: the dataset's sparse success reward (``policies.offline_rl``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from polymimic.config.values import bounded
from polymimic.policies.base import register_policy
from polymimic.policies.offline_rl import (
    OfflineRLConfig,
    OfflineRLPolicy,
    Transition,
    TwinQ,
    bootstrap_target,
    mlp,
    repeat_rows,
    target_copy,
    twin_td_loss,
)
from polymimic.policies.optim import OptimizerSpec

LOG_STD_RANGE = (-20.0, 2.0)  # CORL's clamp of the actor's log standard deviation


@dataclasses.dataclass
class CQLConfig(OfflineRLConfig):
    """Configuration of :class:`CQLPolicy` (plus the shared offline-RL fields)."""

    cql_alpha: float = bounded(10.0, 0.0, 1e6)  # weight alpha of the conservative term
    n_actions: int = bounded(10, 1, 1024)  # sampled actions per source in log-sum-exp
    cql_temp: float = bounded(1.0, 1e-6, 1e6)  # temperature of the log-sum-exp
    alpha_lr: float = bounded(3e-4, 0.0, 1.0)  # Adam learning rate of log_alpha
    init_log_alpha: float = bounded(0.0, -20.0, 20.0)  # initial entropy temperature (log)


PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # CORL cql.py: q_n_hidden_layers = 3 of 256 units (the actor too)
        "hidden_dims": (256, 256, 256),
        # CORL cql.py: qf_lr 3e-4, policy_lr 3e-5
        "critic_lr": 3e-4,
        "actor_lr": 3e-5,
        # CORL cql.py: cql_alpha 10, cql_n_actions 10, cql_temp 1, discount 0.99,
        # soft_target_update_rate 5e-3, automatic entropy tuning (alpha lr = policy lr)
        "cql_alpha": 10.0,
        "n_actions": 10,
        "cql_temp": 1.0,
        "discount": 0.99,
        "tau": 0.005,
        "alpha_lr": 3e-5,
    },
    "cpu_small": {
        # two hidden layers instead of three: about a third less compute per step on CPU
        "hidden_dims": (256, 256),
        "critic_lr": 3e-4,
        # 1e-4, the CQL paper's policy lr, instead of CORL's 3e-5: fewer steps fit in a CPU run
        "actor_lr": 1e-4,
        "alpha_lr": 1e-4,
        "cql_alpha": 10.0,
        "n_actions": 10,
    },
}


class TanhGaussianActor(nn.Module):
    """``a = max_action * tanh(u)``, ``u ~ N(mu(s), sigma(s)^2)``, with the log density of a."""

    def __init__(self, obs_dim: int, action_dim: int, config: CQLConfig) -> None:
        super().__init__()
        self.net = mlp(obs_dim, 2 * action_dim, config)
        self.max_action = config.max_action

    def mean_and_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).float().chunk(2, dim=-1)
        return mean, log_std.clamp(*LOG_STD_RANGE)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action ``(..., A)`` and its log density ``(...)``."""
        mean, log_std = self.mean_and_log_std(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        log_normal = -0.5 * (((u - mean) / log_std.exp()).square() + math.log(2 * math.pi))
        # log |d tanh(u) / du| = log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable
        log_jacobian = 2.0 * (math.log(2.0) - u - functional.softplus(-2.0 * u))
        log_prob = (log_normal - log_std - log_jacobian).sum(-1)
        log_prob = log_prob - mean.shape[-1] * math.log(self.max_action)
        return self.max_action * torch.tanh(u), log_prob

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """``max_action * tanh(mu(s))``: the deterministic evaluation action."""
        return self.max_action * torch.tanh(self.mean_and_log_std(obs)[0])


class LogAlpha(nn.Module):
    """The learned log entropy temperature (its own optimiser)."""

    def __init__(self, init: float) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(float(init)))


@register_policy
class CQLPolicy(OfflineRLPolicy):
    """CQL(H) on soft actor-critic with automatic entropy tuning."""

    name = "cql"
    config_class = CQLConfig
    presets = PRESETS

    def __init__(self, config: CQLConfig) -> None:
        super().__init__(config)
        self.config: CQLConfig = config
        self.critic = TwinQ(config.obs_dim, config.action_dim, config)
        self.critic_target = target_copy(self.critic)
        self.actor = TanhGaussianActor(config.obs_dim, config.action_dim, config)
        self.log_alpha = LogAlpha(config.init_log_alpha)

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """Critic, actor and temperature, each every step."""
        c = self.config
        return [
            self.optimizer("critic", self.critic, c.critic_lr, num_training_steps),
            self.optimizer("actor", self.actor, c.actor_lr, num_training_steps),
            self.optimizer("alpha", self.log_alpha, c.alpha_lr, num_training_steps),
        ]

    def critic_target_value(self, t: Transition) -> torch.Tensor:
        """``y = r + gamma (1 - d) min_i Q_theta'_i(s', a')``, ``a' ~ pi(. | s')``."""
        with torch.no_grad():
            next_action, _ = self.actor.sample(t.next_obs)
            next_q = self.critic_target.min(t.next_obs, next_action)
            return bootstrap_target(t.rewards, t.terminations, next_q, self.config.discount)

    def conservative_penalty(self, t: Transition) -> torch.Tensor:
        """``sum_i E_s[log sum_{a~} exp Q_i(s, a~) - Q_i(s, a)]`` by importance sampling."""
        c, n = self.config, self.config.n_actions
        obs_n = repeat_rows(t.obs, n)  # (B, n, obs_dim)
        with torch.no_grad():
            uniform = torch.rand(*obs_n.shape[:2], c.action_dim, device=t.obs.device)
            uniform = (2.0 * uniform - 1.0) * c.max_action
            log_uniform = -c.action_dim * math.log(2.0 * c.max_action)
            current, log_current = self.actor.sample(obs_n)
            following, log_following = self.actor.sample(repeat_rows(t.next_obs, n))
        penalty = torch.zeros((), device=t.obs.device)
        data_q = self.critic(t.obs, t.actions)
        sampled = zip(self.critic(obs_n, uniform), self.critic(obs_n, current),
                      self.critic(obs_n, following), data_q, strict=True)  # fmt: skip
        for q_uniform, q_current, q_following, q_data in sampled:
            proposals = torch.cat([q_uniform - log_uniform, q_current - log_current,
                                   q_following - log_following], dim=1)  # fmt: skip
            logsumexp = torch.logsumexp(proposals / c.cql_temp, dim=1) * c.cql_temp
            penalty = penalty + (logsumexp - q_data).mean()
        return penalty

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str
    ) -> dict[str, torch.Tensor]:
        """``L_Q``, ``L_pi`` or ``L(log_alpha)`` of the module docstring, by optimiser name."""
        t = self.transition(batch)
        if optimizer == "critic":
            td = twin_td_loss(self.critic, t, self.critic_target_value(t))
            penalty = self.conservative_penalty(t)
            return {"loss": td + self.config.cql_alpha * penalty, "td_loss": td,
                    "cql_penalty": penalty}  # fmt: skip
        if optimizer == "actor":
            action, log_prob = self.actor.sample(t.obs)
            alpha = self.log_alpha.value.exp().detach()
            q = self.critic.min(t.obs, action)
            return {"loss": (alpha * log_prob - q).mean(), "entropy": -log_prob.mean().detach()}
        with torch.no_grad():
            entropy_gap = self.actor.sample(t.obs)[1] - self.config.action_dim  # log pi + H_tgt
        return {"loss": -(self.log_alpha.value * entropy_gap).mean(),
                "alpha": self.log_alpha.value.exp().detach()}  # fmt: skip

    def act(self, obs: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
        """The tanh of the Gaussian's mean (deterministic; ``generators`` unused)."""
        return self.actor.mode(obs)
