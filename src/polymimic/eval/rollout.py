"""The one rollout function every learner is evaluated with, and the evaluation core.

``rollout`` runs one episode of any env with any action function. ``evaluate`` runs a policy
over a range of seeds, aggregates the episodes into success rate, behaviour diversity and
their 95% intervals, and returns the ``eval_info.json`` structure that the training loop,
the CLI and the leaderboard all read (LeRobot's ``eval_info.json`` is the model)::

    {
      "format_version": 1,
      "env":      {"id", "kwargs", "behaviours", "max_episode_steps"},
      "policy":   {"name", "class", "config"},
      "seeds":    [int, ...],
      "per_episode": [{"seed", "context", "success", "behaviour", "return", "length",
                       "terminated", "truncated", "invalid_action"}, ...],
      "aggregated": {"num_episodes", "num_successes", "success_rate", "success_rate_ci95",
                     "behaviour_counts", "behaviour_distribution", "num_behaviours",
                     "behaviour_entropy", "behaviour_entropy_ci95",
                     "conditional_behaviour_entropy", "kl_to_reference", "num_invalid_action_episodes",
                     "mean_return", "mean_length"},
      "video": path or null,
      "versions": {"python", "numpy", "torch", "mujoco", "gymnasium", "h5py", "polymimic",
                   "platform", "machine"}   (polymimic.io.library_versions)
    }

Behaviour statistics count successful episodes only, as in D3IL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from polymimic.datasets.obs import flatten_obs
from polymimic.envs.allowlist import make_env
from polymimic.errors import UserError
from polymimic.eval import metrics
from polymimic.io import atomic_write_json, library_versions, write_mp4

# Seed ranges. Dataset generation seeds episodes from 0 upwards, so evaluating on those seeds
# would replay the exact initial states the learner was trained on and overstate success.
# Training-time evaluation (checkpoint selection) and final evaluation also get ranges of
# their own: choosing a checkpoint on the seeds it is then scored on is selection bias.
# The gaps leave room for 10,000 dataset episodes and 90,000 training-time eval episodes.
TRAIN_EVAL_SEED_START = 10_000
FINAL_EVAL_SEED_START = 100_000

EVAL_INFO_FORMAT_VERSION = 1
DEFAULT_MAX_VIDEO_EPISODES = 4


class EvaluablePolicy(Protocol):
    """What ``evaluate`` needs from a learner (``polymimic.policies.base.Policy`` has it)."""

    config: Any  # has ``obs_keys`` (and ``obs_dim``, ``action_dim`` where it declares them)

    def reset(self, env_ids: Sequence[int] | None = None) -> None: ...

    def predict_action(self, obs: np.ndarray) -> np.ndarray:
        """``(B, obs_dim)`` flat observations -> ``(B, action_dim)`` actions."""
        ...


@dataclasses.dataclass(frozen=True)
class EpisodeRecord:
    """What one evaluation episode produced.

    Attributes:
        seed: the ``reset`` seed.
        context: initial-state context id (``env.unwrapped.context``), None if the env has none.
        success: ``info["success"]`` at the last step.
        behaviour: ``info["behaviour"]`` at the last step (``"other"`` if the env gave none).
        episode_return: sum of rewards (``"return"`` in JSON; ``return`` is a Python keyword).
        length: number of ``step`` calls.
        terminated: the env ended the episode (on success, for polymimic tasks).
        truncated: the time limit ended the episode.
        invalid_action: the policy emitted a NaN or infinite action, which ended the
            episode as a failure before that action reached the env.
    """

    seed: int
    context: int | None
    success: bool
    behaviour: str
    episode_return: float
    length: int
    terminated: bool
    truncated: bool
    invalid_action: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the ``eval_info.json`` key names."""
        data = dataclasses.asdict(self)
        data["return"] = data.pop("episode_return")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeRecord:
        """Inverse of :meth:`to_dict` (reads ``per_episode`` entries back)."""
        fields = dict(data)
        fields["episode_return"] = fields.pop("return")
        fields.setdefault("invalid_action", False)  # eval_info files written before it existed
        return cls(**fields)


