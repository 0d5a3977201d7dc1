"""Diffusion Policy with the time-series diffusion transformer (Chi et al., RSS 2023).

Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action Diffusion" (RSS 2023),
the transformer-based variant (``TransformerForDiffusion`` in the authors' code), which the
paper proposes against the CNN's over-smoothing on tasks with fast action changes. The
diffusion machinery (loss, DDPM/DDIM schedulers, sampling, chunk window, per-environment
noise, EMA, evaluation with the last checkpoint's EMA weights) is ``policies.diffusion_base``,
shared with the U-Net learner ``diffusion``; this file is the denoiser.

Tokens (width E = ``n_emb``)::

    memory:  m = MLP(Dropout([sinusoid(k); W_o norm(o_1) .. W_o norm(o_To)] + q))
             (one token for the diffusion step k, one per observation; q: learned positions)
    actions: x_t = Dropout(W_a a^k_t + p_t),  t = 1 .. Tp   (p: learned positions)
    for each of ``n_layer`` pre-LayerNorm decoder blocks (Vaswani et al., 2017):
        x = x + SelfAttention(LN(x), causal mask)       action t attends to actions <= t
        x = x + CrossAttention(LN(x), m, memory mask)   action t sees k and obs at steps <= t
        x = x + MLP(LN(x))                              GELU, width 4E
    eps_theta = W_out LN(x)

The causal masks (``causal_attn``, the paper's setting) keep each action from attending to
later actions and later observations, minGPT-style (Radford et al., 2018); the blocks are
torch's ``TransformerDecoderLayer`` with ``norm_first`` as in the authors' code (their note:
"important for stability"). Linear and attention weights start from N(0, 0.02), position
embeddings too; only linear/attention weight matrices are weight-decayed (minGPT's groups).
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
from polymimic.policies.optim import weight_decay_groups

MAX_WIDTH = 16_384


@dataclasses.dataclass
class DiffusionTransformerConfig(DiffusionBaseConfig):
    """Configuration of :class:`DiffusionTransformerPolicy` (shared diffusion fields plus the
    transformer's); optimiser defaults are the paper's transformer ones."""

    n_layer: int = bounded(8, 1, 64)  # decoder blocks (paper, Push-T: 8)
    n_head: int = bounded(4, 1, 256)  # attention heads; must divide n_emb (paper: 4)
    n_emb: int = bounded(256, 4, MAX_WIDTH)  # token width, even (paper: 256)
    p_drop_emb: float = bounded(0.0, 0.0, 1.0, high_open=True)  # on token embeddings (paper: 0)
    p_drop_attn: float = bounded(0.3, 0.0, 1.0, high_open=True)  # inside the blocks (paper: 0.3)
    causal_attn: bool = True  # actions attend only to earlier actions and observations
    weight_decay: float = bounded(1e-3, 0.0, 1.0)  # AdamW, weight matrices only (paper: 1e-3)
    adam_betas: tuple[float, ...] = bounded((0.9, 0.95), 0.0, 1.0, high_open=True)  # minGPT's
    lr_warmup_steps: int = bounded(1000, 0, 10**9)  # "transformer needs LR warmup" (authors)


# Named configs (``policy=diffusion_transformer/<name>``), each value with its source.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # Chi et al. 2023, transformer hyper-parameters for state-based Push-T (paper's
        # appendix table): n_layer 8, n_head 4, n_emb 256, p_drop_emb 0.0, p_drop_attn 0.3,
        # lr 1e-4, weight decay 1e-3; To 2, Tp 16, Ta 8 and causal attention, betas
        # (0.9, 0.95), cosine schedule with 1000 warm-up steps, EMA power 0.75 from the
        # authors' train_diffusion_transformer_lowdim_pusht_workspace.yaml (which itself sets
        # p_drop_attn 0.01 and weight_decay 0.1; the paper's table is followed here)
        "obs_horizon": 2,
        "action_horizon": 16,
        "n_action_steps": 8,
        "n_layer": 8,
        "n_head": 4,
        "n_emb": 256,
        "p_drop_emb": 0.0,
        "p_drop_attn": 0.3,
        "causal_attn": True,
        "lr": 1e-4,
        "weight_decay": 1e-3,
        "adam_betas": (0.9, 0.95),
        "lr_schedule": "cosine",
        "lr_warmup_steps": 1000,
        "ema_power": 0.75,
        # same config: DDPMScheduler(100 steps, squaredcos_cap_v2, clip_sample, epsilon)
        "num_train_timesteps": 100,
        "beta_schedule": "squaredcos_cap_v2",
        "clip_sample": True,
        "prediction_type": "epsilon",
        "sampler": "ddim",
        "num_inference_steps": 10,
        "obs_normalization": "min_max",
        "action_normalization": "min_max",
    },
    "cpu_small": {
        # D3IL (Jia et al., ICLR 2024) state-based Pushing: transformers of 4 layers, 4 heads,
        # 72-wide tokens (configs/pushing_config.yaml), attention dropout 0.1 and lr 5e-4 for
        # its transformer diffusion denoiser (configs/agents/ddpm_encdec_agent.yaml); the
        # paper's horizons, schedule and weight decay
        "obs_horizon": 2,
        "action_horizon": 16,
        "n_action_steps": 8,
        "n_layer": 4,
        "n_head": 4,
        "n_emb": 72,
        "p_drop_emb": 0.0,
        "p_drop_attn": 0.1,
        "causal_attn": True,
        "lr": 5e-4,
        "weight_decay": 1e-3,
        "adam_betas": (0.9, 0.95),
        "lr_schedule": "cosine",
        "lr_warmup_steps": 1000,
        "num_inference_steps": 10,
    },
}


def _additive_mask(allowed: torch.Tensor) -> torch.Tensor:
    """True (may attend) -> 0, False -> -inf: torch's float attention masks."""
    return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))


