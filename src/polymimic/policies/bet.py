"""Behavior Transformers: k-means action bins plus offsets, over a minGPT (BeT).

Shafiullah, Cui, Altanzaya and Pinto, "Behavior Transformers: Cloning k modes with one
stone" (NeurIPS 2022). Multimodal actions are split into a discrete choice and a continuous
correction. Before training, k-means (Lloyd, 1982) clusters the training set's normalised
actions into k centres ``c_1 .. c_k`` (``fit_to_data``); every action is then

    a = c_b + r,   b = argmin_j ||a - c_j||  (its bin),   r = a - c_b  (its offset).

A causal GPT (Radford et al., 2018; Karpathy's minGPT, the code BeT builds on) reads the
window of the last T normalised observations and, at every position t, outputs k bin
logits ``l_t`` and k offsets ``r_t,j`` (one per bin). The loss is BeT's multi-task loss at
every position of the window::

    loss = FocalLoss_gamma(l_t, b_t) + offset_loss_scale * || r_t,b_t - r_t ||^2
    FocalLoss_gamma(l, b) = -(1 - p_b) ** gamma * log p_b,   p = softmax(l)   (gamma = 2)

(Lin et al., 2017; the focal term keeps rare bins from being drowned by frequent ones), the
offset error counting only the demonstrated bin's offset head. At inference the last
position's output is used: a bin ``j ~ softmax(l / temperature)`` is drawn with the
environment's own ``torch.Generator`` (one uniform, inverse CDF), and the action is
``c_j + r_j``, unnormalised.

The k-means fit follows BeT's ``KMeansDiscretizer`` (itself minGPT's): k distinct random data
points as the initial centres, a fixed number of Lloyd iterations, and an empty cluster
re-seeded at a random data point; here the randomness comes from a generator seeded with
the run's seed, so the bins are a deterministic function of the data and the seed. The
centres are a buffer, saved in ``model.safetensors``; a resumed run does not refit them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from polymimic.config.values import bounded
from polymimic.datasets.windows import BatchSpec
from polymimic.policies.base import MAX_HORIZON, Policy, PolicyConfig, register_policy
from polymimic.policies.bc_transformer import Block, gpt_init
from polymimic.policies.optim import OptimizerSpec, adamw_with_schedule, weight_decay_groups

MAX_WIDTH = 16_384
MAX_BINS = 4096
_KMEANS_CHUNK = 8192  # rows per distance computation: memory is rows x k floats


@dataclasses.dataclass
class BeTConfig(PolicyConfig):
    """Configuration of :class:`BeTPolicy` (plus the shared fields of ``PolicyConfig``)."""

    obs_horizon: int = bounded(10, 1, MAX_HORIZON)  # window T (BeT's block_size; kitchen: 10)
    n_bins: int = bounded(64, 1, MAX_BINS)  # k-means action bins k (BeT kitchen: 64)
    kmeans_iterations: int = bounded(50, 1, 10_000)  # Lloyd iterations (BeT: 50)
    n_layer: int = bounded(6, 1, 64)  # transformer blocks (BeT kitchen: 6)
    n_head: int = bounded(6, 1, 256)  # attention heads; must divide n_embd (BeT kitchen: 6)
    n_embd: int = bounded(120, 1, MAX_WIDTH)  # token width (BeT kitchen: 120)
    dropout: float = bounded(0.1, 0.0, 1.0, high_open=True)  # minGPT's embd/attn/resid pdrop
    focal_gamma: float = bounded(2.0, 0.0, 100.0)  # focal loss exponent (BeT: 2; 0 = CE)
    offset_loss_scale: float = bounded(1.0, 0.0, 1e9)  # weight of the offset MSE
    temperature: float = bounded(1.0, 1e-3, 1e3)  # softmax temperature when drawing a bin
    lr: float = bounded(1e-4, 0.0, 1.0)  # AdamW learning rate (BeT: 1e-4)
    weight_decay: float = bounded(0.1, 0.0, 1.0)  # on weight matrices only (BeT: 0.1)
    adam_betas: tuple[float, ...] = bounded((0.9, 0.95), 0.0, 1.0, high_open=True)  # BeT's
    lr_schedule: str = "constant"  # constant, constant_with_warmup, linear or cosine
    lr_warmup_steps: int = bounded(0, 0, 10**9)  # linear warm-up steps of the schedule


# Named configs (``policy=bet/<name>``), each value with its source.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        # Shafiullah et al. 2022, the simulated Franka Kitchen task (authors' repo
        # notmahi/bet: configs/train_kitchen.yaml window_size 10, lr 1e-4, weight_decay 0.1,
        # betas (0.9, 0.95); state_prior/mingpt_kitchen_best.yaml n_layer 6, n_head 6,
        # n_embd 120, focal_loss_gamma 2.0, offset_loss_scale 1000;
        # action_ae/discretizers/k_means_kitchen_best.yaml num_bins 64; minGPT's dropout 0.1;
        # KMeansDiscretizer niter 50). BeT's actions were raw, here they are normalised to
        # unit variance: a comparable range to the kitchen's [-1, 1] joint velocities.
        "obs_horizon": 10,
        "n_bins": 64,
        "kmeans_iterations": 50,
        "n_layer": 6,
        "n_head": 6,
        "n_embd": 120,
        "dropout": 0.1,
        "focal_gamma": 2.0,
        "offset_loss_scale": 1000.0,
        "temperature": 1.0,
        "lr": 1e-4,
        "weight_decay": 0.1,
        "adam_betas": (0.9, 0.95),
        "lr_schedule": "constant",
    },
    "cpu_small": {
        # D3IL (Jia et al., ICLR 2024) state-based Pushing, which normalises actions as
        # polymimic does: configs/pushing_config.yaml window_size 5, n_layer 4, n_head 4,
        # n_embd 72; configs/agents/bet_agent.yaml vocab_size 64, offset_loss_scale 1.0,
        # focal_loss_gamma 2.0, AdamW lr 1e-4, betas (0.95, 0.995), weight_decay 0.1
        "obs_horizon": 5,
        "n_bins": 64,
        "n_layer": 4,
        "n_head": 4,
        "n_embd": 72,
        "dropout": 0.1,
        "focal_gamma": 2.0,
        "offset_loss_scale": 1.0,
        "lr": 1e-4,
        "weight_decay": 0.1,
        "adam_betas": (0.95, 0.995),
        "lr_schedule": "constant",
    },
}


def nearest_centre(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre (Euclidean; the first on ties) of every row of ``points``."""
    found = [
        torch.cdist(chunk, centres, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=1)
        for chunk in points.split(_KMEANS_CHUNK)
    ]
    return torch.cat(found) if found else torch.zeros(0, dtype=torch.long, device=points.device)


