"""Diffusion Policy with the 1-D temporal convolutional U-Net (Chi et al., RSS 2023).

Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action Diffusion" (RSS 2023),
the CNN-based variant (``ConditionalUnet1D`` in the authors' code). The diffusion machinery
(training loss, DDPM/DDIM schedulers, sampling, the chunk window, per-environment noise,
EMA, and the rule that the last checkpoint's EMA weights are what is evaluated) is shared
with ``diffusion_transformer`` in ``policies.diffusion_base``; this file is the denoiser.

The denoiser convolves over *time*: a noisy action window ``(Tp, A)`` is a 1-D signal with A
channels. A U-Net (Ronneberger et al., 2015; Janner et al.'s Diffuser, 2022, for
trajectories) encodes it at ``len(down_dims)`` temporal resolutions, halving the length
between levels, and decodes it back with skip connections. Every residual block is::

    h   = Mish(GroupNorm(Conv1d(x)))                         (kernel_size, n_groups)
    h   = gamma(c) * h + beta(c)                             FiLM (Perez et al., 2018)
    out = Mish(GroupNorm(Conv1d(h))) + Conv1x1(x)
    c   = [MLP(sinusoid(k)), flatten(norm(O))]               diffusion step + To observations

so the observations and the diffusion step condition every block (the paper's
``obs_as_global_cond`` with ``cond_predict_scale``). As in the authors' code, the finest
level's skip connection is not used (the decoder has one level fewer than the encoder) and
``Tp`` must be divisible by ``2 ** (len(down_dims) - 1)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.policies.base import register_policy
from polymimic.policies.diffusion_base import (
    DiffusionBaseConfig,
    DiffusionBasePolicy,
    SinusoidalEmbedding,
)

MAX_WIDTH = 16_384


@dataclasses.dataclass
class DiffusionConfig(DiffusionBaseConfig):
    """Configuration of :class:`DiffusionPolicy`: the shared diffusion fields plus the U-Net's."""

    down_dims: tuple[int, ...] = bounded((256, 512, 1024), 1, MAX_WIDTH)  # channels per level
    kernel_size: int = bounded(5, 1, 63)  # temporal convolution width (odd keeps the length)
    n_groups: int = bounded(8, 1, 1024)  # GroupNorm groups; must divide every down_dims entry
    diffusion_step_embed_dim: int = bounded(256, 4, MAX_WIDTH)  # even; width of k's embedding


# Named configs (``policy=diffusion/<name>``), each value with its source.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # Chi et al. 2023, state-based Push-T (authors' config
        # train_diffusion_unet_lowdim_workspace.yaml with task pusht_lowdim): horizon 16,
        # n_obs_steps 2, n_action_steps 8; ConditionalUnet1D down_dims [256, 512, 1024],
        # kernel_size 5, n_groups 8, diffusion_step_embed_dim 256, cond_predict_scale True
        "obs_horizon": 2,
        "action_horizon": 16,
        "n_action_steps": 8,
        "down_dims": (256, 512, 1024),
        "kernel_size": 5,
        "n_groups": 8,
        "diffusion_step_embed_dim": 256,
        # same config: DDPMScheduler(100 steps, squaredcos_cap_v2, clip_sample, epsilon);
        # the paper evaluates DDPM-100 (num_inference_steps 100); 10 DDIM steps are the
        # speed-up the paper reports for real-robot runs and polymimic's default
        "num_train_timesteps": 100,
        "beta_schedule": "squaredcos_cap_v2",
        "clip_sample": True,
        "prediction_type": "epsilon",
        "sampler": "ddim",
        "num_inference_steps": 10,
        # same config: EMAModel power 0.75, max_value 0.9999; AdamW lr 1e-4, betas
        # (0.95, 0.999), weight_decay 1e-6; cosine schedule with 500 warm-up steps
        "ema_power": 0.75,
        "ema_max_decay": 0.9999,
        "lr": 1e-4,
        "adam_betas": (0.95, 0.999),
        "weight_decay": 1e-6,
        "lr_schedule": "cosine",
        "lr_warmup_steps": 500,
        # the paper's LinearNormalizer maps observations and actions to [-1, 1]
        "obs_normalization": "min_max",
        "action_normalization": "min_max",
    },
    "cpu_small": {
        # the paper's horizons, schedule and optimiser with a U-Net of 1/8 the channels
        # (issue 17: "a small U-Net such as (32, 64, 128)") and a 64-wide step embedding,
        # so that it trains on 2 CPU cores
        "obs_horizon": 2,
        "action_horizon": 16,
        "n_action_steps": 8,
        "down_dims": (32, 64, 128),
        "kernel_size": 5,
        "n_groups": 8,
        "diffusion_step_embed_dim": 64,
        "num_train_timesteps": 100,
        "sampler": "ddim",
        "num_inference_steps": 10,
        "lr": 1e-4,
        "adam_betas": (0.95, 0.999),
        "weight_decay": 1e-6,
        "lr_schedule": "cosine",
        "lr_warmup_steps": 500,
    },
}


