"""Action heads: the mixture's log-likelihood against torch.distributions, its sampling
frequencies and spread, low-noise evaluation, and per-environment generators."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import distributions as D

from polymimic.policies.heads import (
    LOW_NOISE_STD,
    GMMHead,
    GMMHeadConfig,
    MSEHead,
    make_action_head,
)


def raw_vector(means: list[list[float]], stds: list[list[float]], weights: list[float],
               min_std: float = 1e-4) -> torch.Tensor:  # fmt: skip
    """The raw output that makes a softplus GMMHead describe this mixture (one row)."""
    mu, sigma = torch.tensor(means), torch.tensor(stds) - min_std
    scales = sigma + torch.log(-torch.expm1(-sigma))  # inverse softplus
    logits = torch.log(torch.tensor(weights))
    return torch.cat([mu.flatten(), scales.flatten(), logits])[None]


@pytest.mark.parametrize("activation", ["softplus", "exp"])
def test_log_likelihood_equals_torch_mixture(activation: str) -> None:
    torch.manual_seed(0)
    head = GMMHead(action_dim=3, modes=4, min_std=0.05, std_activation=activation)
    raw = torch.randn(7, head.raw_dim)
    target = torch.randn(7, 3)
    means = raw[:, :12].reshape(7, 4, 3)
    scale = raw[:, 12:24].reshape(7, 4, 3)
    stds = (torch.nn.functional.softplus(scale) if activation == "softplus" else scale.exp()) + 0.05
    expected = D.MixtureSameFamily(
        D.Categorical(logits=raw[:, 24:]), D.Independent(D.Normal(means, stds), 1)
    ).log_prob(target)
    torch.testing.assert_close(head.log_likelihood(raw, target), expected, rtol=1e-5, atol=1e-5)
    assert head.loss(raw, target).item() == pytest.approx(-expected.mean().item(), rel=1e-5)
    # Leading dimensions (a sequence per item, as bc_rnn's) are averaged over too.
    seq = head.loss(raw.reshape(1, 7, -1), target.reshape(1, 7, 3))
    assert seq.item() == pytest.approx(-expected.mean().item(), rel=1e-5)


@pytest.mark.parametrize("low_noise", [False, True])
def test_samples_follow_the_mixture(low_noise: bool) -> None:
    weights = [0.2, 0.3, 0.5]
    raw = raw_vector([[-10.0], [0.0], [10.0]], [[1.0], [1.0], [1.0]], weights)
    head = GMMHead(action_dim=1, modes=3, low_noise_eval=low_noise)
    n = 4000
    samples = head.predict(raw.expand(n, -1), [torch.Generator().manual_seed(s) for s in range(n)])
    samples = samples[:, 0].numpy()
    modes = np.round(samples / 10.0)  # which of -10, 0, 10 each sample came from
    for k, weight in enumerate(weights):
        # 4000 draws: the frequency's standard error is <= 0.008
        assert abs(np.mean(modes == k - 1) - weight) < 0.035, (k, np.mean(modes == k - 1))
    spread = samples - 10.0 * modes
    if low_noise:  # the mode is drawn, the noise around it is 1e-4
        assert np.abs(spread).max() < 10 * LOW_NOISE_STD
    else:
        assert np.std(spread) == pytest.approx(1.0, abs=0.05)


def test_each_environment_draws_from_its_own_generator() -> None:
    torch.manual_seed(1)
    head = GMMHead(action_dim=2, modes=3, low_noise_eval=False)
    raw = torch.randn(5, head.raw_dim)
    seeds = [10, 11, 12, 13, 14]
    batch = head.predict(raw, [torch.Generator().manual_seed(s) for s in seeds])
    again = head.predict(raw, [torch.Generator().manual_seed(s) for s in seeds])
    torch.testing.assert_close(batch, again, rtol=0, atol=0)
    alone = head.predict(raw[2:3], [torch.Generator().manual_seed(12)])
    torch.testing.assert_close(alone[0], batch[2], rtol=0, atol=0)
    other = head.predict(raw, [torch.Generator().manual_seed(s + 100) for s in seeds])
    assert not torch.equal(other, batch)
    with pytest.raises(ValueError, match="2 generators for 5 rows"):
        head.predict(raw, [torch.Generator(), torch.Generator()])


def test_mse_head_and_the_factory() -> None:
    head = make_action_head(2, GMMHeadConfig(gmm_modes=0))
    assert isinstance(head, MSEHead) and head.raw_dim == 2
    raw, target = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    assert head.loss(raw, target).item() == pytest.approx(2.5)
    assert torch.equal(head.predict(raw, None), raw)
    gmm = make_action_head(2, GMMHeadConfig(gmm_modes=5, gmm_min_std=0.01))
    assert isinstance(gmm, GMMHead) and gmm.raw_dim == 5 * (2 * 2 + 1) and gmm.min_std == 0.01
    # The smallest std a mode can have is min_std: a collapsed mode's likelihood is bounded.
    means, stds, log_weights = gmm.mixture(torch.full((1, gmm.raw_dim), -1e3))
    assert torch.allclose(stds, torch.tensor(0.01)) and math.isclose(
        log_weights.exp().sum().item(), 1.0, rel_tol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="unknown gmm_std_activation 'relu'"):
        GMMHead(2, 3, std_activation="relu")
    with pytest.raises(ValueError, match="gmm_modes >= 1"):
        GMMHead(2, 0)
