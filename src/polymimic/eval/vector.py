"""The one rollout loop: episodes over a Gymnasium vector environment, batched inference.

``run_episodes`` plays a list of :class:`EpisodeSpec` (seed, optional exact initial state,
the policy's own random stream) on the slots of a ``SyncVectorEnv`` (``make_vector_env``),
asking the policy for all slots' actions in one ``predict_action`` call. Autoreset is
disabled: a slot whose episode ended is reset explicitly to the next episode's state
(``reset_mask``). Parallelism over CPU cores is per episode, in processes that each run
this loop (``eval.pool``, which says why not ``AsyncVectorEnv``); renderers are created
lazily inside whichever process renders.

Results do not depend on the slot or worker count: every episode starts from its own seed
and state, draws from its own ``torch.Generator``, and the policy is asked for one
environment's actions at a time (``row_by_row``), because batched matrix products can
change in the last bits with the batch size, and contacts amplify such differences into
different trajectories. Records come back in the order of ``episodes``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from polymimic.datasets.obs import flatten_obs
from polymimic.envs.labels import OTHER_BEHAVIOUR
from polymimic.eval.worker import make_slot_env


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
    """One episode to play.

    Attributes:
        seed: passed to ``env.reset``.
        initial_state: a ``get_state()`` vector restored after the reset (None: the seed
            alone decides the initial state).
        generator_seed: seeds the policy's ``torch.Generator`` for this episode.
        context: the protocol's context index (None outside a protocol).
        rollout: the rollout index within its context.
    """

    seed: int
    initial_state: np.ndarray | None = None
    generator_seed: int = 0
    context: int | None = None
    rollout: int | None = None


@dataclasses.dataclass
class EpisodeOutcome:
    """What one episode produced (``eval.rollout.EpisodeRecord`` is built from it)."""

    spec: EpisodeSpec
    env_context: int | None = None
    success: bool = False
    behaviour: str = OTHER_BEHAVIOUR
    episode_return: float = 0.0
    length: int = 0
    terminated: bool = False
    truncated: bool = False
    invalid_action: bool = False
    frames: list[np.ndarray] | None = None


def make_vector_env(
    env_id: str, env_kwargs: Mapping[str, Any], slots: int, trusted: bool = False
) -> gym.vector.VectorEnv:
    """``slots`` environments in this process, autoreset disabled (``SyncVectorEnv``)."""
    fns = [functools.partial(make_slot_env, env_id, dict(env_kwargs), k, trusted)
           for k in range(slots)]  # fmt: skip
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)


class _Slots:
    """Which episode each sub-environment plays, and its running totals."""

    def __init__(self, episodes: Sequence[EpisodeSpec], workers: int, video: Collection[int]):
        self.pending = deque(enumerate(episodes))
        self.current: list[tuple[int, EpisodeSpec] | None] = [None] * workers
        self.outcomes: dict[int, EpisodeOutcome] = {}
        self.video = set(video)
        self.generators = [torch.Generator() for _ in range(workers)]
        self.index_offset = 0

    def assign(self, slots: Sequence[int]) -> tuple[list[int | None], dict[int, Any]]:
        """Give each slot the next episode (or none); the seeds and states to reset with."""
        seeds: list[int | None] = [None] * len(self.current)
        states: dict[int, Any] = {}
        for slot in slots:
            if not self.pending:
                self.current[slot] = None
                continue
            index, spec = self.pending.popleft()
            self.current[slot] = (index, spec)
            outcome = EpisodeOutcome(spec, frames=[] if index in self.video else None)
            self.outcomes[index] = outcome
            self.generators[slot].manual_seed(spec.generator_seed)
            seeds[slot] = spec.seed
            if spec.initial_state is not None:
                states[slot] = spec.initial_state
        return seeds, states

    def outcome(self, slot: int) -> EpisodeOutcome | None:
        current = self.current[slot]
        return None if current is None else self.outcomes[current[0]]


def run_episodes(
    vec: gym.vector.VectorEnv,
    policy: Any,
    episodes: Sequence[EpisodeSpec],
    video: Collection[int] = (),
    index_offset: int = 0,
) -> list[EpisodeOutcome]:
    """Play ``episodes`` on ``vec``; outcomes in the order of ``episodes``.

    Args:
        vec: from :func:`make_vector_env` (autoreset disabled, ``_StartFromState`` slots).
        policy: ``config.obs_keys``, ``reset(env_ids)``, ``predict_action(obs, generators,
            row_by_row=True)`` (``polymimic.policies.base.Policy``).
        episodes: what to play.
        index_offset: added to an episode's position in ``episodes`` to give the index a
            policy's optional ``start_episode(slot, index)`` hook receives (a chunk of a
            larger list passes its start).
        video: indices of the episodes whose rendered frames to keep (the env
            must render ``rgb_array``).
    """
    workers = vec.num_envs
    slots = _Slots(episodes, workers, video)
    keys = tuple(policy.config.obs_keys)
    slots.index_offset = index_offset
    obs, info = _reset(vec, slots, policy, list(range(workers)))
    while any(current is not None for current in slots.current):
        flat = flatten_obs(obs, keys).reshape(workers, -1)
        actions = np.asarray(
            policy.predict_action(flat, slots.generators, row_by_row=True), dtype=np.float64
        )
        ended = _refuse_invalid(actions, slots)
        obs, reward, terminated, truncated, info = vec.step(actions)
        for slot in range(workers):
            outcome = slots.outcome(slot)
            if outcome is None or slot in ended:
                continue
            outcome.episode_return += float(reward[slot])
            outcome.length += 1
            if terminated[slot] or truncated[slot]:
                _finish(outcome, info, slot, bool(terminated[slot]), bool(truncated[slot]))
                ended.add(slot)
        _record_frames(vec, slots)
        if ended:
            obs, info = _reset(vec, slots, policy, sorted(ended), obs, info)
    return [slots.outcomes[i] for i in range(len(episodes))]


def _reset(
    vec: gym.vector.VectorEnv,
    slots: _Slots,
    policy: Any,
    which: list[int],
    obs: Any = None,
    info: Any = None,
) -> tuple[Any, Any]:
    seeds, states = slots.assign(which)
    mask = np.zeros(vec.num_envs, dtype=bool)
    mask[which] = True
    obs, reset_info = vec.reset(
        seed=seeds, options={"reset_mask": mask, "initial_states": states}
    )
    for slot in which:
        outcome = slots.outcome(slot)
        if outcome is not None:
            outcome.env_context = _info_value(reset_info, "context", slot)
    policy.reset(which)
    start = getattr(policy, "start_episode", None)  # optional: policies that need the index
    if start is not None:
        for slot in which:
            if slots.current[slot] is not None:
                start(slot, slots.index_offset + slots.current[slot][0])
    _record_frames(vec, slots, only=which)
    return obs, reset_info


def _refuse_invalid(actions: np.ndarray, slots: _Slots) -> set[int]:
    """Episodes whose action is NaN/inf end as failures; their slot steps a zero action."""
    ended = set()
    for slot, row in enumerate(actions):
        outcome = slots.outcome(slot)
        if outcome is not None and not np.isfinite(row).all():
            outcome.invalid_action = True
            ended.add(slot)
        if outcome is None or slot in ended:
            actions[slot] = 0.0  # idle slots step harmlessly; their results are ignored
    return ended


def _finish(outcome: EpisodeOutcome, info: dict, slot: int, terminated: bool, truncated: bool):
    outcome.terminated, outcome.truncated = terminated, truncated
    outcome.success = bool(_info_value(info, "success", slot) or False)
    behaviour = _info_value(info, "behaviour", slot)
    outcome.behaviour = OTHER_BEHAVIOUR if behaviour is None else str(behaviour)


def _info_value(info: dict, key: str, slot: int) -> Any:
    """Sub-environment ``slot``'s value of a vector env info key (None where it has none)."""
    if key not in info or not info.get(f"_{key}", np.ones(slot + 1, bool))[slot]:
        return None
    value = info[key][slot]
    return value.item() if isinstance(value, np.generic) else value


def _record_frames(vec: gym.vector.VectorEnv, slots: _Slots, only: list[int] | None = None):
    # An episode is owed a frame when it has one fewer than its steps + 1 (the reset frame).
    wanted = [
        slot for slot in (only if only is not None else range(vec.num_envs))
        if (outcome := slots.outcome(slot)) is not None and outcome.frames is not None
        and len(outcome.frames) == outcome.length
    ]  # fmt: skip
    if not wanted:
        return
    frames = vec.call("render")
    for slot in wanted:
        slots.outcome(slot).frames.append(np.asarray(frames[slot], dtype=np.uint8))
