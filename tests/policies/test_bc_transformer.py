"""BC-Transformer: causal attention, which positions are supervised, config checks."""

from __future__ import annotations

import pytest
import torch

from polymimic.policies.bc_transformer import BCTransformerConfig, BCTransformerPolicy


def tiny(**overrides: object) -> BCTransformerPolicy:
    torch.manual_seed(0)
    values = dict(obs_dim=3, action_dim=2, obs_horizon=4, embed_dim=16, num_layers=2, num_heads=2)
    return BCTransformerPolicy(BCTransformerConfig(**{**values, **overrides})).eval()


def test_attention_is_causal() -> None:
    policy = tiny()
    obs = torch.randn(2, 4, 3)
    later = obs.clone()
    later[:, 2] += 3.0  # change the third observation only
    with torch.no_grad():
        before, after = policy(obs), policy(later)
    torch.testing.assert_close(after[:, :2], before[:, :2], rtol=0, atol=0)  # the past is blind
    assert not torch.allclose(after[:, 2:], before[:, 2:])  # it and later positions see it


def test_supervised_positions() -> None:
    last_only, every = tiny(), tiny(supervise_all_steps=True)
    assert last_only.batch_spec().offsets == {"obs": (-3, -2, -1, 0), "actions": (0,)}
    assert every.batch_spec().offsets == {"obs": (-3, -2, -1, 0), "actions": (-3, -2, -1, 0)}
    obs, actions = torch.randn(5, 4, 3), torch.randn(5, 4, 2)
    with torch.no_grad():
        out = every(obs)
        loss_last = last_only.compute_loss({"obs": obs, "actions": actions[:, 3:]})["loss"]
        loss_every = every.compute_loss({"obs": obs, "actions": actions})["loss"]
    # Same weights (same seed): only which positions enter the mean squared error differs.
    torch.testing.assert_close(loss_last, ((out[:, 3] - actions[:, 3]) ** 2).mean())
    torch.testing.assert_close(loss_every, ((out - actions) ** 2).mean())


def test_config_checks() -> None:
    with pytest.raises(ValueError, match=r"num_heads \(3\) must divide embed_dim \(16\)"):
        tiny(num_heads=3)
    with pytest.raises(ValueError, match="action_horizon and n_action_steps must be 1"):
        tiny(action_horizon=4)
