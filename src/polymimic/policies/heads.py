"""Action heads shared by learners: what the last linear layer's output vector means.

A learner's network ends in a linear layer of width ``head.raw_dim``; the head turns that raw
vector into a training loss against the demonstrated action and into an action at
inference. Both work in normalised action units (the learner normalises and unnormalises).
A head has no parameters of its own, so it adds nothing to ``model.safetensors``.

- :class:`MSEHead`: the raw vector *is* the action; loss = mean squared error.
- :class:`GMMHead`: a mixture density network (Bishop, "Mixture Density Networks", 1994) as
  robomimic's ``GMMActorNetwork`` (Mandlekar et al., "What Matters in Learning from Offline
  Human Demonstrations for Robot Manipulation", CoRL 2021). The raw vector holds, for K
  modes and action width A, means ``mu_k`` (K*A), unconstrained scales ``s_k`` (K*A) and
  logits ``l_k`` (K)::

      sigma_k = softplus(s_k) + min_std          (or exp(s_k) + min_std)
      pi_k    = softmax(l)_k
      log p(a) = logsumexp_k [ log pi_k + sum_d log N(a_d; mu_kd, sigma_kd) ]
      loss    = -mean over the batch of log p(a)

  Sampling draws a mode ``k ~ Categorical(pi)`` and then ``a = mu_k + sigma_k * eps``,
  ``eps ~ N(0, I)``. With ``low_noise_eval`` (robomimic's default), inference replaces every
  ``sigma_k`` by ``LOW_NOISE_STD``: the *mode is still drawn at random* from the mixture
  weights, only the spread around it is removed, so a multimodal policy stays multimodal
  at evaluation (robomimic does the same by building its ``MixtureSameFamily`` with scale
  1e-4 in eval mode). Unlike robomimic, means are not squashed with tanh: robomimic's
  actions lie in [-1, 1] by convention, polymimic's are normalised to zero mean and unit
  variance and are unbounded.

Randomness comes from the per-environment ``torch.Generator`` passed at inference (one
uniform for the mode, then A normals, in that order), so an environment's action does not
depend on which other environments share the batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch.nn import functional

from polymimic.config.values import bounded

MAX_GMM_MODES = 64
#: The standard deviation of every mode at inference with ``low_noise_eval`` (robomimic's).
LOW_NOISE_STD = 1e-4
_LOG_2PI = math.log(2.0 * math.pi)
_STD_ACTIVATIONS = ("softplus", "exp")


@dataclasses.dataclass
class GMMHeadConfig:
    """Config fields of learners whose head may be a Gaussian mixture (mixed into theirs)."""

    gmm_modes: int = bounded(0, 0, MAX_GMM_MODES)  # mixture modes K; 0 = MSE head (one action)
    gmm_min_std: float = bounded(1e-4, 1e-8, 10.0)  # added to every std (robomimic: 1e-4)
    gmm_std_activation: str = "softplus"  # softplus or exp, maps raw scales to stds
    low_noise_eval: bool = True  # at inference, std LOW_NOISE_STD; modes still drawn at random


class MSEHead:
    """The raw output is the normalised action; the loss is its mean squared error."""

    def __init__(self, action_dim: int) -> None:
        self.action_dim = action_dim
        self.raw_dim = action_dim

    def loss(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error over every leading dimension and action dimension."""
        return functional.mse_loss(raw.float(), target)

    def predict(
        self, raw: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """``(N, raw_dim)`` -> ``(N, action_dim)`` normalised actions; deterministic."""
        return raw.float()


class GMMHead:
    """A K-mode Gaussian mixture with diagonal covariances (see the module docstring)."""

    def __init__(
        self,
        action_dim: int,
        modes: int,
        min_std: float = 1e-4,
        std_activation: str = "softplus",
        low_noise_eval: bool = True,
    ) -> None:
        """Raises ValueError for fewer than one mode or an unknown std activation."""
        if modes < 1:
            raise ValueError(f"a Gaussian mixture head needs gmm_modes >= 1, got {modes}")
        if std_activation not in _STD_ACTIVATIONS:
            raise ValueError(
                f"unknown gmm_std_activation {std_activation!r}; choose from {_STD_ACTIVATIONS}"
            )
        self.action_dim, self.modes, self.min_std = action_dim, modes, min_std
        self.std_activation, self.low_noise_eval = std_activation, low_noise_eval
        self.raw_dim = modes * (2 * action_dim + 1)

    def mixture(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(..., raw_dim)`` -> means and stds ``(..., K, A)`` and log weights ``(..., K)``.

        Computed in float32 whatever the autocast dtype: log-likelihoods of stds near
        ``min_std`` lose everything in bfloat16.
        """
        raw = raw.float()
        k, a = self.modes, self.action_dim
        means = raw[..., : k * a].unflatten(-1, (k, a))
        scales = raw[..., k * a : 2 * k * a].unflatten(-1, (k, a))
        act = functional.softplus if self.std_activation == "softplus" else torch.exp
        stds = act(scales) + self.min_std
        log_weights = torch.log_softmax(raw[..., 2 * k * a :], dim=-1)
        return means, stds, log_weights

    def log_likelihood(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``log p(target)`` under the mixture, shape of ``target`` without its last axis."""
        means, stds, log_weights = self.mixture(raw)
        z = (target.float().unsqueeze(-2) - means) / stds  # (..., K, A)
        log_normal = -0.5 * (z.square() + _LOG_2PI).sum(-1) - stds.log().sum(-1)  # (..., K)
        return torch.logsumexp(log_weights + log_normal, dim=-1)

    def loss(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood, averaged over every leading dimension."""
        return -self.log_likelihood(raw, target).mean()

    def predict(
        self, raw: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """One sample per row: ``(N, raw_dim)`` -> ``(N, action_dim)`` normalised actions."""
        means, stds, log_weights = self.mixture(raw)
        if self.low_noise_eval:
            stds = torch.full_like(stds, LOW_NOISE_STD)
        uniform, normal = _draws(len(raw), self.action_dim, generators, raw.device)
        # Inverse-CDF draw of the mode: the first k whose cumulative weight reaches u.
        cdf = log_weights.exp().cumsum(-1)
        mode = torch.searchsorted(cdf, uniform[:, None]).clamp(max=self.modes - 1)[:, 0]
        rows = torch.arange(len(raw), device=raw.device)
        return means[rows, mode] + stds[rows, mode] * normal


def _draws(
    rows: int,
    action_dim: int,
    generators: Sequence[torch.Generator] | None,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows,)`` uniforms and ``(rows, action_dim)`` normals, row i from ``generators[i]``
    (drawn on the generator's own device, then moved), or from torch's global RNG."""
    if generators is None:
        return torch.rand(rows, device=device), torch.randn(rows, action_dim, device=device)
    if len(generators) != rows:
        raise ValueError(f"got {len(generators)} generators for {rows} rows")
    uniform, normal = [], []
    for generator in generators:
        uniform.append(torch.rand(1, generator=generator, device=generator.device))
        normal.append(torch.randn(action_dim, generator=generator, device=generator.device))
    return torch.cat(uniform).to(device), torch.stack(normal).to(device)


def make_action_head(action_dim: int, config: GMMHeadConfig) -> MSEHead | GMMHead:
    """An MSE head when ``config.gmm_modes`` is 0, else the configured Gaussian mixture."""
    if config.gmm_modes == 0:
        return MSEHead(action_dim)
    return GMMHead(
        action_dim, config.gmm_modes, config.gmm_min_std, config.gmm_std_activation,
        config.low_noise_eval,
    )  # fmt: skip