def rollout(
    env: gym.Env,
    act_fn: Callable[[dict], np.ndarray],
    seed: int,
    options: dict[str, Any] | None = None,
    record_video: bool = False,
) -> tuple[EpisodeRecord, list[np.ndarray] | None]:
    """Run one episode until the env terminates or its time limit truncates it.

    The episode's length is bounded by the env (the ``TimeLimit`` wrapper from
    ``max_episode_steps``); an env without one would loop forever, which ``evaluate`` checks.

    Args:
        env: an env following the polymimic contract (``info["success"]``/``["behaviour"]``).
        act_fn: maps the env's (dict) observation to an action. Reset any policy memory
            before calling this; ``rollout`` knows nothing about policies. A NaN, infinite
            or non-numeric action ends the episode as a failure (``invalid_action``) without
            reaching the env.
        seed: passed to ``env.reset``; it fixes the initial state.
        options: passed to ``env.reset`` (e.g. ``{"context": k}``).
        record_video: collect ``env.render()`` after reset and after every step (the env
            must have been made with ``render_mode="rgb_array"``).

    Returns:
        The episode's record and, when ``record_video``, its ``length + 1`` frames.
    """
    obs, info = env.reset(seed=seed, options=options)
    context = getattr(env.unwrapped, "context", info.get("context"))
    frames: list[np.ndarray] | None = [_frame(env)] if record_video else None
    total_reward, length = 0.0, 0
    terminated = truncated = invalid = False
    while not (terminated or truncated):
        action = np.asarray(act_fn(obs))
        if action.dtype.kind not in "biuf" or not np.isfinite(action).all():
            # An untrusted policy (a leaderboard submission) must not crash the evaluation
            # nor poison the simulation: the episode ends here, as a failure.
            invalid = True
            info = {**info, "success": False}
            break
        obs, reward, terminated, truncated, info = env.step(action)
        total_reward += float(reward)
        length += 1
        if frames is not None:
            frames.append(_frame(env))
    record = EpisodeRecord(
        seed=int(seed),
        context=None if context is None else int(context),
        success=bool(info.get("success", False)),
        behaviour=str(info.get("behaviour", metrics.OTHER_BEHAVIOUR)),
        episode_return=total_reward,
        length=length,
        terminated=bool(terminated),
        truncated=bool(truncated),
        invalid_action=invalid,
    )
    return record, frames


def _frame(env: gym.Env) -> np.ndarray:
    frame = env.render()
    if frame is None:
        raise ValueError("record_video needs an env made with render_mode='rgb_array'")
    return np.asarray(frame, dtype=np.uint8)


def policy_act_fn(policy: EvaluablePolicy) -> Callable[[dict], np.ndarray]:
    """Wrap a policy into an ``act_fn``: flatten the dict obs in ``config.obs_keys`` order."""
    keys = tuple(policy.config.obs_keys)

    def act(obs: dict) -> np.ndarray:
        return np.asarray(policy.predict_action(flatten_obs(obs, keys)[None]))[0]

    return act


@contextlib.contextmanager
def _eval_mode(policy: Any) -> Iterator[None]:
    """Put an ``nn.Module`` in eval mode (no dropout) and restore its mode afterwards.

    Training-time evaluation calls ``evaluate`` in the middle of training, so leaving the
    policy in eval mode would silently turn dropout off for the rest of the run.
    """
    was_training = getattr(policy, "training", None)
    if was_training is not None and hasattr(policy, "train"):
        policy.train(False)
    try:
        yield
    finally:
        if was_training is not None and hasattr(policy, "train"):
            policy.train(was_training)


