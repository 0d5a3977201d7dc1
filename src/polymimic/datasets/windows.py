"""Training batches as a learner declares them: keys with frame offsets, held in memory.

A learner states what one training item holds with a :class:`BatchSpec`: for each key
(``obs``, ``actions``, ``rewards``, ``next_obs``, ``terminations``, ``truncations``) the frame
offsets relative to the item's step ``t`` (LeRobot's ``delta_indices``). BC-MLP with an
observation history of 2 asks for ``{"obs": (-1, 0), "actions": (0,)}``; a diffusion policy
for ``{"obs": (-1, 0), "actions": (-1, 0, ..., 14)}``; offline RL for ``rewards``,
``next_obs`` and the two episode-end flags at offset 0.

Every time step of every selected demonstration is one item. A frame outside its episode is
padded as robomimic's ``SequenceDataset`` and diffusion_policy do: the episode's first frame
repeated before its start, its last frame repeated past its end, and ``<key>_is_pad`` marks
which entries are padding (a learner may mask them out of its loss).

Shapes in a batch of B items: vector keys (``obs``, ``next_obs``: flattened observation keys;
``actions``) are ``(B, n_offsets, dim)`` float32; scalar keys (``rewards``, ``terminations``,
``truncations``) are ``(B, n_offsets)`` float32; ``<key>_is_pad`` is ``(B, n_offsets)`` bool.
All gathering is done with precomputed index arrays, so a whole batch is one fancy-index
(``get_batch``) rather than a Python loop over items. Files are read through the one checked
reader (``polymimic.datasets.reader``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from polymimic.datasets.obs import flatten_obs
from polymimic.datasets.reader import (
    DatasetError,
    _demo_index,
    all_array_keys,
    check_demo,
    demo_names,
    obs_keys_of,
    open_dataset,
    read_demo_arrays,
    read_env_args,
)

# A dimension whose std (or half range) is below this is treated as constant and left
# unscaled. Why not a tiny floor such as 1e-6: a coordinate that never moves in the
# demonstrations (a fixed target, a block nobody touched) would then be divided by 1e-6 at
# rollout time, and a 1 mm perturbation would reach the network as a 1000-sigma input. 1e-4
# sits well below any meaningful variation in metre/radian units and well above float32
# round-off of such values. diffusion_policy's normaliser makes the same choice (range_eps).
STD_EPS = 1e-4
#: Keys a batch may hold: per-step vectors and per-step scalars.
VECTOR_KEYS = ("obs", "next_obs", "actions")
SCALAR_KEYS = ("rewards", "terminations", "truncations")
MAX_OFFSET = 1024


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """What one training item holds, declared by the learner.

    Attributes:
        offsets: key -> frame offsets relative to the item's step (negative: the past).
        extra_masks: masks whose demos are trained on in addition to the run's filter key
            (offline RL adds ``failed``: failures teach it what not to do).
    """

    offsets: Mapping[str, tuple[int, ...]]
    extra_masks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.offsets) - set(VECTOR_KEYS) - set(SCALAR_KEYS))
        if unknown or "obs" not in self.offsets:
            raise ValueError(
                f"batch keys must include 'obs' and come from {VECTOR_KEYS + SCALAR_KEYS}; "
                f"got {sorted(self.offsets)}"
            )
        for key, offsets in self.offsets.items():
            if not offsets or any(abs(int(o)) > MAX_OFFSET for o in offsets):
                raise ValueError(f"offsets of {key!r} must be 1+ ints within ±{MAX_OFFSET}")

    @classmethod
    def from_horizons(cls, obs_horizon: int = 1, action_horizon: int = 1) -> BatchSpec:
        """Observations ``t-obs_horizon+1 .. t`` and actions ``t .. t+action_horizon-1``."""
        return cls(
            {"obs": tuple(range(1 - obs_horizon, 1)), "actions": tuple(range(action_horizon))}
        )


def _rows(array: np.ndarray) -> np.ndarray:
    # (T,) scalars per step become (T, 1), so concatenation is per step, never across time.
    array = np.asarray(array, dtype=np.float32)
    return array.reshape(len(array), -1)


def available_obs_keys(path: str | Path) -> list[str]:
    """Sorted observation keys of the first demonstration in ``path``."""
    return obs_keys_of(path)


def dataset_dims(path: str | Path, obs_keys: Sequence[str] = ()) -> tuple[tuple[str, ...], int, int]:
    """``(obs_keys, obs_dim, action_dim)`` from the first demo's shapes, reading no arrays.

    Empty ``obs_keys`` means every key of the file, sorted. A learner is sized from this
    before its ``batch_spec`` decides what to load.

    Raises:
        DatasetError: a bad file, no demos, or an observation key the file lacks.
    """
    with open_dataset(path) as f:
        names = demo_names(f)
        if not names:
            raise DatasetError(f"{path}: 'data' holds no demos. Point to a generated dataset.")
        first = check_demo(f, names[0])
        keys = tuple(obs_keys) or tuple(sorted(first["obs"]))
        missing = [k for k in keys if k not in first["obs"]]
        if missing:
            problem = f"{first.name} has no 'obs/{missing[0]}'; available: {sorted(first['obs'])}"
            raise DatasetError(f"{path}: {problem}. Choose keys from `polymimic data info`.")
        obs_dim = sum(int(np.prod(first["obs"][k].shape[1:])) for k in keys)
        return keys, obs_dim, int(np.prod(first["actions"].shape[1:]))


def window_indices(
    lengths: np.ndarray, offsets: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Global row indices of every item's frames at ``offsets``, and which are padding.

    Args:
        lengths: (E,) episode lengths, episodes stored back to back.
        offsets: frame offsets relative to each item's own step.

    Returns:
        ``(index, is_pad)``, both (N, len(offsets)), N = sum(lengths): indices clamped to
        each row's own episode (which repeats its first/last frame), and True where clamped.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    step_start = np.repeat(starts, lengths)[:, None]
    step_last = np.repeat(ends - 1, lengths)[:, None]
    rows = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)[:, None]
    wanted = rows + np.asarray(offsets, dtype=np.int64)[None, :]
    index = np.clip(wanted, step_start, step_last)
    return index, index != wanted


def active_steps(actions: np.ndarray, idle_below: float) -> np.ndarray:
    """(N,) bool: the steps whose action has some component of at least ``idle_below``.

    People pause while demonstrating (polymimic's operators before a contact, 10 % of Push
    v1's steps, runs up to 1.6 s). A Markov policy sees the same state all through a pause
    and learns to predict "stay", and once it has stopped the state never changes again: a
    BC-MLP trained on Push v1 (cpu_small, 45 min) stood still in every one of 480 episodes.
    Dropping those items is the usual remedy for teleoperated data (OpenVLA's processing of
    the LIBERO demonstrations filters "no-op" actions so the policy does not learn to stand
    still; Kim et al. 2024). Tasks with a gripper command in the
    action (Stack: +-1) never have an all-small action, so nothing is dropped there.

    It is off by default because on Push v1 it cured the standing still but not the
    failing: BC-MLP (cpu_small, 40k steps, protocol cpu, 32 episodes) succeeded 4 times
    without it and 0 times with ``idle_below=0.02``, drifting to the workspace's corner
    instead of stopping.
    """
    return np.max(np.abs(actions), axis=1) >= idle_below


def _stats(x: np.ndarray) -> dict[str, np.ndarray]:
    x64 = x.astype(np.float64)  # float32 sums over ~1e6 steps lose digits
    return {
        "mean": x64.mean(axis=0).astype(np.float32),
        "std": x64.std(axis=0).astype(np.float32),
        "min": x64.min(axis=0).astype(np.float32),
        "max": x64.max(axis=0).astype(np.float32),
    }


class WindowDataset(Dataset):
    """In-memory training items of one HDF5 file, shaped by a :class:`BatchSpec`.

    Only ``obs/<key>`` (and ``next_obs/<key>``), ``actions``, ``rewards``, ``terminations``
    and ``truncations`` are read: learners never see the per-demo labels (operator,
    strategy, quality).

    Attributes:
        obs_keys: the observation keys, in the order they are concatenated.
        spec: the batch specification.
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
        spec: BatchSpec | None = None,
        idle_below: float = 0.0,
    ) -> None:
        """Load the selected demonstrations.

        Args:
            path: HDF5 file in robomimic's layout.
            obs_keys: observation keys to concatenate; empty means every key of the file, sorted.
            filter_key: name of a ``mask/<filter_key>`` list of demos; None selects every demo.
            obs_horizon, action_horizon: shorthand for ``BatchSpec.from_horizons`` when no
                ``spec`` is given.
            spec: what each item holds (keys, frame offsets, extra masks).
            idle_below: drop the items whose action has every component below this in
                absolute value (an operator pausing); their frames still appear in other
                items' windows. 0 keeps every step. See :func:`active_steps`.

        Raises:
            DatasetError: missing or bad file, unknown filter key or observation key, no steps.
        """
        if obs_horizon < 1 or action_horizon < 1:
            raise ValueError(f"horizons must be >= 1, got {obs_horizon=}, {action_horizon=}")
        self.path = Path(path)
        self.spec = spec or BatchSpec.from_horizons(obs_horizon, action_horizon)
        self.obs_keys = tuple(obs_keys) or tuple(available_obs_keys(self.path))
        self.arrays: dict[str, np.ndarray] = {}
        self._load(filter_key)
        self._index = {}
        for key, offsets in self.spec.offsets.items():
            self._index[key] = window_indices(self.episode_lengths, offsets)
        if idle_below > 0:
            rows = np.flatnonzero(active_steps(self.arrays["actions"], idle_below))
            if not len(rows):
                raise DatasetError(f"{self.path}: every action is below idle_below={idle_below}")
            self._index = {k: (index[rows], pad[rows]) for k, (index, pad) in self._index.items()}

    def _load(self, filter_key: str | None) -> None:
        """Read the selected demos through the one checked reader (``datasets.reader``)."""
        # Actions always: the policy's width and normalisation come from them.
        keys = tuple(dict.fromkeys([*self.spec.offsets, "actions"]))
        parts: dict[str, list[np.ndarray]] = {key: [] for key in keys}
        with open_dataset(self.path) as f:
            self.env_args: dict[str, Any] = read_env_args(f)
            self.demo_names = self._select(f, filter_key)
            for name in self.demo_names:
                for key, array in self._read_demo(f, name, keys).items():
                    parts[key].append(array)
        if not self.demo_names:
            problem = f"mask '{filter_key}' selects no demos"
            raise DatasetError(f"{self.path}: {problem}. Choose another filter key.")
        for key, chunks in parts.items():
            widths = {chunk.shape[1:] for chunk in chunks}
            if len(widths) > 1:
                problem = f"demos differ in the width of '{key}': {sorted(widths)}"
                raise DatasetError(f"{self.path}: {problem}. Run `polymimic data validate`.")
            self.arrays[key] = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
        self.episode_lengths = np.asarray(
            [len(chunk) for chunk in parts["actions"]], dtype=np.int64
        )

    def _select(self, f: Any, filter_key: str | None) -> list[str]:
        """The filter key's demos plus those of the spec's extra masks, in storage order."""
        names = set(demo_names(f, filter_key))
        for mask in self.spec.extra_masks:
            names |= set(demo_names(f, mask))
        return sorted(names, key=_demo_index)

    def _read_demo(self, f: Any, name: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        # Every array except images (uint8, and large) is read and checked, not only the
        # keys this learner uses: a NaN reward must stop BC too, or bad data trains silently.
        wanted = [k for k in all_array_keys(f, name) if f["data"][name][k].ndim < 4]
        wanted += [f"{key}/{k}" for key in ("obs", "next_obs") if key in keys for k in self.obs_keys]
        arrays = read_demo_arrays(f, name, dict.fromkeys(wanted))
        out = {}
        for key in keys:
            if key in ("obs", "next_obs"):
                obs = {k: _rows(arrays[f"{key}/{k}"]) for k in self.obs_keys}
                out[key] = flatten_obs(obs, self.obs_keys)
            elif key == "actions":
                out[key] = _rows(arrays["actions"])
            else:
                out[key] = np.asarray(arrays[key], dtype=np.float32)
        return out

    @property
    def obs(self) -> np.ndarray:
        """(N, obs_dim) float32 flattened observations of every selected step."""
        return self.arrays["obs"]

    @property
    def actions(self) -> np.ndarray:
        """(N, action_dim) float32 actions of every selected step."""
        return self.arrays["actions"]

    @property
    def obs_dim(self) -> int:
        """Width of one flattened observation."""
        return int(self.obs.shape[1])

    @property
    def action_dim(self) -> int:
        """Width of one action."""
        return int(self.actions.shape[1])

    def __len__(self) -> int:
        """Number of items: every selected step, less the idle ones when they are dropped."""
        return len(next(iter(self._index.values()))[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.get_batch([index]).items()}

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """A whole batch in one gather per key (see the module docstring for shapes).

        The training loop uses this instead of B calls to ``__getitem__`` plus collation.
        (Not ``__getitems__``: torch expects that to return a list of items, and a plain
        ``DataLoader(dataset, batch_size=...)`` must keep working.)
        """
        idx = np.asarray(indices, dtype=np.int64)
        batch = {}
        for key, (index, is_pad) in self._index.items():
            batch[key] = torch.from_numpy(self.arrays[key][index[idx]])
            batch[f"{key}_is_pad"] = torch.from_numpy(is_pad[idx])
        return batch

    def to_device(self, device: torch.device | str) -> DeviceWindows:
        """The same items with their arrays copied to ``device`` once (see DeviceWindows)."""
        return DeviceWindows(self, torch.device(device))

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-dimension mean, std, min and max of observations and actions.

        Computed over time steps (each counted once), not over windows, so padding does not
        over-weight episode starts and ends.

        Returns:
            ``{"obs": {"mean", "std", "min", "max"}, "actions": {...}}``, float32 arrays.
        """
        return {"obs": _stats(self.obs), "actions": _stats(self.actions)}


class DeviceWindows:
    """A WindowDataset's arrays as tensors on one device; ``get_batch`` gathers there.

    Copying the (small: 210k steps x 20 floats is 17 MB) state arrays to the GPU once removes
    the per-step host work, a numpy gather, pinning and a host-to-device copy, which
    otherwise dominates small learners on a GPU. Batches hold exactly the values
    ``WindowDataset.get_batch`` gives for the same indices.
    """

    def __init__(self, dataset: WindowDataset, device: torch.device) -> None:
        self.device = device
        self.arrays = {k: torch.from_numpy(dataset.arrays[k]).to(device) for k in dataset._index}
        self._index = {
            k: (torch.from_numpy(index).to(device), torch.from_numpy(is_pad).to(device))
            for k, (index, is_pad) in dataset._index.items()
        }
        self._length = len(dataset)

    def __len__(self) -> int:
        return self._length

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """The same dict as ``WindowDataset.get_batch``, on the device."""
        idx = torch.as_tensor(indices, dtype=torch.int64).to(self.device, non_blocking=True)
        batch = {}
        for key, (index, is_pad) in self._index.items():
            batch[key] = self.arrays[key][index[idx]]
            batch[f"{key}_is_pad"] = is_pad[idx]
        return batch