def kmeans(points: torch.Tensor, k: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` centres of ``points`` (N, D) by Lloyd's algorithm, as BeT's KMeansDiscretizer
    (module docstring); all randomness from ``generator`` (a CPU generator, CPU tensors)."""
    n = len(points)
    if n == 0:
        raise ValueError("k-means needs at least one point")
    # k distinct points when there are enough (BeT's randperm), repeated ones otherwise.
    centres = points[torch.randperm(n, generator=generator)[torch.arange(k) % n]].clone()
    for _ in range(iterations):
        assignment = nearest_centre(points, centres)
        sums = torch.zeros_like(centres).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=k)
        alive = counts > 0
        centres[alive] = sums[alive] / counts[alive, None].to(points.dtype)
        dead = int((~alive).sum())
        if dead:  # re-seed an empty cluster at a random point, as BeT does
            centres[~alive] = points[torch.randint(n, (dead,), generator=generator)]
    return centres


def _uniforms(rows: int, generators: Sequence[torch.Generator] | None, device: torch.device) -> torch.Tensor:
    """One U(0, 1) per row, row i from ``generators[i]`` (or torch's global generator)."""
    if generators is None:
        return torch.rand(rows, device=device)
    if len(generators) != rows:
        raise ValueError(f"got {len(generators)} generators for {rows} rows")
    return torch.cat([torch.rand(1, generator=g, device=g.device) for g in generators]).to(device)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """``mean(-(1 - p_target) ** gamma * log p_target)`` over rows (Lin et al., 2017)."""
    log_p = torch.log_softmax(logits, dim=-1).gather(-1, target[:, None])[:, 0]
    return (-((1.0 - log_p.exp()) ** gamma) * log_p).mean()


@register_policy
class BeTPolicy(Policy):
    """Behavior Transformer: a bin and an offset per step from a causal GPT (stochastic)."""

    name = "bet"
    config_class = BeTConfig
    presets = PRESETS

    def __init__(self, config: BeTConfig) -> None:
        """Build the network; obs_dim and action_dim must already be set in ``config``."""
        if config.action_horizon != 1 or config.n_action_steps != 1:
            raise ValueError("bet predicts one action per step (at every step of its window): "
                             "action_horizon and n_action_steps must be 1")  # fmt: skip
        if config.n_embd % config.n_head:
            raise ValueError(f"n_head ({config.n_head}) must divide n_embd ({config.n_embd})")
        if len(config.adam_betas) != 2:
            raise ValueError(f"adam_betas needs 2 values, got {list(config.adam_betas)}")
        super().__init__(config)
        self.config: BeTConfig = config
        k, e = config.n_bins, config.n_embd
        self.embed = nn.Linear(config.obs_dim, e)
        self.position = nn.Parameter(torch.zeros(1, config.obs_horizon, e))  # minGPT: zeros
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.Sequential(*(
            Block(e, config.n_head, config.dropout, config.dropout) for _ in range(config.n_layer)
        ))  # fmt: skip
        self.output_ln = nn.LayerNorm(e)
        self.head = nn.Linear(e, k * (1 + config.action_dim), bias=False)  # minGPT's head
        self.apply(gpt_init)
        self.register_buffer("bin_centers", torch.zeros(k, config.action_dim))  # normalised
        self.register_buffer("bins_fitted", torch.zeros((), dtype=torch.bool))
        self._checked_fitted = False

    # --- bins ---------------------------------------------------------------------------
    def fit_to_data(self, dataset: Any, seed: int) -> None:
        """Fit the k-means bins on the training set's normalised actions (module docstring).

        Raises:
            TypeError: ``dataset`` has no per-step ``actions`` array.
        """
        actions = getattr(dataset, "actions", None)
        if actions is None:
            raise TypeError(f"bet fits its action bins on the dataset's per-step `actions` array; "
                            f"{type(dataset).__name__} has none")  # fmt: skip
        raw = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
        # Clustered on the CPU whatever the training device: the same bins on every machine.
        points = self.normalize_action(raw.to(self.bin_centers.device)).cpu()
        generator = torch.Generator().manual_seed(int(seed))
        centres = kmeans(points, self.config.n_bins, self.config.kmeans_iterations, generator)
        self.bin_centers.copy_(centres)
        self.bins_fitted.fill_(True)

    def _require_bins(self) -> None:
        # Checked once per policy object (a GPU sync); load_state_dict brings the flag too.
        if not self._checked_fitted:
            if not bool(self.bins_fitted):
                raise RuntimeError("bet's action bins are not fitted: call fit_to_data(dataset, "
                                   "seed) first (polymimic's training loop does)")  # fmt: skip
            self._checked_fitted = True

    # --- training -----------------------------------------------------------------------
    def batch_spec(self) -> BatchSpec:
        """Observations and actions at the same offsets ``1-T .. 0``: every position trains."""
        window = tuple(range(1 - self.config.obs_horizon, 1))
        return BatchSpec({"obs": window, "actions": window})

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """AdamW with minGPT's decay groups (BeT's optimiser), with the config's schedule."""
        c = self.config
        return [
            adamw_with_schedule(
                "main", weight_decay_groups(self, c.weight_decay), c.lr, c.weight_decay,
                c.lr_schedule, c.lr_warmup_steps, num_training_steps, betas=tuple(c.adam_betas),
            )
        ]  # fmt: skip

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw obs window (B, T, obs_dim) -> bin logits (B, T, k) and offsets (B, T, k, A),
        in float32 and normalised action units."""
        steps = obs.shape[1]
        x = self.embed_dropout(self.embed(self.normalize_obs(obs)) + self.position[:, :steps])
        out = self.head(self.output_ln(self.blocks(x))).float()
        k = self.config.n_bins
        return out[..., :k], out[..., k:].unflatten(-1, (k, self.config.action_dim))

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str = "main"
    ) -> dict[str, torch.Tensor]:
        """BeT's focal bin loss plus the scaled offset error of the demonstrated bin."""
        self._require_bins()
        logits, offsets = self(batch["obs"])
        target = self.normalize_action(batch["actions"]).float().flatten(0, 1)  # (B*T, A)
        bins = nearest_centre(target, self.bin_centers)
        rows = torch.arange(len(bins), device=bins.device)
        chosen = offsets.flatten(0, 1)[rows, bins]  # the offset head of the demonstrated bin
        bin_loss = focal_loss(logits.flatten(0, 1), bins, self.config.focal_gamma)
        offset_loss = functional.mse_loss(chosen, target - self.bin_centers[bins])
        loss = bin_loss + self.config.offset_loss_scale * offset_loss
        return {"loss": loss, "bin_loss": bin_loss.detach(), "offset_loss": offset_loss.detach()}

    # --- inference ----------------------------------------------------------------------
    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """(N, T, obs_dim) raw -> (N, 1, action_dim) raw: a bin drawn from the last
        position's distribution (row i with ``generators[i]``) plus that bin's offset."""
        self._require_bins()
        logits, offsets = self(obs_window)
        probs = torch.softmax(logits[:, -1] / self.config.temperature, dim=-1)
        uniform = _uniforms(len(probs), generators, probs.device)
        # Inverse-CDF draw: the first bin whose cumulative probability reaches u.
        bins = torch.searchsorted(probs.cumsum(-1), uniform[:, None]).clamp(max=self.config.n_bins - 1)
        rows = torch.arange(len(probs), device=probs.device)
        action = self.bin_centers[bins[:, 0]] + offsets[rows, -1, bins[:, 0]]
        return self.unnormalize_action(action)[:, None]