@contextlib.contextmanager
def _seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch for one episode without disturbing the caller's RNG stream.

    Stochastic learners (diffusion sampling, GMM heads) draw from torch's global RNG; seeding
    it per episode makes a policy's evaluation reproducible. ``fork_rng`` restores the state
    afterwards so training-time evaluation does not reset the training run's randomness to
    the same values after every evaluation.
    """
    import torch  # local: only learners need torch, and metrics must not import it

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def run_episodes(
    env: gym.Env,
    policy: EvaluablePolicy,
    seeds: Sequence[int],
    num_video_episodes: int = 0,
) -> tuple[list[EpisodeRecord], list[np.ndarray]]:
    """Run one episode per seed, serially; the seam where vectorised rollouts will plug in.

    Args:
        env: the env to roll out in (reused across episodes).
        policy: reset before every episode.
        seeds: one episode per seed, in this order.
        num_video_episodes: record frames of the first this many episodes.

    Returns:
        The records in seed order and the recorded episodes' frames, concatenated.
    """
    act = policy_act_fn(policy)
    records: list[EpisodeRecord] = []
    video: list[np.ndarray] = []
    with _eval_mode(policy):
        for index, seed in enumerate(seeds):
            policy.reset()
            with _seeded_torch(int(seed)):
                record, frames = rollout(env, act, int(seed), None, index < num_video_episodes)
            records.append(record)
            video.extend(frames or [])
    return records, video


def aggregate(
    records: Sequence[EpisodeRecord],
    behaviours: Sequence[str],
    reference_distribution: Mapping[str, float] | None = None,
    n_resamples: int = 1000,
    bootstrap_seed: int = 0,
) -> dict[str, Any]:
    """Summarise episodes: success rate, behaviour diversity, returns, with 95% intervals.

    Behaviour statistics use the successful episodes only (D3IL). Entropies are over the
    task's behaviours: a successful episode labelled ``"other"`` appears in the counts and
    the distribution but not in the entropies, whose normaliser ``log |B|`` counts only the
    task's behaviours.

    Args:
        records: the episodes.
        behaviours: the task's behaviour labels (without ``"other"``).
        reference_distribution: the dataset's mode distribution; if given, ``kl_to_reference``
            is ``KL(rollouts || reference)``, else None.
        n_resamples: bootstrap replicates for the entropy interval.
        bootstrap_seed: seed of the bootstrap.

    Returns:
        The ``aggregated`` section of ``eval_info.json``.
    """
    if not records:
        raise ValueError("aggregate needs at least one episode")
    successful = [r for r in records if r.success]
    num_successes = len(successful)
    known = set(behaviours)
    in_task = [r for r in successful if r.behaviour in known]
    labels = [r.behaviour for r in in_task]
    distribution = metrics.behaviour_distribution([r.behaviour for r in successful], behaviours)
    kl = None
    if reference_distribution is not None and num_successes:
        kl = metrics.kl_divergence(distribution, reference_distribution)
    return {
        "num_episodes": len(records),
        "num_successes": num_successes,
        "success_rate": metrics.success_rate([r.success for r in records]),
        "success_rate_ci95": list(metrics.wilson_interval(num_successes, len(records))),
        "behaviour_counts": dict(Counter(r.behaviour for r in successful)),
        "behaviour_distribution": distribution,
        "num_behaviours": len(behaviours),
        "behaviour_entropy": metrics.behaviour_entropy(labels, len(behaviours)),
        "behaviour_entropy_ci95": list(
            metrics.behaviour_entropy_interval(
                labels, len(behaviours), n_resamples=n_resamples, seed=bootstrap_seed
            )
        ),
        "conditional_behaviour_entropy": metrics.conditional_behaviour_entropy(
            labels, [r.context for r in in_task], len(behaviours)
        ),
        "kl_to_reference": kl,
        "num_invalid_action_episodes": sum(r.invalid_action for r in records),
        "mean_return": float(np.mean([r.episode_return for r in records])),
        "mean_length": float(np.mean([r.length for r in records])),
    }


def _policy_info(policy: Any) -> dict[str, Any]:
    from polymimic.policies.base import json_ready  # the policies' own JSON conversion

    config = policy.config
    config_dict = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None
    return {
        "name": getattr(policy, "name", None) or type(policy).__name__,
        "class": f"{type(policy).__module__}.{type(policy).__qualname__}",
        "config": json_ready(config_dict),
    }


def evaluate(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    policy: EvaluablePolicy,
    seeds: Sequence[int],
    video_path: str | os.PathLike | None = None,
    max_video_episodes: int = DEFAULT_MAX_VIDEO_EPISODES,
    reference_distribution: Mapping[str, float] | None = None,
    trusted_env: bool = False,
) -> dict[str, Any]:
    """Evaluate a policy on one episode per seed and return the ``eval_info.json`` dict.

    Args:
        env_id: a registered id, e.g. ``"polymimic/Push-v0"``.
        env_kwargs: keyword arguments for ``gym.make``.
        policy: has ``reset``, ``predict_action`` and ``config.obs_keys``.
        seeds: e.g. ``range(FINAL_EVAL_SEED_START, FINAL_EVAL_SEED_START + 480)``.
        video_path: if given, write the first ``max_video_episodes`` episodes, concatenated,
            to this mp4 file.
        max_video_episodes: how many episodes the video shows.
        reference_distribution: the dataset's mode distribution, for ``kl_to_reference``.
        trusted_env: make ``env_id`` with plain ``gym.make`` (code that registered its own
            env). By default the id and kwargs must pass the env allowlist
            (``polymimic.envs.allowlist``), since they usually come from a checkpoint file.

    Returns:
        The structure documented in this module's docstring; pass it to
        :func:`write_eval_info`.

    Raises:
        ValueError: if ``seeds`` is empty or the env has no time limit.
        EnvRequestError: an env id or kwargs outside the allowlist.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate needs at least one seed")
    kwargs = dict(env_kwargs or {})
    if video_path is not None:
        kwargs.setdefault("render_mode", "rgb_array")
    env = gym.make(env_id, **kwargs) if trusted_env else make_env(env_id, kwargs)
    try:
        max_steps = env.spec.max_episode_steps if env.spec is not None else None
        if max_steps is None:
            raise ValueError(f"{env_id} has no max_episode_steps; rollouts would never end")
        check_policy_fits_env(policy, env, env_id)
        behaviours = [str(b) for b in getattr(env.unwrapped, "behaviours", ())]
        num_video = max_video_episodes if video_path is not None else 0
        records, frames = run_episodes(env, policy, seeds, num_video)
        fps = env.metadata.get("render_fps") or 20
    finally:
        env.close()
    if video_path is not None:
        write_video(video_path, frames, fps)
    return {
        "format_version": EVAL_INFO_FORMAT_VERSION,
        "env": {"id": env_id, "kwargs": dict(env_kwargs or {}), "behaviours": behaviours,
                "max_episode_steps": max_steps},
        "policy": _policy_info(policy),
        "seeds": seeds,
        "per_episode": [r.to_dict() for r in records],
        "aggregated": aggregate(records, behaviours, reference_distribution),
        "video": None if video_path is None else str(video_path),
        "versions": library_versions(),
    }


