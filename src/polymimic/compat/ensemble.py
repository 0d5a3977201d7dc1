"""The base ensemble: K members trained on the base demos (or loaded), and their inputs.

The paper's base policy is an ensemble of K = 5 MLPs trained on one trusted operator's
demonstrations (Gandhi et al., CoRL 2022; in their simulation runs hidden 1024, layer
norm, dropout 0.5). Here members are polymimic learners trained with polymimic's own loop
(``policies.train.train``), member ``k`` with seed ``seed + k``, on the base demos less a
held-out part (:func:`split_base`) that calibrates the thresholds. Or K checkpoints are
loaded (``policies.checkpoint.load_checkpoint``): they should have been trained on the
same split (the scoring record names it).

Members normalise observations and actions themselves; every prediction leaves this module
in the env's action space (the scorers clip to [-1, 1], as the paper).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymimic.config.values import config_from_values
from polymimic.datasets.reader import DatasetError, _demo_index, demo_names
from polymimic.datasets.windows import BatchSpec, WindowDataset
from polymimic.errors import OptionError, UserError
from polymimic.policies.base import Policy, policy_class
from polymimic.policies.checkpoint import load_checkpoint
from polymimic.policies.train import TrainConfig, seed_everything, train

#: Share of the base demos held out of training for calibration (at least one demo).
HELDOUT_FRACTION = 0.2
#: Steps per forward pass when predicting every step of a file.
PREDICT_BATCH = 4096


@dataclasses.dataclass(frozen=True)
class BaseSplit:
    """The base demos, split into the members' training demos and the held-out ones."""

    train: tuple[str, ...]
    heldout: tuple[str, ...]


def split_base(base: Sequence[str], seed: int, fraction: float = HELDOUT_FRACTION) -> BaseSplit:
    """A seeded ``fraction`` of the base held out (``round(fraction * n)``, at least 1 and at
    most ``n - 1``), chosen by ``default_rng(seed).permutation(n)`` over the demos in order.

    Raises:
        UserError: fewer than two base demos (one to train on, one to calibrate with).
    """
    names = sorted(set(base), key=_demo_index)
    if len(names) < 2:
        raise UserError(
            f"the base holds {len(names)} demo(s); it needs at least 2 (members train on "
            "80 % and the thresholds are calibrated on the rest): choose a larger base mask "
            "or more base operators"
        )
    count = min(max(1, round(fraction * len(names))), len(names) - 1)
    held = set(np.random.default_rng(seed).permutation(len(names))[:count].tolist())
    return BaseSplit(
        train=tuple(n for i, n in enumerate(names) if i not in held),
        heldout=tuple(n for i, n in enumerate(names) if i in held),
    )


class DemoWindows(WindowDataset):
    """A ``WindowDataset`` of an explicit list of demos instead of a mask's."""

    def __init__(self, path: str | Path, obs_keys: Sequence[str], demos: Sequence[str],
                 spec: BatchSpec) -> None:  # fmt: skip
        self._wanted = list(demos)
        super().__init__(path, obs_keys, filter_key=None, spec=spec)

    def _select(self, f: Any, filter_key: str | None) -> list[str]:
        known = set(demo_names(f))
        missing = [n for n in self._wanted if n not in known]
        if missing:
            raise DatasetError(f"{self.path}: no demos {missing[:5]}; see `polymimic data info`")
        return sorted(set(self._wanted), key=_demo_index)


def build_member(
    policy_type: str,
    preset: str,
    dims: tuple[tuple[str, ...], int, int],
    overrides: dict[str, Any] | None = None,
) -> Policy:
    """A fresh learner ``policy_type`` with preset ``preset``'s values (plus ``overrides``),
    sized for the data ``dims = (obs_keys, obs_dim, action_dim)``.

    Raises:
        UserError: an unknown preset or config values out of bounds.
    """
    cls = policy_class(policy_type)
    if preset not in cls.presets:
        raise OptionError(
            f"{policy_type} has no preset {preset!r}; presets: {', '.join(sorted(cls.presets))}"
        )
    obs_keys, obs_dim, action_dim = dims
    values = {**cls.presets[preset], **(overrides or {})}
    values.update(obs_keys=list(obs_keys), obs_dim=obs_dim, action_dim=action_dim)
    return cls(config_from_values(cls.config_class, values, where=f"{policy_type} member"))


@dataclasses.dataclass(frozen=True)
class MemberTraining:
    """How members are trained: learner, preset, optimiser steps, batch and device."""

    policy_type: str
    preset: str = "cpu_small"
    steps: int = 2000
    batch_size: int = 256
    device: str = "cpu"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