class Conv1dBlock(nn.Sequential):
    """Conv1d (length-preserving) -> GroupNorm -> Mish."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int) -> None:
        super().__init__(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )


class ConditionalResidualBlock1D(nn.Module):
    """Two Conv1dBlocks with a FiLM of the conditioning vector between them, plus a residual."""

    def __init__(
        self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int, n_groups: int
    ) -> None:
        super().__init__()
        self.conv1 = Conv1dBlock(in_channels, out_channels, kernel_size, n_groups)
        self.conv2 = Conv1dBlock(out_channels, out_channels, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_channels))
        self.residual = (
            nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C_in, T), ``cond`` (B, cond_dim) -> (B, C_out, T)."""
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)  # per-channel, all steps
        return self.conv2(scale * self.conv1(x) + bias) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """The paper's 1-D temporal U-Net denoiser (module docstring)."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        c = config
        dims, embed = [c.action_dim, *c.down_dims], c.diffusion_step_embed_dim
        self.step_encoder = nn.Sequential(
            SinusoidalEmbedding(embed), nn.Linear(embed, 4 * embed), nn.Mish(),
            nn.Linear(4 * embed, embed),
        )  # fmt: skip
        cond_dim = embed + c.obs_horizon * c.obs_dim

        def block(cin: int, cout: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(cin, cout, cond_dim, c.kernel_size, c.n_groups)

        levels = list(zip(dims[:-1], dims[1:], strict=True))
        self.down = nn.ModuleList(
            nn.ModuleList([block(cin, cout), block(cout, cout),
                           nn.Conv1d(cout, cout, 3, stride=2, padding=1)  # halves the length
                           if i < len(levels) - 1 else nn.Identity()])
            for i, (cin, cout) in enumerate(levels)
        )  # fmt: skip
        self.mid = nn.ModuleList([block(dims[-1], dims[-1]), block(dims[-1], dims[-1])])
        self.up = nn.ModuleList(
            nn.ModuleList([block(2 * cout, cin), block(cin, cin),
                           nn.ConvTranspose1d(cin, cin, 4, stride=2, padding=1)])  # doubles it
            for cin, cout in reversed(levels[1:])
        )  # fmt: skip
        width = c.down_dims[0]
        self.final = nn.Sequential(
            Conv1dBlock(width, width, c.kernel_size, c.n_groups), nn.Conv1d(width, c.action_dim, 1)
        )

    def forward(self, actions: torch.Tensor, steps: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Noisy actions (B, Tp, A), diffusion steps (B,), normalised obs (B, To, obs_dim)
        -> the predicted noise (or clean actions) (B, Tp, A)."""
        cond = torch.cat([self.step_encoder(steps), obs.flatten(start_dim=1)], dim=-1)
        x, skips = actions.transpose(1, 2), []  # channels = action dims, length = time
        for first, second, downsample in self.down:
            x = second(first(x, cond), cond)
            skips.append(x)
            x = downsample(x)
        for middle in self.mid:
            x = middle(x, cond)
        for first, second, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(second(first(x, cond), cond))
        return self.final(x).transpose(1, 2)


@register_policy
class DiffusionPolicy(DiffusionBasePolicy):
    """Diffusion Policy with the 1-D temporal conditional U-Net denoiser."""

    name = "diffusion"
    config_class = DiffusionConfig
    presets = PRESETS

    def make_denoiser(self, config: DiffusionConfig) -> ConditionalUnet1D:  # type: ignore[override]
        """The U-Net the config describes; raises ValueError for sizes that cannot fit."""
        if not config.down_dims:
            raise ValueError("down_dims needs at least one level")
        reduction = 2 ** (len(config.down_dims) - 1)
        if config.action_horizon % reduction:
            raise ValueError(
                f"action_horizon ({config.action_horizon}) must be divisible by {reduction} "
                f"(2 ** (len(down_dims) - 1)) for {len(config.down_dims)} U-Net levels"
            )
        if any(width % config.n_groups for width in config.down_dims):
            raise ValueError(f"n_groups ({config.n_groups}) must divide every down_dims entry "
                             f"{list(config.down_dims)}")  # fmt: skip
        if config.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size ({config.kernel_size}) must be odd")
        if config.diffusion_step_embed_dim % 2:
            raise ValueError("diffusion_step_embed_dim must be even")
        return ConditionalUnet1D(config)
