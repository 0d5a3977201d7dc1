"""What every diffusion learner shares: noise schedules, training loss, sampling, EMA, chunks.

Diffusion Policy (Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action
Diffusion", RSS 2023) models the distribution of an action sequence given recent
observations with a denoising diffusion model (DDPM, Ho et al., NeurIPS 2020). With
normalised actions ``A^0`` (Tp steps), the observation window ``O`` (To steps), a noise
schedule ``alpha_bar_k`` (``squaredcos_cap_v2``: Nichol & Dhariwal's cosine schedule, K = 100
training steps) and a denoiser ``eps_theta`` (a 1-D temporal U-Net in ``diffusion``, a
transformer in ``diffusion_transformer``)::

    training:  k ~ U{0..K-1},  eps ~ N(0, I),
               A^k = sqrt(alpha_bar_k) A^0 + sqrt(1 - alpha_bar_k) eps
               loss = || eps - eps_theta(A^k, k, O) ||^2        (prediction_type "epsilon")
    sampling:  A^K ~ N(0, I), then K' scheduler steps A^k -> A^(k-1) using eps_theta,
               predicted A^0 clipped to [-1, 1] (clip_sample)

Training uses diffusers' ``DDPMScheduler``; sampling uses ``DDIMScheduler.from_config`` of
that same scheduler (Song et al., ICLR 2021), so betas, clipping and prediction type cannot
drift apart; DDIM with ``num_inference_steps`` = 10 is the default (deterministic given the
initial noise), ``sampler="ddpm"`` with ``num_inference_steps=100`` is the paper's DDPM-100.
Actions are normalised with ``min_max`` (to [-1, 1], what the clipping assumes).

**The chunk's window.** One training item is observations at offsets ``1-To .. 0`` and
actions at ``1-To .. Tp-To`` relative to its step t (``batch_spec``): the action window starts
at the *first observed step*, as the paper's ``horizon`` window does, so its first To-1
actions are ones already taken and ``A[To-1]`` is the action at t. At inference the sampled
window is cut at the same place: ``predict_chunk`` returns ``A[To-1:]`` (Tp-To+1 actions,
the first one for the current step), the base class executes its first ``n_action_steps``
(Ta, the paper's receding horizon: To=2, Tp=16, Ta=8 means actions t .. t+7 of a window
t-1 .. t+14) and samples again. Frames outside an episode repeat its first/last frame (the
dataset's padding, as the paper's sampler pads).

**Randomness.** The initial noise (and DDPM's per-step noise) of row i is drawn from the
i-th ``torch.Generator`` passed to ``predict_chunk`` (diffusers' ``randn_tensor`` with a list
of generators), so an environment's actions do not depend on its batch neighbours.

**EMA and evaluation.** The denoiser's weights are averaged with diffusers' ``EMAModel``
(power 0.75, as the paper) in ``on_step_end``; ``policies.ema`` keeps the average as
buffers, so ``model.safetensors`` holds both the raw weights (to resume) and the EMA ones,
and sampling always uses the EMA weights. polymimic's evaluation rule: the last checkpoint
is evaluated, with its EMA weights where the learner keeps an EMA, never a checkpoint chosen
by rollout success.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor
from torch import nn
from torch.nn import functional

from polymimic.config.values import bounded
from polymimic.datasets.windows import BatchSpec
from polymimic.policies.base import MAX_HORIZON, Policy, PolicyConfig
from polymimic.policies.ema import EMAWeights
from polymimic.policies.optim import OptimizerSpec, adamw_with_schedule

SAMPLERS = ("ddim", "ddpm")
PREDICTION_TYPES = ("epsilon", "sample")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
MAX_DIFFUSION_STEPS = 10_000


@dataclasses.dataclass
class DiffusionBaseConfig(PolicyConfig):
    """Fields every diffusion learner has (plus ``PolicyConfig``'s); defaults are the paper's."""

    obs_horizon: int = bounded(2, 1, MAX_HORIZON)  # To: observations conditioning a sample
    action_horizon: int = bounded(16, 1, MAX_HORIZON)  # Tp: actions one sample spans, from t-To+1
    n_action_steps: int = bounded(8, 1, MAX_HORIZON)  # Ta: executed per sample; <= Tp-To+1
    obs_normalization: str = "min_max"  # the paper normalises observations to [-1, 1] too
    action_normalization: str = "min_max"  # must be min_max with clip_sample (clips to [-1, 1])
    num_train_timesteps: int = bounded(100, 1, MAX_DIFFUSION_STEPS)  # K (paper: 100)
    beta_schedule: str = "squaredcos_cap_v2"  # linear, scaled_linear or squaredcos_cap_v2
    clip_sample: bool = True  # clip the predicted clean actions to [-1, 1] (paper: True)
    prediction_type: str = "epsilon"  # what the denoiser predicts: epsilon (noise) or sample
    sampler: str = "ddim"  # ddim or ddpm, built from the training scheduler's config
    num_inference_steps: int = bounded(10, 1, MAX_DIFFUSION_STEPS)  # denoising steps per sample
    ema_power: float = bounded(0.75, 0.0, 10.0)  # EMA warm-up exponent (paper: 0.75)
    ema_max_decay: float = bounded(0.9999, 0.0, 1.0)  # EMA decay ceiling (paper: 0.9999)
    lr: float = bounded(1e-4, 0.0, 1.0)  # AdamW learning rate (paper: 1e-4)
    weight_decay: float = bounded(1e-6, 0.0, 1.0)  # AdamW decoupled weight decay
    adam_betas: tuple[float, ...] = bounded((0.95, 0.999), 0.0, 1.0, high_open=True)  # 2 values
    lr_schedule: str = "cosine"  # constant, constant_with_warmup, linear or cosine
    lr_warmup_steps: int = bounded(500, 0, 10**9)  # linear warm-up steps (paper: 500)


def check_diffusion_config(config: DiffusionBaseConfig) -> None:
    """Raise ValueError for settings that cannot work together (before building anything)."""
    c = config
    problems = []
    if c.obs_dim <= 0 or c.action_dim <= 0:
        problems.append(f"obs_dim and action_dim must be > 0 (got {c.obs_dim}, {c.action_dim}); "
                        "fill them from the dataset before building the policy")  # fmt: skip
    if c.action_horizon < c.obs_horizon:
        problems.append(f"action_horizon ({c.action_horizon}) must be >= obs_horizon "
                        f"({c.obs_horizon}): the window starts at the first observed step")  # fmt: skip
    elif c.n_action_steps > c.action_horizon - c.obs_horizon + 1:
        problems.append(f"n_action_steps ({c.n_action_steps}) exceeds the "
                        f"{c.action_horizon - c.obs_horizon + 1} actions from the current step "
                        "on (action_horizon - obs_horizon + 1)")  # fmt: skip
    for field, value, allowed in (("sampler", c.sampler, SAMPLERS),
                                  ("prediction_type", c.prediction_type, PREDICTION_TYPES),
                                  ("beta_schedule", c.beta_schedule, BETA_SCHEDULES)):  # fmt: skip
        if value not in allowed:
            problems.append(f"{field} {value!r} is not one of {allowed}")
    if c.clip_sample and c.action_normalization != "min_max":
        problems.append("clip_sample clips actions to [-1, 1]: it needs action_normalization "
                        "min_max")  # fmt: skip
    if c.num_inference_steps > c.num_train_timesteps:
        problems.append(f"num_inference_steps ({c.num_inference_steps}) exceeds "
                        f"num_train_timesteps ({c.num_train_timesteps})")  # fmt: skip
    if len(c.adam_betas) != 2:
        problems.append(f"adam_betas needs 2 values, got {list(c.adam_betas)}")
    if problems:
        raise ValueError(f"{type(c).__name__}: " + "; ".join(problems))


class SinusoidalEmbedding(nn.Module):
    """The diffusion step k as a ``dim``-wide vector of sines and cosines at geometrically
    spaced frequencies (Vaswani et al., 2017; the paper's ``SinusoidalPosEmb``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"a sinusoidal embedding needs an even width >= 4, got {dim}")
        self.dim = dim

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        rates = torch.exp(torch.arange(half, device=steps.device) * -(math.log(10000) / (half - 1)))
        angles = steps.float()[:, None] * rates[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


def make_schedulers(config: DiffusionBaseConfig) -> tuple[DDPMScheduler, DDIMScheduler | DDPMScheduler]:
    """The training scheduler (DDPM) and the sampler built from *its* config, on the CPU."""
    with torch.device("cpu"):  # not on the meta device a checkpoint's skeleton is built on
        training = DDPMScheduler(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            variance_type="fixed_small",  # the paper's (its note: fixed_small_log can NaN)
            clip_sample=config.clip_sample,
            prediction_type=config.prediction_type,
        )
        sampler_class = DDIMScheduler if config.sampler == "ddim" else DDPMScheduler
        sampling = sampler_class.from_config(training.config)
    return training, sampling


class DiffusionBasePolicy(Policy):
    """A conditional action-sequence diffusion learner; subclasses supply the denoiser.

    ``make_denoiser(config)`` returns a module mapping ``(noisy actions (B, Tp, A), diffusion
    steps (B,), normalised observation window (B, To, obs_dim))`` to ``(B, Tp, A)``.
    """

    config_class = DiffusionBaseConfig

    def __init__(self, config: DiffusionBaseConfig) -> None:
        """Build the denoiser, its EMA and the two schedulers; raises ValueError for a config
        whose settings do not fit together."""
        check_diffusion_config(config)
        super().__init__(config)
        self.config: DiffusionBaseConfig = config
        self.denoiser = self.make_denoiser(config)
        self.ema = EMAWeights(self.denoiser, config.ema_power, config.ema_max_decay)
        self.noise_scheduler, self.inference_scheduler = make_schedulers(config)

    def use_sampler(self, sampler: str, num_inference_steps: int) -> None:
        """Sample with ``sampler`` (``ddim``/``ddpm``) in ``num_inference_steps`` steps from now on.

        The sampler is rebuilt from the *training* scheduler's config
        (``DDIMScheduler.from_config(ddpm.config)``), so the noise schedule, clipping and
        prediction type match what the denoiser learned; only the sampling changes. The
        config is updated too, so an evaluation records what sampled. Raises ValueError for
        an unknown sampler or more steps than the training schedule has.
        """
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        config = dataclasses.replace(
            self.config, sampler=sampler, num_inference_steps=num_inference_steps
        )
        check_diffusion_config(config)
        self.config = config
        _, self.inference_scheduler = make_schedulers(config)

    def make_denoiser(self, config: DiffusionBaseConfig) -> nn.Module:
        raise NotImplementedError

    # --- training -----------------------------------------------------------------------
    def batch_spec(self) -> BatchSpec:
        """Observations ``1-To .. 0`` and actions ``1-To .. Tp-To`` (see the module docstring)."""
        to, tp = self.config.obs_horizon, self.config.action_horizon
        return BatchSpec({"obs": tuple(range(1 - to, 1)), "actions": tuple(range(1 - to, tp - to + 1))})

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """One AdamW over the denoiser's parameters, with the config's schedule."""
        c = self.config
        return [
            adamw_with_schedule(
                "main", self.optimizer_params(), c.lr, c.weight_decay, c.lr_schedule,
                c.lr_warmup_steps, num_training_steps, betas=tuple(c.adam_betas),
            )
        ]  # fmt: skip

    def optimizer_params(self) -> list:
        """What the optimiser updates (every denoiser parameter; the transformer groups them)."""
        return list(self.denoiser.parameters())

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str = "main"
    ) -> dict[str, torch.Tensor]:
        """Denoising loss at a random diffusion step per item (module docstring), normalised."""
        clean = self.normalize_action(batch["actions"])
        obs = self.normalize_obs(batch["obs"])
        noise = torch.randn_like(clean)
        steps = torch.randint(0, self.config.num_train_timesteps, (len(clean),), device=clean.device)
        noisy = self.noise_scheduler.add_noise(clean, noise, steps)
        predicted = self.denoiser(noisy, steps, obs)
        target = noise if self.config.prediction_type == "epsilon" else clean
        return {"loss": functional.mse_loss(predicted.float(), target)}

    def on_step_end(self, step: int) -> None:
        """Move the EMA weights towards the just-updated ones."""
        self.ema.update(self.denoiser, step)

    # --- inference ----------------------------------------------------------------------
    def sample(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None,
        denoiser: nn.Module | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Raw ``(N, To, obs_dim)`` -> a whole normalised window ``(N, Tp, A)``, sampled with
        ``denoiser`` (default: the EMA weights); row i's noise from ``generators[i]``."""
        denoiser = self.ema if denoiser is None else denoiser
        obs = self.normalize_obs(obs_window)
        shape = (len(obs), self.config.action_horizon, self.config.action_dim)
        gens = None if generators is None else list(generators)
        actions = randn_tensor(shape, generator=gens, device=obs.device, dtype=torch.float32)
        scheduler = self.inference_scheduler
        scheduler.set_timesteps(self.config.num_inference_steps)
        for step in scheduler.timesteps:
            steps = step.to(obs.device).expand(len(obs))
            predicted = denoiser(actions, steps, obs).float()
            actions = scheduler.step(predicted, step, actions, generator=gens).prev_sample
        return actions

    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """(N, To, obs_dim) raw -> (N, Tp-To+1, action_dim) raw: the sampled window from the
        current step on (its first To-1 actions are the past the observations cover)."""
        window = self.sample(obs_window, generators)
        return self.unnormalize_action(window[:, self.config.obs_horizon - 1 :])
