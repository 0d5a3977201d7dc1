"""What the offline-RL learners (``iql``, ``cql``, ``td3_bc``, ``bcq``) share, written once.

- **Transitions.** One training item is ``(s, a, r, s', terminated, truncated)`` at the
  item's step: ``obs``, ``actions``, ``rewards``, ``next_obs``, ``terminations`` and
  ``truncations`` at offset 0 (:meth:`OfflineRLPolicy.batch_spec`). With ``use_failed``
  (default on) the failed demonstrations of ``mask/failed`` join the run's filter key
  (``train``): failures show the critic which actions do not lead to success.
- **Reward.** The datasets store a sparse success reward: ``r_t = 1`` at the step the task
  succeeds (which is also ``terminated``), 0 at every other step; a failed demonstration is
  ``truncated`` at the time limit with reward 0 throughout. The learners use
  ``reward_scale * r + reward_shift`` (default: ``r`` itself; ``reward_shift = -1`` is the
  IQL/CORL AntMaze variant, a cost per step until success). No dense reward is offered: the
  files store no task-progress signal to shape one from.
- **The bootstrap target** (:func:`bootstrap_target`)::

      y = r + gamma * (1 - terminated) * V(s')

  A time-limit truncation is *not* terminal: the episode was cut, the state still has a
  future, so a truncated transition bootstraps like any other (Pardo et al., "Time Limits in
  Reinforcement Learning", ICML 2018). Only ``terminated`` zeroes the future.
- **Twin critics** (:class:`TwinQ`, Fujimoto et al. 2018) and **target networks** as frozen
  copies whose weights are buffers (``ema.frozen_copy``: saved in ``model.safetensors``,
  invisible to optimisers), moved by :func:`polyak_update`
  ``theta_target <- tau * theta + (1 - tau) * theta_target`` in ``on_step_end``.
- **Action space.** Critics and actors work in normalised action units. The default
  ``action_normalization`` here is ``min_max``: it maps each action dimension's data range
  onto [-1, 1], so an actor's ``max_action * tanh(.)`` with ``max_action = 1`` spans exactly
  the range the demonstrations cover (the D4RL convention of actions in [-1, 1], which
  TD3+BC's and BCQ's ``max_action`` and CQL's uniform proposals in [-1, 1] assume). With
  ``mean_std`` a tanh bound of 1 would clip actions at one standard deviation, so
  ``max_action`` must then be raised (about 3); with ``none`` it is the env's own bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.datasets.windows import BatchSpec
from polymimic.policies.base import Policy, PolicyConfig
from polymimic.policies.bc import build_mlp
from polymimic.policies.ema import frozen_copy
from polymimic.policies.optim import OptimizerSpec, adamw_with_schedule

#: Seed of the sampling of learners that sample at evaluation (BCQ) when no generator is
#: given: every row gets its own generator with this seed, so actions are reproducible and
#: do not depend on the batch.
FIXED_EVAL_SEED = 0


@dataclasses.dataclass
class OfflineRLConfig(PolicyConfig):
    """Fields every offline-RL learner has (plus the shared fields of ``PolicyConfig``)."""

    action_normalization: str = "min_max"  # data range -> [-1, 1] (module docstring)
    hidden_dims: tuple[int, ...] = bounded((256, 256), 1, 16_384)  # critic and actor widths
    activation: str = "relu"  # hidden activation of every network (bc.build_mlp)
    discount: float = bounded(0.99, 0.0, 1.0)  # gamma of the bootstrap target
    tau: float = bounded(0.005, 0.0, 1.0)  # polyak rate of the target networks
    critic_lr: float = bounded(3e-4, 0.0, 1.0)  # Adam learning rate of the twin critic
    actor_lr: float = bounded(3e-4, 0.0, 1.0)  # Adam learning rate of the actor
    lr_schedule: str = "constant"  # of every optimiser (policies.optim.LR_SCHEDULES)
    lr_warmup_steps: int = bounded(0, 0, 10**9)  # linear warm-up steps of the schedule
    max_action: float = bounded(1.0, 1e-3, 1e3)  # tanh bound of actions, normalised units
    reward_scale: float = bounded(1.0, -1e6, 1e6)  # r <- reward_scale * r + reward_shift
    reward_shift: float = bounded(0.0, -1e6, 1e6)
    use_failed: bool = True  # also train on mask/failed (a file without that mask: set false)


class Transition(NamedTuple):
    """One batch of transitions in normalised units: obs and actions ``(B, dim)``, the rest
    ``(B,)``."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor


def bootstrap_target(
    rewards: torch.Tensor, terminations: torch.Tensor, next_value: torch.Tensor, discount: float
) -> torch.Tensor:
    """``y = r + gamma * (1 - terminated) * V(s')``, without gradient.

    Truncations are deliberately not an argument: a truncated state is not terminal.
    """
    return (rewards + discount * (1.0 - terminations) * next_value).detach()


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- tau * source + (1 - tau) * target``; ``target`` is a ``frozen_copy`` of
    ``source`` (same names, its weights are buffers)."""
    for name, param in source.named_parameters():
        target.get_buffer(name).lerp_(param.detach(), tau)


def mlp(in_dim: int, out_dim: int, config: OfflineRLConfig) -> nn.Sequential:
    """An MLP with the config's hidden widths and activation (no dropout: off-policy targets
    from a dropout network would be noisy)."""
    return build_mlp(in_dim, tuple(config.hidden_dims), out_dim, config.activation, 0.0)


class TwinQ(nn.Module):
    """Two independent critics ``Q_1, Q_2 : (s, a) -> R`` (clipped double Q-learning)."""

    def __init__(self, obs_dim: int, action_dim: int, config: OfflineRLConfig) -> None:
        super().__init__()
        self.q1 = mlp(obs_dim + action_dim, 1, config)
        self.q2 = mlp(obs_dim + action_dim, 1, config)

    def forward(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., obs_dim)``, ``(..., action_dim)`` -> ``Q_1, Q_2`` of shape ``(...)``."""
        x = torch.cat([obs, actions], dim=-1)
        return self.q1(x)[..., 0].float(), self.q2(x)[..., 0].float()

    def min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``min(Q_1, Q_2)``: the pessimistic estimate."""
        return torch.minimum(*self(obs, actions))


def twin_td_loss(critic: TwinQ, t: Transition, y: torch.Tensor) -> torch.Tensor:
    """``sum_i E[(Q_i(s, a) - y)^2]`` of both critics against one target."""
    q1, q2 = critic(t.obs, t.actions)
    return (q1 - y).square().mean() + (q2 - y).square().mean()


def repeat_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """``(B, d)`` -> ``(B, n, d)``: each row ``n`` times (candidate actions per state)."""
    return x[:, None].expand(-1, n, -1)


def per_row_normals(
    rows: int, shape: tuple[int, ...], generators: Sequence[torch.Generator] | None,
    device: torch.device,
) -> torch.Tensor:  # fmt: skip
    """``(rows, *shape)`` standard normals, row i from ``generators[i]``, or from a generator
    seeded ``FIXED_EVAL_SEED`` per row when none are given (so a row's draws never depend on
    the batch, and a reloaded policy draws the same)."""
    if generators is None:
        generators = [torch.Generator().manual_seed(FIXED_EVAL_SEED) for _ in range(rows)]
    if len(generators) != rows:
        raise ValueError(f"got {len(generators)} generators for {rows} rows")
    draws = [torch.randn(shape, generator=g, device=g.device) for g in generators]
    return torch.stack(draws).to(device)


class OfflineRLPolicy(Policy):
    """Base of the offline-RL learners: the transition batch, its normalisation, target
    networks, the optimiser helper and the deterministic evaluation action.

    Subclasses hold ``critic`` (a :class:`TwinQ`) and ``critic_target`` (its
    :func:`target_copy`) and implement ``configure_optimizers``, ``compute_loss`` and
    :meth:`act` (normalised observation -> normalised evaluation action).
    """

    def __init__(self, config: OfflineRLConfig) -> None:
        """Raises ValueError for windows: these learners are Markov, one step in, one out."""
        super().__init__(config)
        if (config.obs_horizon, config.action_horizon, config.n_action_steps) != (1, 1, 1):
            raise ValueError(
                f"{self.name} learns from single transitions: obs_horizon, action_horizon "
                "and n_action_steps must be 1"
            )
        self.config: OfflineRLConfig = config

    def batch_spec(self) -> BatchSpec:
        """``(s, a, r, s', terminated, truncated)`` at the step; failures with ``use_failed``."""
        keys = ("obs", "actions", "rewards", "next_obs", "terminations", "truncations")
        extra = ("failed",) if self.config.use_failed else ()
        return BatchSpec({key: (0,) for key in keys}, extra_masks=extra)

    def transition(self, batch: dict[str, torch.Tensor]) -> Transition:
        """The batch's transitions, observations and actions normalised, rewards scaled."""
        c = self.config
        return Transition(
            obs=self.normalize_obs(batch["obs"][:, 0]),
            actions=self.normalize_action(batch["actions"][:, 0]),
            rewards=c.reward_scale * batch["rewards"][:, 0] + c.reward_shift,
            next_obs=self.normalize_obs(batch["next_obs"][:, 0]),
            terminations=batch["terminations"][:, 0],
        )

    def optimizer(
        self, name: str, module: nn.Module, lr: float, num_training_steps: int, every: int = 1,
        schedule: str | None = None,
    ) -> OptimizerSpec:  # fmt: skip
        """Adam (AdamW without decay) over ``module`` with the config's schedule."""
        c = self.config
        return adamw_with_schedule(
            name, module.parameters(), lr, 0.0, schedule or c.lr_schedule, c.lr_warmup_steps,
            num_training_steps, every=every,
        )  # fmt: skip

    def on_step_end(self, step: int) -> None:
        """Polyak update of the target critic after every step (``self.critic_target``
        follows ``self.critic``); learners with more targets or a cadence override it."""
        polyak_update(self.critic_target, self.critic, self.config.tau)

    def act(self, obs: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
        """``(N, obs_dim)`` normalised observations -> ``(N, action_dim)`` normalised
        evaluation actions."""
        raise NotImplementedError

    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """(N, 1, obs_dim) raw -> (N, 1, action_dim) raw: the deterministic evaluation action."""
        action = self.act(self.normalize_obs(obs_window[:, -1]), generators)
        return self.unnormalize_action(action.float())[:, None]


def target_copy(network: nn.Module) -> nn.Module:
    """A target network: a frozen copy of ``network`` (weights as buffers, no gradients)."""
    return frozen_copy(network)


def tanh_bound(x: torch.Tensor, max_action: float) -> torch.Tensor:
    """``max_action * tanh(x)``: actions inside the normalised box."""
    return max_action * torch.tanh(x)