class TransformerForDiffusion(nn.Module):
    """The paper's time-series diffusion transformer (module docstring)."""

    def __init__(self, config: DiffusionTransformerConfig) -> None:
        super().__init__()
        c, e = config, config.n_emb
        steps, memory = c.action_horizon, 1 + c.obs_horizon
        self.action_embed = nn.Linear(c.action_dim, e)
        self.action_position = nn.Parameter(torch.zeros(1, steps, e))
        self.step_embed = SinusoidalEmbedding(e)
        self.obs_embed = nn.Linear(c.obs_dim, e)
        self.memory_position = nn.Parameter(torch.zeros(1, memory, e))
        self.dropout = nn.Dropout(c.p_drop_emb)
        # The paper's low-dim default encodes the memory tokens with an MLP (n_cond_layers 0).
        self.memory_encoder = nn.Sequential(nn.Linear(e, 4 * e), nn.Mish(), nn.Linear(4 * e, e))
        layer = nn.TransformerDecoderLayer(
            e, c.n_head, 4 * e, c.p_drop_attn, activation="gelu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.decoder = nn.TransformerDecoder(layer, c.n_layer)
        self.output_ln = nn.LayerNorm(e)
        self.head = nn.Linear(e, c.action_dim)
        t = torch.arange(steps)[:, None]
        # Derived from the config, so not saved (persistent=False) and rebuilt on load.
        self.register_buffer("action_mask", _additive_mask(t >= t.T) if c.causal_attn else None,
                             persistent=False)  # fmt: skip
        # Memory token s = 0 is the diffusion step, s >= 1 the observation at window index
        # s - 1; action t (same window indexing) may see observations up to its own step.
        s = torch.arange(memory)[None, :]
        self.register_buffer("memory_mask", _additive_mask(t >= s - 1) if c.causal_attn else None,
                             persistent=False)  # fmt: skip
        self.apply(self._init_weights)
        nn.init.normal_(self.action_position, std=0.02)
        nn.init.normal_(self.memory_position, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # minGPT's initialisation, as the authors' _init_weights.
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            nn.init.normal_(module.in_proj_weight, std=0.02)
            nn.init.zeros_(module.in_proj_bias)

    def forward(self, actions: torch.Tensor, steps: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Noisy actions (B, Tp, A), diffusion steps (B,), normalised obs (B, To, obs_dim)
        -> the predicted noise (or clean actions) (B, Tp, A)."""
        tokens = torch.cat([self.step_embed(steps)[:, None], self.obs_embed(obs)], dim=1)
        memory = self.memory_encoder(self.dropout(tokens + self.memory_position))
        x = self.dropout(self.action_embed(actions) + self.action_position)
        x = self.decoder(x, memory, tgt_mask=self.action_mask, memory_mask=self.memory_mask)
        return self.head(self.output_ln(x))


@register_policy
class DiffusionTransformerPolicy(DiffusionBasePolicy):
    """Diffusion Policy with the causal time-series transformer denoiser."""

    name = "diffusion_transformer"
    config_class = DiffusionTransformerConfig
    presets = PRESETS

    def make_denoiser(self, config: DiffusionTransformerConfig) -> TransformerForDiffusion:  # type: ignore[override]
        """The transformer the config describes; raises ValueError for sizes that cannot fit."""
        if config.n_emb % config.n_head or config.n_emb % 2:
            raise ValueError(f"n_emb ({config.n_emb}) must be even and divisible by n_head "
                             f"({config.n_head})")  # fmt: skip
        return TransformerForDiffusion(config)

    def optimizer_params(self) -> list:
        """minGPT's two groups: weight matrices decay, biases/norms/positions do not."""
        return weight_decay_groups(self.denoiser, self.config.weight_decay)
