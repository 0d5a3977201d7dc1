"""Behaviour cloning with a causal transformer over the observation history: robomimic's
BC-Transformer.

robomimic 0.3 (Mandlekar et al., 2021; release v0.3, 2023) added BC-Transformer, a GPT-style
decoder (Radford et al., 2018; Karpathy's minGPT) over the last T = ``obs_horizon``
observations (its ``frame_stack`` = ``context_length`` = 10). With ``x_t = norm(o_t)``::

    e_t = Dropout(LayerNorm(W_in x_t + p_t))         p_t: learned position embedding
    for each of L blocks (pre-LayerNorm, residual):
        e = e + Dropout(W_o CausalSelfAttention(LayerNorm(e)))
        e = e + Dropout(W_2 GELU(W_1 LayerNorm(e)))   (width 4 * embed_dim)
    y_t = head(W_out LayerNorm(e_t))

    CausalSelfAttention: softmax(Q K^T / sqrt(d_head) + M) V per head, M masking the future,
    with dropout on the attention weights.

Only the last position's output is supervised (robomimic's ``supervise_all_steps = False``,
its default); ``supervise_all_steps`` trains every position on its aligned action instead
(the batch then asks for actions at the observations' offsets). The head is an MSE
regression or, with ``gmm_modes > 0``, the Gaussian mixture shared with ``bc_gmm``
(``policies.heads``); robomimic's template enables the mixture with 5 modes. Linear layers
of the blocks start from N(0, 0.02) weights and zero biases, position embeddings from zero,
as robomimic's GPT_Backbone. At inference the window the base class keeps per environment is
the context, and the last position's output is the action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from polymimic.config.values import bounded
from polymimic.datasets.windows import BatchSpec
from polymimic.policies.base import MAX_HORIZON, Policy, PolicyConfig, register_policy
from polymimic.policies.heads import GMMHeadConfig, make_action_head
from polymimic.policies.optim import OptimizerSpec, adamw_with_schedule

MAX_WIDTH = 16_384


@dataclasses.dataclass
class BCTransformerConfig(GMMHeadConfig, PolicyConfig):
    """Configuration of :class:`BCTransformerPolicy` (plus ``PolicyConfig`` and the head's)."""

    obs_horizon: int = bounded(10, 1, MAX_HORIZON)  # context length T (robomimic: 10)
    embed_dim: int = bounded(512, 1, MAX_WIDTH)  # token width (robomimic: 512)
    num_layers: int = bounded(6, 1, 64)  # transformer blocks (robomimic: 6)
    num_heads: int = bounded(8, 1, 256)  # attention heads; must divide embed_dim (robomimic: 8)
    emb_dropout: float = bounded(0.1, 0.0, 1.0, high_open=True)  # on the input embeddings
    attn_dropout: float = bounded(0.1, 0.0, 1.0, high_open=True)  # on the attention weights
    block_dropout: float = bounded(0.1, 0.0, 1.0, high_open=True)  # on each block's outputs
    supervise_all_steps: bool = False  # train every position on its action (robomimic: False)
    lr: float = bounded(1e-4, 0.0, 1.0)  # AdamW learning rate (robomimic template: 1e-4)
    weight_decay: float = bounded(0.01, 0.0, 1.0)  # AdamW decay (robomimic template L2: 0.01)
    lr_schedule: str = "constant"  # constant, constant_with_warmup, linear or cosine
    lr_warmup_steps: int = bounded(0, 0, 10**9)  # linear warm-up steps of the schedule


# Named configs (``policy=bc_transformer/<name>``), each value with its source.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # robomimic config/default_templates/bc_transformer.json (v0.3): frame_stack 10,
        # transformer num_layers 6, embed_dim 512, num_heads 8, supervise_all_steps false,
        # gmm enabled with 5 modes, min_std 1e-4, softplus, low_noise_eval; adamw lr 1e-4,
        # L2 0.01
        "obs_horizon": 10,
        "embed_dim": 512,
        "num_layers": 6,
        "num_heads": 8,
        "supervise_all_steps": False,
        "gmm_modes": 5,
        "gmm_min_std": 1e-4,
        "gmm_std_activation": "softplus",
        "low_noise_eval": True,
        "lr": 1e-4,
        "weight_decay": 0.01,
        # robomimic config/bc_config.py: emb, attn and block_output dropout 0.1
        "emb_dropout": 0.1,
        "attn_dropout": 0.1,
        "block_dropout": 0.1,
        # The template's "linear" scheduler takes the lr to 0.1x over the first 100 epochs and
        # holds it there; polymimic's schedules (optim.LR_SCHEDULES) have no such shape, and
        # a constant lr is the closer of the two for most of a run.
        "lr_schedule": "constant",
    },
    "cpu_small": {
        # robomimic's architecture and context at a quarter of the width and a third of the
        # depth, so that it trains on 2 CPU cores; lr raised for the smaller width
        "obs_horizon": 10,
        "embed_dim": 128,
        "num_layers": 2,
        "num_heads": 4,
        "gmm_modes": 5,
        "lr": 3e-4,
        "weight_decay": 0.01,
        "lr_schedule": "constant",
    },
}


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends to positions <= t only."""

    def __init__(self, embed_dim: int, num_heads: int, attn_dropout: float) -> None:
        super().__init__()
        self.num_heads, self.attn_dropout = num_heads, attn_dropout
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=False)  # robomimic: no bias
        self.out = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
                   for t in self.qkv(x).chunk(3, dim=-1))  # fmt: skip
        dropout = self.attn_dropout if self.training else 0.0
        y = functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        return self.out(y.transpose(1, 2).flatten(start_dim=2))


class Block(nn.Module):
    """One pre-LayerNorm transformer block: attention, then a 4x-wide GELU MLP."""

    def __init__(self, embed_dim: int, num_heads: int, attn_dropout: float, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
        self.attention = CausalSelfAttention(embed_dim, num_heads, attn_dropout)
        self.attention_dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, 4 * embed_dim), nn.GELU(), nn.Linear(4 * embed_dim, embed_dim),
            nn.Dropout(dropout),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention_dropout(self.attention(self.ln1(x)))
        return x + self.mlp(self.ln2(x))


def gpt_init(module: nn.Module) -> None:
    """GPT-2 / minGPT initialisation of a linear layer: N(0, 0.02) weights, zero biases (as
    robomimic's GPT_Backbone and BeT's minGPT apply it); use with ``Module.apply``."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@register_policy
