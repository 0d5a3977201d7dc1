"""Every registered learner: shapes, per-environment randomness, presets, checkpoint round
trip and exact resume (optimiser, schedule and RNG state) through the one training loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import polymimic.policies  # noqa: F401  (registers the built-in learners)
from demo_files import random_demos, write_demo_file
from polymimic.config.values import config_from_values
from polymimic.datasets.windows import WindowDataset
from polymimic.policies.base import Policy, policy_class, registered_policies
from polymimic.policies.checkpoint import load_checkpoint, save_checkpoint
from polymimic.policies.train import TrainConfig, train

# Learners the interface tests register are stand-ins, not learners.
LEARNERS = [name for name in registered_policies() if not name.startswith("test_")]
# A tiny config per learner: a learner registered without an entry here fails the tests below.
# Dropout where the learner has it, so the resume test sees the loop's use of the torch RNG;
# mixture heads where the learner has them, so sampling is tested.
TINY: dict[str, dict[str, Any]] = {
    "bc_mlp": {"hidden_dims": (16, 16), "dropout": 0.1, "obs_horizon": 2},
    "bc_gmm": {"hidden_dims": (16, 16), "dropout": 0.1, "obs_horizon": 2, "gmm_modes": 3,
               "low_noise_eval": False},  # fmt: skip
    "bc_rnn": {"rnn_hidden_dim": 16, "rnn_num_layers": 2, "hidden_dims": (16,),
               "obs_horizon": 3, "gmm_modes": 3, "low_noise_eval": False},  # fmt: skip
    "bc_transformer": {"embed_dim": 16, "num_layers": 2, "num_heads": 2, "obs_horizon": 3,
                       "gmm_modes": 3, "low_noise_eval": False},  # fmt: skip
    # Chunked: 2 executed actions per sample, so the 3 control steps below sample twice.
    "diffusion": {"down_dims": (8, 16), "kernel_size": 3, "n_groups": 4,
                  "diffusion_step_embed_dim": 8, "obs_horizon": 2, "action_horizon": 4,
                  "n_action_steps": 2, "num_train_timesteps": 20, "num_inference_steps": 4},  # fmt: skip
    "diffusion_transformer": {"n_layer": 2, "n_head": 2, "n_emb": 16, "p_drop_attn": 0.1,
                              "p_drop_emb": 0.1, "obs_horizon": 2, "action_horizon": 4,
                              "n_action_steps": 2, "num_train_timesteps": 20,
                              "num_inference_steps": 4},  # fmt: skip
    "bet": {"n_layer": 2, "n_head": 2, "n_embd": 16, "obs_horizon": 3, "n_bins": 4,
            "kmeans_iterations": 10},  # fmt: skip
    # Offline RL: one transition per item; the fixture's file has a failed demo, which
    # use_failed (default on) adds to the training items.
    "iql": {"hidden_dims": (16, 16)},
    "cql": {"hidden_dims": (16, 16), "n_actions": 3},
    "td3_bc": {"hidden_dims": (16, 16)},
    "bcq": {"hidden_dims": (16, 16), "vae_hidden_dims": (16, 16), "n_train_candidates": 3,
            "n_eval_candidates": 5},  # fmt: skip
}
# Learners whose actions are drawn at random at inference (each gets a per-row generator).
STOCHASTIC = {"diffusion", "diffusion_transformer", "bet", "bcq"}
# Other heads and supervision of the same learners, for the shape and round-trip tests.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: (name, {}) for name in LEARNERS},
    "bc_rnn_mse": ("bc_rnn", {"gmm_modes": 0}),
    "bc_transformer_mse_all_steps": ("bc_transformer", {"gmm_modes": 0, "supervise_all_steps": True}),
    # DDPM draws fresh noise at every denoising step (DDIM only at the start).
    "diffusion_ddpm": ("diffusion", {"sampler": "ddpm", "num_inference_steps": 20}),
    "diffusion_transformer_ddpm_sample": ("diffusion_transformer", {"sampler": "ddpm",
                                          "prediction_type": "sample", "causal_attn": False}),
}
OBS_KEYS = ("block_red", "tip_pos")


@pytest.fixture(scope="module")
def h5_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # demo_4 is only in mask/failed: imitation learners never see it, offline RL does.
    return write_demo_file(
        tmp_path_factory.mktemp("learners") / "demos.hdf5", random_demos(count=5),
        {"train": ["demo_0", "demo_1", "demo_2", "demo_3"], "failed": ["demo_4"]},
    )  # fmt: skip


def build(name: str, h5_path: Path, init_seed: int = 0, **overrides: Any) -> tuple[Policy, WindowDataset]:
    """The learner ``name`` at its tiny config (plus ``overrides``) and its dataset."""
    if name not in TINY:
        pytest.fail(f"learner {name!r} is registered but has no tiny config in TINY")
    cls = policy_class(name)
    values = {**TINY[name], **overrides, "obs_keys": OBS_KEYS, "obs_dim": 6, "action_dim": 2}
    config = config_from_values(cls.config_class, config_to_dict_like(values), where=name)
    torch.manual_seed(init_seed)
    policy = cls(config)
    dataset = WindowDataset(h5_path, OBS_KEYS, spec=policy.batch_spec())
    policy.set_normalization(dataset.stats())
    policy.fit_to_data(dataset, seed=0)  # as the training loop does before its first step
    return policy, dataset


def config_to_dict_like(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def generators(seeds: range | list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_every_registered_learner_is_covered() -> None:
    assert {"bc_mlp", "bc_gmm", "bc_rnn", "bc_transformer", "bet", "diffusion",
            "diffusion_transformer", "iql", "cql", "td3_bc", "bcq"} <= set(LEARNERS)  # fmt: skip
    assert set(LEARNERS) <= set(TINY), f"add a tiny config for {set(LEARNERS) - set(TINY)}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_shapes_loss_and_gradients(variant: str, h5_path: Path) -> None:
    name, overrides = VARIANTS[variant]
    policy, dataset = build(name, h5_path, **overrides)
    batch = dataset.get_batch(np.arange(5))
    # Each optimiser's loss reaches every parameter that optimiser steps.
    for spec in policy.configure_optimizers(10):
        policy.zero_grad(set_to_none=True)
        loss = policy.compute_loss(batch, spec.name)["loss"]
        assert loss.ndim == 0 and torch.isfinite(loss), spec.name
        loss.backward()
        names = {id(p): k for k, p in policy.named_parameters()}
        params = [p for group in spec.optimizer.param_groups for p in group["params"]]
        unused = [names[id(p)] for p in params if p.grad is None or not p.grad.any()]
        assert not unused, f"parameters of {spec.name!r} without gradient: {unused}"
    obs = dataset.obs[:5]
    window = torch.from_numpy(np.repeat(obs[:, None], policy.config.obs_horizon, axis=1))
    with torch.no_grad():
        chunk = policy.eval().predict_chunk(window, generators(range(5)))
    # One action per step, or a chunk from the current step on (diffusion: Tp - To + 1).
    to, tp = policy.config.obs_horizon, policy.config.action_horizon
    assert chunk.shape == (5, 1 if tp == 1 else tp - to + 1, 2)
    action = policy.predict_action(obs, generators(range(5)))
    assert action.shape == (5, 2) and action.dtype == np.float32 and np.isfinite(action).all()
    with pytest.raises(ValueError, match=r"expected observations \(B, 6\)"):
        policy.predict_action(np.zeros((2, 5), dtype=np.float32))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_batched_actions_equal_single_environment_actions(variant: str, h5_path: Path) -> None:
    """Each environment's action depends on its own history and generator, not on the batch."""
    name, overrides = VARIANTS[variant]
    policy, dataset = build(name, h5_path, **overrides)
    steps = [dataset.obs[t : t + 4] for t in (0, 5, 10)]  # 4 environments, 3 control steps
    gens = generators([11, 12, 13, 14])
    batched = [policy.predict_action(obs, gens) for obs in steps]
    for env in range(4):
        policy.reset()
        gen = generators([11 + env])
        single = [policy.predict_action(obs[env : env + 1], gen)[0] for obs in steps]
        np.testing.assert_allclose(np.stack(single), np.stack([b[env] for b in batched]),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_save_load_gives_identical_actions(variant: str, h5_path: Path, tmp_path: Path) -> None:
    name, overrides = VARIANTS[variant]
    policy, dataset = build(name, h5_path, **overrides)
    save_checkpoint(policy, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert type(loaded) is type(policy) and loaded.config == policy.config
    runs = []
    for model in (policy, loaded):
        model.reset()
        gens = generators([3, 4, 5])
        runs.append([model.predict_action(dataset.obs[t : t + 3], gens) for t in range(6)])
    np.testing.assert_array_equal(np.stack(runs[0]), np.stack(runs[1]))
    if getattr(policy.config, "gmm_modes", 0) or name in STOCHASTIC:
        # Stochastic: other seeds give other actions, so the equality above is not vacuous.
        policy.reset()
        other = policy.predict_action(dataset.obs[0:3], generators([6, 7, 8]))
        assert not np.array_equal(other, runs[0][0])


class Interrupted(Exception):
    pass


class CrashingDataset:
    """Serves ``dataset``'s batches, then raises while fetching batch ``crash_at``."""

    def __init__(self, dataset: WindowDataset, crash_at: int) -> None:
        self.dataset, self.crash_at, self.fetched = dataset, crash_at, 0
        self.actions = dataset.actions  # what fit_to_data reads (bet's k-means)

    def __len__(self) -> int:
        return len(self.dataset)

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        self.fetched += 1
        if self.fetched == self.crash_at:
            raise Interrupted
        return self.dataset.get_batch(indices)


def read_log(run_dir: Path) -> list[dict]:
    lines = (run_dir / "train_log.jsonl").read_text().splitlines()
    timing = ("steps_per_s", "train_wall_s")  # wall-clock measurements, not reproducible
    return [{k: v for k, v in json.loads(line).items() if k not in timing} for line in lines]


@pytest.mark.parametrize("name", LEARNERS)
def test_resume_is_exact_with_schedule_and_rng(name: str, h5_path: Path, tmp_path: Path) -> None:
    """Killed during step 7 (last checkpoint at step 5), resumed in a fresh policy: weights,
    losses and learning rates equal an uninterrupted run's bit for bit."""
    schedule = {"lr_schedule": "cosine", "lr_warmup_steps": 3}
    cfg = TrainConfig(num_steps=12, batch_size=8, log_every=1, save_every=5, progress_bar=False,
                      device="cpu")  # fmt: skip
    straight, dataset = build(name, h5_path, **schedule)
    train(straight, dataset, cfg, tmp_path / "straight")
    interrupted, _ = build(name, h5_path, **schedule)
    with pytest.raises(Interrupted):
        train(interrupted, CrashingDataset(dataset, 7), cfg, tmp_path / "resumed")
    fresh, _ = build(name, h5_path, init_seed=99, **schedule)  # weights must come from disk
    cfg.resume = True
    train(fresh, dataset, cfg, tmp_path / "resumed")
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0, msg=key)
    straight_log, resumed_log = read_log(tmp_path / "straight"), read_log(tmp_path / "resumed")
    assert [line["step"] for line in resumed_log] == [1, 2, 3, 4, 5, 6, *range(6, 13)]
    assert resumed_log[6:] == straight_log[5:]  # same losses and lr from step 6 on
    lrs = [line["lr"] for line in straight_log]
    assert lrs[0] < lrs[2] and lrs[-1] < lrs[3]  # the schedule ran: warm-up, then decay


@pytest.mark.parametrize("name", LEARNERS)
def test_presets_are_valid_configs_of_their_learner(name: str) -> None:
    cls = policy_class(name)
    assert {"reference", "cpu_small"} <= set(cls.presets)
    for preset, values in cls.presets.items():
        config = config_from_values(
            cls.config_class, config_to_dict_like({**values, "obs_dim": 20, "action_dim": 2}),
            where=f"{name}/{preset}",
        )  # fmt: skip
        with torch.device("meta"):  # builds without allocating (the reference ones are big)
            cls(config)