def check_policy_fits_env(policy: EvaluablePolicy, env: gym.Env, env_id: str) -> None:
    """Check that the policy's observation keys and widths and its action width fit the env.

    Raises:
        UserError: naming what the policy expects and what the env has (a checkpoint
            evaluated in another task, or a task version with other observations).
    """
    config = policy.config
    spaces = getattr(env.observation_space, "spaces", {})
    keys = tuple(config.obs_keys)
    missing = [k for k in keys if k not in spaces]
    if missing:
        raise UserError(
            f"the policy reads observation keys {missing} that {env_id} does not have "
            f"(it has {sorted(spaces)}); evaluate it in the task it was trained on"
        )
    obs_dim = sum(int(np.prod(spaces[k].shape)) for k in keys)
    action_dim = int(np.prod(env.action_space.shape))
    expected = (getattr(config, "obs_dim", obs_dim), getattr(config, "action_dim", action_dim))
    if expected != (obs_dim, action_dim):
        raise UserError(
            f"the policy maps {expected[0]} observation values to {expected[1]} actions, but "
            f"{env_id} gives {obs_dim} and takes {action_dim}; evaluate it in the task it "
            "was trained on"
        )


def write_video(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float) -> None:
    """Write frames to an mp4 (H.264 via imageio-ffmpeg), atomically (``io.write_mp4``).

    Raises:
        ValueError: if there are no frames.
    """
    write_mp4(path, frames, fps)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def write_eval_info(path: str | os.PathLike, info: Mapping[str, Any]) -> None:
    """Write ``eval_info.json`` atomically (temp file in the same folder + ``os.replace``).

    A reader (the leaderboard, a plotting script) never sees a half-written file, even if
    the evaluation is killed while writing.
    """
    atomic_write_json(path, info, default=_json_default, allow_nan=False)