class BCTransformerPolicy(Policy):
    """GPT-style causal transformer over the observation window, action from the last token."""

    name = "bc_transformer"
    config_class = BCTransformerConfig
    presets = PRESETS

    def __init__(self, config: BCTransformerConfig) -> None:
        """Build the network; obs_dim and action_dim must already be set in ``config``."""
        if config.action_horizon != 1 or config.n_action_steps != 1:
            raise ValueError(
                "bc_transformer predicts one action per step: action_horizon and "
                "n_action_steps must be 1"
            )
        if config.embed_dim % config.num_heads:
            raise ValueError(
                f"num_heads ({config.num_heads}) must divide embed_dim ({config.embed_dim})"
            )
        super().__init__(config)
        self.config: BCTransformerConfig = config
        self.head = make_action_head(config.action_dim, config)
        e = config.embed_dim
        self.embed = nn.Linear(config.obs_dim, e)
        self.position = nn.Parameter(torch.zeros(1, config.obs_horizon, e))
        self.embed_ln, self.embed_dropout = nn.LayerNorm(e), nn.Dropout(config.emb_dropout)
        self.blocks = nn.Sequential(*(
            Block(e, config.num_heads, config.attn_dropout, config.block_dropout)
            for _ in range(config.num_layers)
        ))  # fmt: skip
        self.blocks.apply(gpt_init)
        self.output_ln = nn.LayerNorm(e)
        self.decoder = nn.Linear(e, self.head.raw_dim)

    def batch_spec(self) -> BatchSpec:
        """The T-step observation window; the action at its last step, or at every step."""
        window = tuple(range(1 - self.config.obs_horizon, 1))
        return BatchSpec({"obs": window, "actions": window if self.config.supervise_all_steps
                          else (0,)})  # fmt: skip

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """One AdamW over every parameter, with the config's schedule (robomimic's template)."""
        c = self.config
        return [
            adamw_with_schedule(
                "main", self.parameters(), c.lr, c.weight_decay, c.lr_schedule,
                c.lr_warmup_steps, num_training_steps,
            )
        ]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw obs window (B, T, obs_dim) -> the head's raw output at every position (B, T, raw)."""
        steps = obs.shape[1]
        tokens = self.embed(self.normalize_obs(obs)) + self.position[:, :steps]
        features = self.blocks(self.embed_dropout(self.embed_ln(tokens)))
        return self.decoder(self.output_ln(features))

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str = "main"
    ) -> dict[str, torch.Tensor]:
        """The head's loss on the last position's action (or every position's), normalised."""
        raw = self(batch["obs"])
        if not self.config.supervise_all_steps:
            raw = raw[:, -1:]
        return {"loss": self.head.loss(raw, self.normalize_action(batch["actions"]))}

    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """(N, T, obs_dim) raw -> (N, 1, action_dim) raw: the last position's action."""
        raw = self(obs_window)[:, -1]
        return self.unnormalize_action(self.head.predict(raw, generators))[:, None]
