"""Diffusion learners (``diffusion``, ``diffusion_transformer``; shared ``diffusion_base`` and
``ema``): the sampler is built from the training scheduler's config, the chunk window is the
paper's, the EMA follows the paper's decay, and the EMA weights are what a checkpoint is
evaluated with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from safetensors.torch import load_file
from torch import nn

from demo_files import random_demos, write_demo_file
from polymimic.config.values import config_from_values
from polymimic.datasets.windows import WindowDataset
from polymimic.policies.base import policy_class
from polymimic.policies.checkpoint import MODEL_FILE, load_checkpoint, save_checkpoint
from polymimic.policies.diffusion import DiffusionConfig, DiffusionPolicy
from polymimic.policies.diffusion_base import DiffusionBasePolicy
from polymimic.policies.ema import EMAWeights
from polymimic.policies.train import TrainConfig, train

OBS_KEYS = ("block_red", "tip_pos")
TINY: dict[str, dict[str, Any]] = {
    "diffusion": {"down_dims": [8, 16], "kernel_size": 3, "n_groups": 4,
                  "diffusion_step_embed_dim": 8},  # fmt: skip
    "diffusion_transformer": {"n_layer": 1, "n_head": 2, "n_emb": 16},
}


@pytest.fixture(scope="module")
def h5_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_file(tmp_path_factory.mktemp("diffusion") / "demos.hdf5", random_demos(),
                           {"train": ["demo_0", "demo_1", "demo_2", "demo_3"]})  # fmt: skip


def build(name: str, **values: Any) -> DiffusionBasePolicy:
    cls = policy_class(name)
    values = {**TINY[name], **values, "obs_keys": list(OBS_KEYS), "obs_dim": 6, "action_dim": 2}
    torch.manual_seed(0)
    return cls(config_from_values(cls.config_class, values))


def generators(n: int, offset: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(offset + i) for i in range(n)]


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sampler_is_built_from_the_training_scheduler_config(name: str, sampler: str) -> None:
    """Non-default schedule, clipping, prediction type and length all reach the sampler."""
    policy = build(name, sampler=sampler, num_train_timesteps=50, num_inference_steps=5,
                   beta_schedule="linear", clip_sample=False, action_normalization="mean_std",
                   prediction_type="sample")  # fmt: skip
    training, sampling = policy.noise_scheduler, policy.inference_scheduler
    assert type(training) is DDPMScheduler
    assert type(sampling) is (DDIMScheduler if sampler == "ddim" else DDPMScheduler)
    assert len(training.betas) == 50 and torch.equal(sampling.betas, training.betas)
    assert torch.equal(sampling.alphas_cumprod, training.alphas_cumprod)
    for key in ("num_train_timesteps", "beta_schedule", "clip_sample", "prediction_type",
                "clip_sample_range", "timestep_spacing"):  # fmt: skip
        assert sampling.config[key] == training.config[key], key
    assert training.config.prediction_type == "sample" and training.config.clip_sample is False
    # The paper's training schedule by default: 100 squared-cosine steps, clipped, epsilon.
    default = build(name).noise_scheduler.config
    assert (default.num_train_timesteps, default.beta_schedule, default.clip_sample,
            default.prediction_type) == (100, "squaredcos_cap_v2", True, "epsilon")  # fmt: skip


@pytest.mark.parametrize("name", sorted(TINY))
def test_switching_the_sampler_keeps_the_training_schedule(name: str) -> None:
    """``use_sampler`` (``polymimic eval --sampler``): DDPM-100 then DDIM-7 from one DDIM-10
    policy; the new sampler shares the training betas, and the config records the switch."""
    policy = build(name, num_train_timesteps=100, beta_schedule="linear", clip_sample=False,
                   action_normalization="mean_std")  # fmt: skip
    window = torch.randn(2, policy.config.obs_horizon, 6)
    with torch.no_grad():
        ddim_10 = policy.sample(window, generators(2), denoiser=policy.denoiser)
        policy.use_sampler("ddpm", 100)
        assert type(policy.inference_scheduler) is DDPMScheduler
        ddpm = policy.sample(window, generators(2), denoiser=policy.denoiser)
        policy.use_sampler("ddim", 7)
        ddim_7 = policy.sample(window, generators(2), denoiser=policy.denoiser)
    assert type(policy.inference_scheduler) is DDIMScheduler
    assert policy.inference_scheduler.num_inference_steps == 7
    assert torch.equal(policy.inference_scheduler.betas, policy.noise_scheduler.betas)
    assert policy.inference_scheduler.config.clip_sample is False
    assert (policy.config.sampler, policy.config.num_inference_steps) == ("ddim", 7)
    # Different samplers from the same noise give different draws (they really switched).
    assert not torch.allclose(ddim_10, ddpm) and not torch.allclose(ddim_10, ddim_7)
    with pytest.raises(ValueError, match="num_inference_steps"):
        policy.use_sampler("ddpm", 101)
    with pytest.raises(ValueError, match="sampler"):
        policy.use_sampler("euler", 10)
    with pytest.raises(ValueError, match=">= 1"):
        policy.use_sampler("ddim", 0)


def test_chunk_window_covers_the_observed_steps_then_the_future(h5_path: Path) -> None:
    """Training windows start at the first observed step, and the first action executed is
    the one at window index To-1: the action the demonstrator took at the current step."""
    policy = build("diffusion", obs_horizon=2, action_horizon=8, n_action_steps=3)
    spec = policy.batch_spec()
    assert spec.offsets == {"obs": (-1, 0), "actions": tuple(range(-1, 7))}
    dataset = WindowDataset(h5_path, OBS_KEYS, spec=spec)
    batch = dataset.get_batch(np.arange(len(dataset)))
    np.testing.assert_array_equal(batch["actions"][:, 1].numpy(), dataset.actions)
    np.testing.assert_array_equal(batch["obs"][:, 1].numpy(), dataset.obs)
    # A sampler whose window holds its own indices shows which actions get executed.
    identity = {"mean": np.zeros(2), "std": np.ones(2), "min": -np.ones(2), "max": np.ones(2)}
    policy.set_normalization({"obs": dataset.stats()["obs"], "actions": identity})
    calls = []

    def indices(obs_window: torch.Tensor, gens: Any) -> torch.Tensor:
        calls.append(obs_window.clone())
        return torch.arange(8.0)[None, :, None].repeat(len(obs_window), 1, 2)

    policy.sample = indices  # type: ignore[method-assign]
    obs = dataset.obs[:1]
    executed = [policy.predict_action(obs + t)[0, 0] for t in range(4)]
    assert executed == [1.0, 2.0, 3.0, 1.0]  # indices To-1 .. To-1+Ta-1, then a new sample
    assert len(calls) == 2
    np.testing.assert_array_equal(calls[1][0].numpy(), np.stack([obs[0] + 2, obs[0] + 3]))


def test_inconsistent_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="n_action_steps"):
        build("diffusion", obs_horizon=2, action_horizon=4, n_action_steps=4)
    with pytest.raises(ValueError, match="clip_sample"):
        build("diffusion", action_normalization="mean_std")
    with pytest.raises(ValueError, match=r"divisible by 4 \(2 \*\* \(len\(down_dims\) - 1\)\)"):
        build("diffusion", action_horizon=6, n_action_steps=4, down_dims=[8, 16, 32])
    with pytest.raises(ValueError, match="num_inference_steps"):
        build("diffusion_transformer", num_train_timesteps=5, num_inference_steps=10)
    with pytest.raises(ValueError, match="sampler"):
        build("diffusion", sampler="euler")


def test_ema_follows_the_papers_decay_from_the_loop_step() -> None:
    """shadow_k = d_k shadow_{k-1} + (1 - d_k) theta_k, d_1 = 0, d_k = min(0.9999, 1 - k^-0.75),
    with k the step handed in (a resumed run continues the sequence)."""
    net = nn.Linear(3, 2)
    ema = EMAWeights(net, power=0.75, max_decay=0.9999)
    expected = {k: v.detach().clone() for k, v in net.named_parameters()}
    for step in range(1, 8):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        ema.update(net, step)
        decay = 0.0 if step == 1 else min(0.9999, 1 - step**-0.75)
        for name, param in net.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * param.detach()
    for name, value in expected.items():
        torch.testing.assert_close(ema.shadow.get_buffer(name), value, rtol=1e-6, atol=1e-6)
    assert not list(ema.parameters()), "the shadow weights must not be trainable parameters"
    # A later step's decay depends on the step alone: a fresh EMA resumed at step 1000 moves
    # its shadow by 1 - d_1000 of the gap, not by a restarted warm-up's whole gap.
    resumed = EMAWeights(nn.Linear(3, 2))
    before = resumed.shadow.weight.clone()
    resumed.update(net, 1000)
    torch.testing.assert_close(resumed.shadow.weight - before,
                               1000**-0.75 * (net.weight.detach() - before))  # fmt: skip


@pytest.mark.parametrize("name", sorted(TINY))
def test_ema_weights_are_saved_and_evaluated(name: str, h5_path: Path, tmp_path: Path) -> None:
    policy = build(name, obs_horizon=2, action_horizon=4, n_action_steps=2, lr=1e-2,
                   lr_schedule="constant", lr_warmup_steps=0)  # fmt: skip
    initial = {k: v.clone() for k, v in policy.denoiser.state_dict().items()}
    dataset = WindowDataset(h5_path, OBS_KEYS, spec=policy.batch_spec())
    policy.set_normalization(dataset.stats())
    cfg = TrainConfig(num_steps=30, batch_size=16, log_every=30, save_every=0, device="cpu",
                      progress_bar=False)  # fmt: skip
    train(policy, dataset, cfg, tmp_path / "run")
    raw, averaged = policy.denoiser.state_dict(), policy.ema.shadow.state_dict()
    # The loop updated the EMA (on_step_end), and it lags the raw weights.
    assert any(not torch.equal(averaged[k], initial[k]) for k in initial)
    assert any(not torch.equal(averaged[k], raw[k]) for k in raw)
    save_checkpoint(policy, tmp_path / "ckpt")
    stored = load_file(str(tmp_path / "ckpt" / MODEL_FILE))
    for key, value in averaged.items():
        torch.testing.assert_close(stored[f"ema.shadow.{key}"], value, rtol=0, atol=0)
    loaded = load_checkpoint(tmp_path / "ckpt")
    window = torch.from_numpy(np.stack([dataset.obs[:3], dataset.obs[1:4]], axis=1))
    with torch.no_grad():
        got = loaded.predict_chunk(window, generators(3))
        with_ema = policy.eval().sample(window, generators(3), denoiser=policy.ema)
        with_raw = policy.sample(window, generators(3), denoiser=policy.denoiser)
    torch.testing.assert_close(got, policy.unnormalize_action(with_ema[:, 1:]), rtol=0, atol=0)
    assert not torch.allclose(got, policy.unnormalize_action(with_raw[:, 1:]), atol=1e-4)


def test_config_defaults_are_the_papers() -> None:
    c = DiffusionConfig()
    assert (c.obs_horizon, c.action_horizon, c.n_action_steps) == (2, 16, 8)
    assert (c.sampler, c.num_inference_steps, c.ema_power) == ("ddim", 10, 0.75)
    policy = DiffusionPolicy(DiffusionConfig(obs_dim=4, action_dim=2, down_dims=(8, 16, 32),
                                             n_groups=4, diffusion_step_embed_dim=8))  # fmt: skip
    with torch.no_grad():
        chunk = policy.eval().predict_chunk(torch.zeros(3, 2, 4), generators(3))
    assert chunk.shape == (3, 15, 2)  # Tp - To + 1 actions from the current step on
