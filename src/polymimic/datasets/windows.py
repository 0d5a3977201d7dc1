"""Fixed-length observation/action windows over a robomimic-layout HDF5 file, held in memory.

Every time step of every selected demonstration is one item. The window around step ``t``
follows robomimic's ``SequenceDataset`` and diffusion_policy's padding: observations
``t-obs_horizon+1 .. t`` with the episode's first observation repeated before its start, and
actions ``t .. t+action_horizon-1`` with the episode's last action repeated past its end.

All gathering is done with precomputed index arrays, so a whole batch is one numpy fancy-index
(see ``get_batch``) rather than a Python loop over items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from polymimic.datasets.obs import flatten_obs
from polymimic.datasets.reader import (
    DatasetError,
    demo_names,
    obs_keys_of,
    open_dataset,
    read_demo_arrays,
    read_env_args,
)

# A dimension whose std is below this is treated as constant and left unscaled (std := 1).
# Why not a tiny floor such as 1e-6: a coordinate that never moves in the demonstrations (a
# fixed target, a block nobody touched) would then be divided by 1e-6 at rollout time, and a
# 1 mm perturbation would reach the network as a 1000-sigma input. 1e-4 sits well below any
# meaningful variation in metre/radian units and well above float32 round-off of such values.
# diffusion_policy's normaliser makes the same choice (range_eps=1e-4).
STD_EPS = 1e-4


def _rows(array: np.ndarray) -> np.ndarray:
    # (T,) scalars per step become (T, 1), so concatenation is per step, never across time.
    array = np.asarray(array, dtype=np.float32)
    return array.reshape(len(array), -1)


def available_obs_keys(path: str | Path) -> list[str]:
    """Sorted observation keys of the first demonstration in ``path``."""
    return obs_keys_of(path)


def window_indices(
    lengths: np.ndarray, obs_horizon: int, action_horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Global row indices of every item's observation and action window.

    Args:
        lengths: (E,) episode lengths, episodes stored back to back.
        obs_horizon: number of observations per window (current one last).
        action_horizon: number of actions per window (current one first).

    Returns:
        ``(obs_idx, action_idx)`` shaped (N, obs_horizon) and (N, action_horizon), N = sum(lengths),
        clamped to each row's own episode (which is what repeats the first/last element).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    step_start = np.repeat(starts, lengths)[:, None]
    step_last = np.repeat(ends - 1, lengths)[:, None]
    rows = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)[:, None]
    obs_idx = np.maximum(rows + np.arange(-obs_horizon + 1, 1), step_start)
    action_idx = np.minimum(rows + np.arange(action_horizon), step_last)
    return obs_idx, action_idx


class WindowDataset(Dataset):
    """In-memory windows of flattened observations and actions from one HDF5 file.

    Item ``i`` is a dict with ``"obs"`` (obs_horizon, obs_dim) and ``"actions"``
    (action_horizon, action_dim), both float32 tensors. Only ``obs/<key>`` and ``actions`` are
    read: learners never see the per-demo metadata (operator, strategy, quality labels).

    Attributes:
        obs_keys: the observation keys, in the order they are concatenated.
        demo_names: the selected demonstrations, in storage order.
        episode_lengths: (E,) number of steps of each selected demonstration.
        env_args: the file's ``data.attrs["env_args"]`` parsed from JSON (not yet checked
            against the env allowlist: whoever makes an env from it does that).
    """

    def __init__(
        self,
        path: str | Path,
        obs_keys: Sequence[str] = (),
        filter_key: str | None = "train",
        obs_horizon: int = 1,
        action_horizon: int = 1,
    ) -> None:
        """Load the selected demonstrations.

        Args:
            path: HDF5 file in robomimic's layout.
            obs_keys: observation keys to concatenate; empty means every key of the file, sorted.
            filter_key: name of a ``mask/<filter_key>`` list of demos; None selects every demo.
            obs_horizon: observations per window (>= 1).
            action_horizon: actions per window (>= 1).

        Raises:
            DatasetError: missing file, unknown filter key or observation key, no steps.
        """
        if obs_horizon < 1 or action_horizon < 1:
            raise ValueError(f"horizons must be >= 1, got {obs_horizon=}, {action_horizon=}")
        self.path = Path(path)
        self.obs_horizon = obs_horizon
        self.action_horizon = action_horizon
        self.obs_keys = tuple(obs_keys) or tuple(available_obs_keys(self.path))
        self._load(filter_key)
        self._obs_idx, self._action_idx = window_indices(
            self.episode_lengths, obs_horizon, action_horizon
        )

    def _load(self, filter_key: str | None) -> None:
        """Read the selected demos through the one checked reader (``datasets.reader``)."""
        obs_parts, action_parts, lengths = [], [], []
        keys = [f"obs/{k}" for k in self.obs_keys]
        with open_dataset(self.path) as f:
            self.env_args: dict[str, Any] = read_env_args(f)
            self.demo_names = demo_names(f, filter_key)
            for name in self.demo_names:
                arrays = read_demo_arrays(f, name, [*keys, "actions"])
                obs = {k: _rows(arrays[f"obs/{k}"]) for k in self.obs_keys}
                obs_parts.append(flatten_obs(obs, self.obs_keys))
                action_parts.append(_rows(arrays["actions"]))
                lengths.append(len(action_parts[-1]))
            if not lengths:
                problem = f"mask '{filter_key}' selects no demos"
                raise DatasetError(f"{self.path}: {problem}. Choose another filter key.")
            widths = {part.shape[1] for part in obs_parts}, {part.shape[1] for part in action_parts}
            if len(widths[0]) > 1 or len(widths[1]) > 1:
                problem = f"demos differ in observation/action widths {widths}"
                raise DatasetError(f"{self.path}: {problem}. Run `polymimic data validate`.")
        self.obs = np.ascontiguousarray(np.concatenate(obs_parts), dtype=np.float32)
        self.actions = np.ascontiguousarray(np.concatenate(action_parts), dtype=np.float32)
        self.episode_lengths = np.asarray(lengths, dtype=np.int64)

    @property
    def obs_dim(self) -> int:
        """Width of one flattened observation."""
        return int(self.obs.shape[1])

    @property
    def action_dim(self) -> int:
        """Width of one action."""
        return int(self.actions.shape[1])

    def __len__(self) -> int:
        return len(self._obs_idx)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "obs": torch.from_numpy(self.obs[self._obs_idx[index]]),
            "actions": torch.from_numpy(self.actions[self._action_idx[index]]),
        }

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """A whole batch in one gather: ``"obs"`` (B, obs_horizon, obs_dim), ``"actions"`` (B, ...).

        The training loop uses this instead of B calls to ``__getitem__`` plus collation.
        (Not ``__getitems__``: torch expects that to return a list of items, and a plain
        ``DataLoader(dataset, batch_size=...)`` must keep working.)
        """
        idx = np.asarray(indices, dtype=np.int64)
        return {
            "obs": torch.from_numpy(self.obs[self._obs_idx[idx]]),
            "actions": torch.from_numpy(self.actions[self._action_idx[idx]]),
        }

    def to_device(self, device: torch.device | str) -> DeviceWindows:
        """The same windows with their arrays copied to ``device`` once (see DeviceWindows)."""
        return DeviceWindows(self, torch.device(device))

    def stats(self) -> dict[str, np.ndarray]:
        """Per-dimension mean and std of observations and actions over the selected steps.

        Computed over time steps (each counted once), not over windows, so padding does not
        over-weight episode starts and ends. Stds below ``STD_EPS`` are replaced by 1.

        Returns:
            float32 arrays ``obs_mean``, ``obs_std`` (obs_dim,), ``action_mean``, ``action_std``.
        """

        def mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x64 = x.astype(np.float64)  # float32 sums over ~1e6 steps lose digits
            std = x64.std(axis=0)
            std = np.where(std < STD_EPS, 1.0, std)
            return x64.mean(axis=0).astype(np.float32), std.astype(np.float32)

        obs_mean, obs_std = mean_std(self.obs)
        action_mean, action_std = mean_std(self.actions)
        return {
            "obs_mean": obs_mean,
            "obs_std": obs_std,
            "action_mean": action_mean,
            "action_std": action_std,
        }


class DeviceWindows:
    """A WindowDataset's arrays as tensors on one device; ``get_batch`` gathers there.

    Copying the (small: 210k steps x 20 floats is 17 MB) state arrays to the GPU once removes
    the per-step host work, a numpy gather, pinning and a host-to-device copy, which
    otherwise dominates small learners on a GPU. Batches hold exactly the values
    ``WindowDataset.get_batch`` gives for the same indices.
    """

    def __init__(self, dataset: WindowDataset, device: torch.device) -> None:
        self.device = device
        self.obs = torch.from_numpy(dataset.obs).to(device)
        self.actions = torch.from_numpy(dataset.actions).to(device)
        self._obs_idx = torch.from_numpy(dataset._obs_idx).to(device)
        self._action_idx = torch.from_numpy(dataset._action_idx).to(device)

    def __len__(self) -> int:
        return len(self._obs_idx)

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """``"obs"`` (B, obs_horizon, obs_dim) and ``"actions"`` (B, action_horizon, A) on the device."""
        idx = torch.as_tensor(indices, dtype=torch.int64).to(self.device, non_blocking=True)
        return {"obs": self.obs[self._obs_idx[idx]], "actions": self.actions[self._action_idx[idx]]}
