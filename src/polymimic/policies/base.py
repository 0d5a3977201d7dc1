"""The one interface every learner implements, and the one registry that names them.

A policy is a ``torch.nn.Module`` built from a JSON-serialisable config dataclass. It owns:

- **its training contract**: ``batch_spec()`` (which keys, at which frame offsets, from
  which masks), ``fit_to_data(dataset, seed)`` once before the first step of a fresh run
  (what a learner derives from the whole training set rather than learns by gradient:
  BeT's k-means action bins; a no-op for most), ``configure_optimizers(num_training_steps)``
  (optimisers, schedules, cadence; see ``policies.optim``), ``compute_loss(batch,
  optimizer)`` per optimiser, and ``on_step_end(step)`` after every training step (EMA,
  target networks). The one training loop (``policies.train``) calls nothing else.
- **its normalisation**: one ``Normalizer`` per key with the mode its config declares
  (``obs_normalization``, ``action_normalization``), stored as buffers in ``model.safetensors``.
- **batched inference**: ``predict_action(obs)`` maps ``(B, obs_dim)`` raw observations to
  ``(B, action_dim)`` raw actions for B environments at once. The base class keeps each
  environment's observation history and queue of not-yet-executed actions (chunked
  learners predict several), so a learner implements only ``predict_chunk`` on observation
  windows. ``reset(env_ids)`` clears the named environments' memory and no other's.
  Stochastic learners draw their noise from the per-environment ``torch.Generator`` the
  caller passes, so an episode's randomness does not depend on which other episodes share
  its batch.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from polymimic.config.values import bounded
from polymimic.datasets.windows import BatchSpec
from polymimic.policies.normalize import Normalizer
from polymimic.policies.optim import OptimizerSpec
from polymimic.registry import lookup

#: Bounds of the shared config fields (checked before a policy is built from a file).
MAX_OBS_DIM = 100_000
MAX_ACTION_DIM = 64
MAX_HORIZON = 1024


@dataclasses.dataclass
class PolicyConfig:
    """Fields every learner's config has; learners subclass it and add their own.

    Sizes carry bounds (``polymimic.config.values.bounded``): configs read from files are
    checked against them before anything is allocated.
    """

    obs_keys: tuple[str, ...] = ()  # low-dim observation keys, concatenated in this order
    obs_dim: int = bounded(0, 0, MAX_OBS_DIM)  # sum of the keys' widths, set from the dataset
    action_dim: int = bounded(0, 0, MAX_ACTION_DIM)  # set from the dataset at build time
    obs_horizon: int = bounded(1, 1, MAX_HORIZON)  # how many past observations the policy sees
    action_horizon: int = bounded(1, 1, MAX_HORIZON)  # future actions one training target spans
    n_action_steps: int = bounded(1, 1, MAX_HORIZON)  # actions executed per inference (chunk)
    obs_normalization: str = "mean_std"  # mean_std, min_max or none (policies.normalize)
    action_normalization: str = "mean_std"  # mean_std, min_max or none


class Policy(nn.Module):
    """Base class of every learner (see the module docstring for the contract).

    Subclasses set ``name`` and ``config_class`` and implement ``configure_optimizers``,
    ``compute_loss`` and ``predict_chunk``; ``batch_spec`` and ``on_step_end`` have defaults.
    ``presets`` names sets of config values (``reference``: the paper's settings, ``cpu_small``:
    trains on 2 CPU cores), each a field -> value mapping applied over the config's defaults;
    ``polymimic train policy=<name>/<preset>`` selects one (``config.schema``).
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(self, config: PolicyConfig) -> None:
        """Check the shared fields and set up normalisers and per-environment memory.

        Raises:
            ValueError: obs_dim or action_dim not set yet (they come from the dataset), or
                more executed actions than a prediction holds.
        """
        if config.obs_dim <= 0 or config.action_dim <= 0:
            raise ValueError(
                f"{type(config).__name__} needs obs_dim and action_dim > 0 (got "
                f"{config.obs_dim}, {config.action_dim}); fill them from the dataset before "
                "building the policy"
            )
        super().__init__()
        if config.n_action_steps > config.action_horizon:
            raise ValueError(
                f"n_action_steps ({config.n_action_steps}) cannot exceed action_horizon "
                f"({config.action_horizon})"
            )
        self.config = config
        self.obs_normalizer = Normalizer(config.obs_dim, config.obs_normalization)
        self.action_normalizer = Normalizer(config.action_dim, config.action_normalization)
        self._history: np.ndarray | None = None  # (B, obs_horizon, obs_dim) per environment
        self._fresh = np.zeros(0, dtype=bool)  # environments whose next obs starts an episode
        self._queues: list[collections.deque[np.ndarray]] = []

    # --- normalisation ------------------------------------------------------------------
    def set_normalization(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Set the normalisers from dataset statistics (``WindowDataset.stats()``)."""
        self.obs_normalizer.set_stats(stats["obs"])
        self.action_normalizer.set_stats(stats["actions"])

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return self.obs_normalizer.normalize(obs)

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return self.action_normalizer.normalize(action)

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return self.action_normalizer.unnormalize(action)

    # --- training -----------------------------------------------------------------------
    def fit_to_data(self, dataset: Any, seed: int) -> None:
        """Fit what the learner takes from the whole training set before the first step.

        The training loop calls it once per fresh run, after the normalisers are set and
        before the first optimiser step, never on a resume: what it fits must live in the
        learner's buffers, so the checkpoint restores it. It must be deterministic given
        ``dataset`` and ``seed`` and leave the global RNGs alone (resumed runs replay them).

        Args:
            dataset: the training items (a ``WindowDataset``: per-step ``obs`` and ``actions``
                arrays of the selected demonstrations).
            seed: the run's seed (``TrainConfig.seed``).
        """

    def batch_spec(self) -> BatchSpec:
        """What one training item holds; by default the config's two horizons."""
        return BatchSpec.from_horizons(self.config.obs_horizon, self.config.action_horizon)

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        """The learner's optimisers, from its own config (no defaults in the loop)."""
        raise NotImplementedError

    def compute_loss(
        self, batch: dict[str, torch.Tensor], optimizer: str
    ) -> dict[str, torch.Tensor]:
        """Loss terms for one batch and the optimiser ``optimizer``; ``"loss"`` is minimised.

        ``batch`` holds the keys of ``batch_spec()`` (raw, unnormalised) with the shapes
        documented in ``polymimic.datasets.windows``.
        """
        raise NotImplementedError

    def on_step_end(self, step: int) -> None:
        """Called once after every training step's optimiser updates (EMA, targets)."""

    # --- inference ----------------------------------------------------------------------
    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """``(N, obs_horizon, obs_dim)`` raw observations -> ``(N, k, action_dim)`` raw
        actions, ``k >= n_action_steps``; called in eval mode without gradients."""
        raise NotImplementedError

    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        """Forget the history and queued actions of ``env_ids`` (None: every environment)."""
        if env_ids is None:
            self._history, self._fresh, self._queues = None, np.zeros(0, dtype=bool), []
            return
        for env_id in env_ids:
            if 0 <= env_id < len(self._queues):
                self._fresh[env_id] = True
                self._queues[env_id].clear()

    @torch.no_grad()
    def predict_action(
        self,
        obs: np.ndarray,
        generators: Sequence[torch.Generator] | None = None,
        row_by_row: bool = False,
    ) -> np.ndarray:
        """Raw observations ``(B, obs_dim)`` of B environments -> raw actions ``(B, action_dim)``.

        An environment's first observation after ``reset`` fills its whole history (the
        dataset's padding before an episode start). A new chunk is predicted, in one batch,
        only for environments whose queue is empty.

        Args:
            obs: one flat observation per environment, float.
            generators: one ``torch.Generator`` per environment for stochastic learners.
            row_by_row: predict each environment's chunk in a batch of one, so its actions
                do not depend on which other environments share the call (batched matrix
                products can differ in the last bits with the batch size); evaluation uses it.

        Raises:
            ValueError: a wrong shape, or ``generators`` of another length.
        """
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.config.obs_dim:
            raise ValueError(f"expected observations (B, {self.config.obs_dim}), got {obs.shape}")
        if generators is not None and len(generators) != len(obs):
            raise ValueError(f"got {len(generators)} generators for {len(obs)} environments")
        self._update_history(obs)
        need = [i for i, queue in enumerate(self._queues) if not queue]
        if need:
            window = torch.from_numpy(self._history[need]).to(self.obs_normalizer.offset.device)
            picked = None if generators is None else [generators[i] for i in need]
            was_training = self.training
            self.eval()  # dropout must be off for rollouts whatever mode the caller left
            try:
                if row_by_row:
                    rows = [self.predict_chunk(window[k : k + 1], None if picked is None
                                               else picked[k : k + 1]) for k in range(len(need))]
                    chunk = torch.cat(rows)[:, : self.config.n_action_steps]
                else:
                    chunk = self.predict_chunk(window, picked)[:, : self.config.n_action_steps]
            finally:
                self.train(was_training)
            for row, env_id in enumerate(need):
                self._queues[env_id].extend(chunk[row].float().cpu().numpy())
        return np.stack([queue.popleft() for queue in self._queues])

    def _update_history(self, obs: np.ndarray) -> None:
        if self._history is None or len(self._history) != len(obs):
            shape = (len(obs), self.config.obs_horizon, self.config.obs_dim)
            self._history = np.zeros(shape, dtype=np.float32)
            self._fresh = np.ones(len(obs), dtype=bool)
            self._queues = [collections.deque() for _ in range(len(obs))]
        self._history[:, :-1] = self._history[:, 1:].copy()
        self._history[:, -1] = obs
        self._history[self._fresh] = obs[self._fresh][:, None, :]
        self._fresh[:] = False


PolicyFactory = Callable[[PolicyConfig], Policy]
_REGISTRY: dict[str, type[Policy]] = {}


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make a learner available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} needs a non-empty class attribute `name`")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"policy name {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def policy_class(name: str) -> type[Policy]:
    """Look a learner up by name, with an error listing the known ones."""
    return lookup(_REGISTRY, name, "policy type")


def registered_policies() -> list[str]:
    return sorted(_REGISTRY)


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(config))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