def train_members(
    path: str | Path,
    demos: Sequence[str],
    dims: tuple[tuple[str, ...], int, int],
    how: MemberTraining,
    members: int,
    seed: int,
    work_dir: Path,
) -> list[Path]:
    """Train ``members`` learners on ``demos``; member ``k`` is seeded ``seed + k``.

    Each run writes what ``policies.train.train`` writes into ``work_dir/member_<k>``; the
    checkpoint is ``member_<k>/checkpoints/last``.

    Returns:
        The K checkpoint directories.
    """
    spec = build_member(how.policy_type, how.preset, dims, how.overrides).batch_spec()
    dataset = DemoWindows(path, dims[0], demos, spec)  # read once, shared by every member
    checkpoints = []
    for k in range(members):
        seed_everything(seed + k)  # before building: the seed fixes the initial weights
        policy = build_member(how.policy_type, how.preset, dims, how.overrides)
        policy.set_normalization(dataset.stats())
        cfg = TrainConfig(
            num_steps=how.steps, batch_size=how.batch_size, seed=seed + k, device=how.device,
            save_every=0, log_every=how.steps, progress_bar=False,
        )  # fmt: skip
        run_dir = work_dir / f"member_{k}"
        train(policy, dataset, cfg, run_dir, checkpoint_extra={"compat_member": k,
                                                               "compat_demos": list(demos)})
        checkpoints.append(run_dir / "checkpoints" / "last")
    return checkpoints


def load_members(
    directories: Sequence[str | Path], policy_type: str, dims: tuple[tuple[str, ...], int, int],
    device: str = "cpu",
) -> list[Policy]:  # fmt: skip
    """Load K checkpoints and check that they fit the scorer and the data.

    Raises:
        UserError: an unreadable checkpoint, another learner than ``policy_type``, other
            observation keys or widths than the file's, or members of different horizons.
    """
    obs_keys, obs_dim, action_dim = dims
    policies = [load_checkpoint(d, device=device) for d in directories]
    for directory, policy in zip(directories, policies, strict=True):
        c = policy.config
        if policy.name != policy_type:
            raise UserError(
                f"{directory} holds a {policy.name!r} checkpoint; this scorer needs "
                f"{policy_type!r} members (choose the matching --scorer)"
            )
        if tuple(c.obs_keys) != tuple(obs_keys) or (c.obs_dim, c.action_dim) != (obs_dim, action_dim):
            raise UserError(
                f"{directory} was trained on observations {list(c.obs_keys)} ({c.obs_dim}) "
                f"and actions ({c.action_dim}); the dataset has {list(obs_keys)} ({obs_dim}) "
                f"and ({action_dim}): give checkpoints trained on this task's data"
            )
    if len({p.config.obs_horizon for p in policies}) > 1:
        raise UserError("the checkpoints differ in obs_horizon; give members of one config")
    return policies


@dataclasses.dataclass(frozen=True)
class ScoredSteps:
    """Every step of the scored demos: observation windows, actions and their demo.

    Attributes:
        demos: the demo names, in storage order.
        obs: ``(N, obs_horizon, obs_dim)`` raw observation windows (padded at episode
            starts by repeating the first frame, as in training).
        actions: ``(N, A)`` demonstrated actions.
        demo_index: ``(N,)`` the position in ``demos`` of each step's demo.
    """

    demos: tuple[str, ...]
    obs: np.ndarray
    actions: np.ndarray
    demo_index: np.ndarray


def scored_steps(
    path: str | Path, demos: Sequence[str], obs_keys: Sequence[str], obs_horizon: int
) -> ScoredSteps:
    """Read every step of ``demos`` through the checked reader, windowed as the members see
    observations during training."""
    dataset = DemoWindows(path, obs_keys, demos, BatchSpec.from_horizons(obs_horizon, 1))
    batch = dataset.get_batch(np.arange(len(dataset)))
    lengths = dataset.episode_lengths
    return ScoredSteps(
        demos=tuple(dataset.demo_names),
        obs=batch["obs"].numpy(),
        actions=batch["actions"][:, 0].numpy().astype(np.float64),
        demo_index=np.repeat(np.arange(len(lengths)), lengths),
    )


@torch.no_grad()
def batched_forward(
    policy: Policy, obs: np.ndarray, fn: Any, batch_size: int = PREDICT_BATCH
) -> list[Any]:
    """``fn(policy, window_batch)`` over ``obs`` in batches, in eval mode (dropout off),
    on the policy's device; the results in order (one per batch)."""
    was_training = policy.training
    policy.eval()
    device = policy.obs_normalizer.offset.device
    try:
        return [
            fn(policy, torch.from_numpy(obs[i : i + batch_size]).to(device))
            for i in range(0, len(obs), batch_size)
        ]
    finally:
        policy.train(was_training)
