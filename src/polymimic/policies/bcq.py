"""Batch-Constrained deep Q-learning (Fujimoto, Meger & Precup, "Off-Policy Deep Reinforcement
Learning without Exploration", ICML 2019), continuous BCQ as the authors' reference code.

A conditional VAE ``G_omega = (E_omega, D_omega)`` models the data's actions; the policy only
picks among its samples, nudged by a small perturbation ``xi_phi``; twin critics
``Q_theta1,2`` and target copies ``xi_phi'``, ``Q_theta'``. On transitions ``(s, a, r, s', d)``::

    L_VAE(omega) = E[(D_omega(s, z) - a)^2] + 1/2 KL(N(mu, sigma^2) || N(0, I)),
                   (mu, sigma) = E_omega(s, a),  z ~ N(mu, sigma^2)
    xi_phi(s, a) = Phi * max_action * tanh(f_phi(s, a)),
    pi(s)        = argmax_{a_i + xi_phi(s, a_i)} Q_theta1(s, .),  a_i = D_omega(s, z_i),
                   z_i ~ clip(N(0, I), -0.5, 0.5), i = 1..n         (the evaluation action)
    y            = r + gamma (1 - d) max_{a_i} [ lambda min_j Q_theta'_j(s', a~_i)
                                                 + (1 - lambda) max_j Q_theta'_j(s', a~_i) ],
                   a~_i = clip(a_i + xi_phi'(s', a_i), -max_action, max_action), a_i ~ G(s')
    L_Q(theta)   = sum_j E[(Q_theta_j(s, a) - y)^2]
    L_xi(phi)    = -E[ Q_theta1(s, clip(a + xi_phi(s, a))) ],  a = D_omega(s, z)
    theta' <- tau theta + (1 - tau) theta',  phi' <- tau phi + (1 - tau) phi'   (every step)

``lambda`` (soft clipped double Q) trades the pessimism of the minimum against its bias.
The evaluation action draws its latents from the environment's ``torch.Generator`` when one
is given, else from a generator seeded ``offline_rl.FIXED_EVAL_SEED`` per environment, so a
saved and reloaded policy acts the same.

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
from polymimic.policies.bc import build_mlp
from polymimic.policies.offline_rl import (
    OfflineRLConfig,
    OfflineRLPolicy,
    Transition,
    TwinQ,
    bootstrap_target,
    mlp,
    per_row_normals,
    polyak_update,
    repeat_rows,
    tanh_bound,
    target_copy,
    twin_td_loss,
)
from polymimic.policies.optim import OptimizerSpec

LATENT_CLIP = 0.5  # |z| bound of prior samples (reference code)
LOG_STD_RANGE = (-4.0, 15.0)  # clamp of the encoder's log std (reference code)


@dataclasses.dataclass
class BCQConfig(OfflineRLConfig):
    """Configuration of :class:`BCQPolicy` (plus the shared offline-RL fields)."""

    vae_hidden_dims: tuple[int, ...] = bounded((750, 750), 1, 16_384)  # encoder and decoder
    vae_lr: float = bounded(1e-3, 0.0, 1.0)  # Adam learning rate of the VAE
    kl_weight: float = bounded(0.5, 0.0, 1e3)  # weight of the KL term of L_VAE
    phi: float = bounded(0.05, 0.0, 1.0)  # perturbation range Phi, x max_action
    lmbda: float = bounded(0.75, 0.0, 1.0)  # lambda of the soft clipped double-Q target
    n_train_candidates: int = bounded(10, 1, 4096)  # VAE samples per s' in the target
    n_eval_candidates: int = bounded(100, 1, 4096)  # VAE samples per s at evaluation


PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # BCQ paper (implementation details) / reference code: actor and critics 400-300,
        # VAE 750-750
        "hidden_dims": (400, 300),
        "vae_hidden_dims": (750, 750),
        # reference code: Adam lr 1e-3 for actor, critic and VAE
        "actor_lr": 1e-3,
        "critic_lr": 1e-3,
        "vae_lr": 1e-3,
        # same: discount 0.99, tau 0.005, lambda 0.75, Phi 0.05, n = 10 (train);
        # reference code: 100 candidates in select_action; KL weight 0.5 in the VAE loss
        "discount": 0.99,
        "tau": 0.005,
        "lmbda": 0.75,
        "phi": 0.05,
        "n_train_candidates": 10,
        "n_eval_candidates": 100,
        "kl_weight": 0.5,
    },
    "cpu_small": {
        # 256-256 networks everywhere: the VAE at 750-750 would dominate a CPU step
        "hidden_dims": (256, 256),
        "vae_hidden_dims": (256, 256),
        "actor_lr": 1e-3,
        "critic_lr": 1e-3,
        "vae_lr": 1e-3,
    },
}


class ConditionalVAE(nn.Module):
    """``E(s, a) -> (mu, log sigma)`` and ``D(s, z) -> max_action * tanh(.)``, latent 2A."""

    def __init__(self, obs_dim: int, action_dim: int, config: BCQConfig) -> None:
        super().__init__()
        hidden, act = tuple(config.vae_hidden_dims), config.activation
        self.latent_dim = 2 * action_dim
        self.encoder = build_mlp(obs_dim + action_dim, hidden, 2 * self.latent_dim, act, 0.0)
        self.decoder = build_mlp(obs_dim + self.latent_dim, hidden, action_dim, act, 0.0)
        self.max_action = config.max_action

    def decode(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return tanh_bound(self.decoder(torch.cat([obs, z], dim=-1)).float(), self.max_action)

    def sample(self, obs: torch.Tensor, normals: torch.Tensor | None = None) -> torch.Tensor:
        """Actions from the prior, ``z ~ clip(N(0, I), -0.5, 0.5)``; ``normals`` supplies
        the draws (evaluation), else the global RNG does (training)."""
        if normals is None:
            normals = torch.randn(*obs.shape[:-1], self.latent_dim, device=obs.device)
        return self.decode(obs, normals.clamp(-LATENT_CLIP, LATENT_CLIP))

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, kl_weight: float
    ) -> dict[str, torch.Tensor]:
        """``L_VAE``: reconstruction MSE plus ``kl_weight`` times the KL to N(0, I)."""
        mean, log_std = self.encoder(torch.cat([obs, actions], dim=-1)).float().chunk(2, dim=-1)
        log_std = log_std.clamp(*LOG_STD_RANGE)
        z = mean + log_std.exp() * torch.randn_like(mean)
        recon = (self.decode(obs, z) - actions).square().mean()
        kl = -0.5 * (1.0 + 2.0 * log_std - mean.square() - (2.0 * log_std).exp()).mean()
        return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}


class Perturbation(nn.Module):
    """``clip(a + Phi * max_action * tanh(f(s, a)), -max_action, max_action)``."""

    def __init__(self, obs_dim: int, action_dim: int, config: BCQConfig) -> None:
        super().__init__()
        self.net = mlp(obs_dim + action_dim, action_dim, config)
        self.phi, self.max_action = config.phi, config.max_action

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        xi = tanh_bound(
            self.net(torch.cat([obs, actions], dim=-1)).float(), self.phi * self.max_action
        )
        return (actions + xi).clamp(-self.max_action, self.max_action)


@register_policy
class BCQPolicy(OfflineRLPolicy):
    """Batch-constrained Q-learning: perturbed VAE samples, the best by the critic."""

    name = "bcq"
    config_class = BCQConfig
    presets = PRESETS

    def __init__(self, config: BCQConfig) -> None:
        super().__init__(config)
        self.config: BCQConfig = config
        self.vae = ConditionalVAE(config.obs_dim, config.action_dim, config)
        self.critic = TwinQ(config.obs_dim, config.action_dim, config)
        self.critic_target = target_copy(self.critic)
        self.actor = Perturbation(config.obs_dim, config.action_dim, config)
        self.actor_target = target_copy(self.actor)

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """VAE, critic, perturbation: every step, in the reference code's order."""
        c = self.config
        return [
            self.optimizer("vae", self.vae, c.vae_lr, num_training_steps),
            self.optimizer("critic", self.critic, c.critic_lr, num_training_steps),
            self.optimizer("actor", self.actor, c.actor_lr, num_training_steps),
        ]

    def critic_target_value(self, t: Transition) -> torch.Tensor:
        """``y`` of the module docstring: the best of n perturbed VAE samples at ``s'``."""
        c = self.config
        with torch.no_grad():
            next_obs = repeat_rows(t.next_obs, c.n_train_candidates)  # (B, n, obs_dim)
            candidates = self.actor_target(next_obs, self.vae.sample(next_obs))
            q1, q2 = self.critic_target(next_obs, candidates)  # (B, n)
            soft_min = c.lmbda * torch.minimum(q1, q2) + (1.0 - c.lmbda) * torch.maximum(q1, q2)
            return bootstrap_target(t.rewards, t.terminations, soft_min.amax(dim=1), c.discount)

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str
    ) -> dict[str, torch.Tensor]:
        """``L_VAE``, ``L_Q`` or ``L_xi`` of the module docstring, by optimiser name."""
        t = self.transition(batch)
        if optimizer == "vae":
            return self.vae.loss(t.obs, t.actions, self.config.kl_weight)
        if optimizer == "critic":
            td = twin_td_loss(self.critic, t, self.critic_target_value(t))
            return {"loss": td, "td_loss": td}
        with torch.no_grad():
            sampled = self.vae.sample(t.obs)
        q1 = self.critic.q1(torch.cat([t.obs, self.actor(t.obs, sampled)], dim=-1))
        return {"loss": -q1.float().mean()}

    def on_step_end(self, step: int) -> None:
        """Polyak update of the target critic and perturbation after every step."""
        polyak_update(self.critic_target, self.critic, self.config.tau)
        polyak_update(self.actor_target, self.actor, self.config.tau)

    def act(self, obs: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
        """The perturbed VAE sample with the highest ``Q_theta1`` among ``n_eval_candidates``;
        row i's latents come from ``generators[i]`` (a fixed seed without generators)."""
        n = self.config.n_eval_candidates
        normals = per_row_normals(len(obs), (n, self.vae.latent_dim), generators, obs.device)
        obs_n = repeat_rows(obs, n)
        candidates = self.actor(obs_n, self.vae.sample(obs_n, normals))  # (N, n, A)
        best = self.critic.q1(torch.cat([obs_n, candidates], dim=-1))[..., 0].argmax(dim=1)
        return candidates[torch.arange(len(obs), device=obs.device), best]
