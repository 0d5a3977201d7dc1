"""Evaluating a policy: the protocol's episodes over vector envs, into ``eval_info.json``.

``evaluate_protocol`` runs a task's protocol (S fixed contexts × R rollouts,
``polymimic.eval.protocol``); ``evaluate`` runs one episode per seed (training-time
evaluation, quick checks). Both play their episodes through the one rollout loop
(``polymimic.eval.vector.run_episodes``) and return the ``eval_info.json`` document that the
training loop, the CLI, the report and the leaderboard all read (LeRobot's
``eval_info.json`` is the model)::

    {
      "format_version": 2,
      "protocol": {"name", "task_id", "split", "num_contexts", "rollouts_per_context",
                   "version", "seed_start", "contexts_sha256"} or null (seed mode),
      "env":      {"id", "kwargs", "behaviours", "max_episode_steps", "render_fps"},
      "policy":   {"name", "class", "config"},
      "settings": {"workers", "inference", "video_episodes"},
      "seeds":    [int, ...],
      "per_episode": [{"context", "rollout", "env_context", "seed", "success", "behaviour",
                       "return", "length", "terminated", "truncated", "invalid_action"}, ...],
      "aggregated": see ``polymimic.eval.aggregate.aggregate``,
      "reference": {"source", "distribution"} or null,
      "video": path or null, "video_error": message or null,
      "wall_s": float,
      "versions": library versions (``polymimic.io.library_versions``) and "git_commit"
    }

``context`` is the protocol's context index (D3IL's initial-state context), ``env_context``
the task's own discrete context id that the initial state came from. Behaviour statistics
count successful episodes only, as in D3IL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from polymimic.errors import UserError
from polymimic.eval.aggregate import aggregate
from polymimic.eval.pool import run_in_processes
from polymimic.eval.protocol import Protocol as EvalProtocol
from polymimic.eval.protocol import load_contexts, rollout_seed
from polymimic.eval.vector import EpisodeOutcome, EpisodeSpec
from polymimic.io import atomic_write_json, library_versions, write_mp4

# Seed ranges. Dataset generation seeds episodes from 0 upwards, so evaluating on those seeds
# would replay the exact initial states the learner was trained on and overstate success.
# Training-time evaluation (checkpoint selection) and final evaluation also get ranges of
# their own: choosing a checkpoint on the seeds it is then scored on is selection bias.
# The gaps leave room for 10,000 dataset episodes and 90,000 training-time eval episodes;
# the protocol's context ranges start at 200,000 (``eval.protocol.SPLIT_SEED_START``).
TRAIN_EVAL_SEED_START = 10_000
FINAL_EVAL_SEED_START = 100_000

EVAL_INFO_FORMAT_VERSION = 2
DEFAULT_MAX_VIDEO_EPISODES = 4


class EvaluablePolicy(Protocol):
    """What evaluation needs from a learner (``polymimic.policies.base.Policy`` has it)."""

    config: Any  # has ``obs_keys`` (and ``obs_dim``, ``action_dim`` where it declares them)

    def reset(self, env_ids: Sequence[int] | None = None) -> None: ...

    def predict_action(
        self, obs: np.ndarray, generators: Any = None, row_by_row: bool = False
    ) -> np.ndarray:
        """``(B, obs_dim)`` flat observations -> ``(B, action_dim)`` actions."""
        ...


@dataclasses.dataclass(frozen=True)
class EpisodeRecord:
    """What one evaluation episode produced.

    Attributes:
        context: the protocol's context index (None in seed mode).
        rollout: the rollout index within the context (None in seed mode).
        env_context: the task's discrete context id of the initial state.
        seed: the ``reset`` seed.
        success: ``info["success"]`` at the last step.
        behaviour: ``info["behaviour"]`` at the last step (``"other"`` if the env gave none).
        episode_return: sum of rewards (``"return"`` in JSON; ``return`` is a Python keyword).
        length: number of ``step`` calls.
        terminated: the env ended the episode (on success, for polymimic tasks).
        truncated: the time limit ended the episode.
        invalid_action: the policy emitted a NaN or infinite action, which ended the
            episode as a failure before that action reached the env.
    """

    context: int | None
    rollout: int | None
    env_context: int | None
    seed: int
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
        return cls(**fields)

    @classmethod
    def from_outcome(cls, outcome: EpisodeOutcome) -> EpisodeRecord:
        spec = outcome.spec
        return cls(
            context=spec.context, rollout=spec.rollout,
            env_context=None if outcome.env_context is None else int(outcome.env_context),
            seed=int(spec.seed), success=bool(outcome.success), behaviour=outcome.behaviour,
            episode_return=float(outcome.episode_return), length=int(outcome.length),
            terminated=outcome.terminated, truncated=outcome.truncated,
            invalid_action=outcome.invalid_action,
        )  # fmt: skip


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


def _policy_info(policy: Any) -> dict[str, Any]:
    from polymimic.policies.base import json_ready  # the policies' own JSON conversion

    config = policy.config
    config_dict = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None
    return {
        "name": getattr(policy, "name", None) or type(policy).__name__,
        "class": f"{type(policy).__module__}.{type(policy).__qualname__}",
        "config": json_ready(config_dict),
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


def _play(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    policy: EvaluablePolicy,
    episodes: Sequence[EpisodeSpec],
    workers: int,
    video: Sequence[int],
    trusted_env: bool,
) -> tuple[list[EpisodeOutcome], dict[str, Any]]:
    """Play the episodes; the outcomes and the env section of ``eval_info.json``."""
    kwargs = dict(env_kwargs or {})
    if video:
        kwargs.setdefault("render_mode", "rgb_array")
    probe = _probe_env(env_id, kwargs, trusted_env)  # errors surface before workers start
    try:
        if probe.spec is None or probe.spec.max_episode_steps is None:
            raise ValueError(f"{env_id} has no max_episode_steps; rollouts would never end")
        check_policy_fits_env(policy, probe, env_id)
        env_info = {
            "id": env_id, "kwargs": dict(env_kwargs or {}),
            "behaviours": [str(b) for b in getattr(probe.unwrapped, "behaviours", ())],
            "max_episode_steps": probe.spec.max_episode_steps,
            "render_fps": probe.metadata.get("render_fps") or 20,
        }  # fmt: skip
    finally:
        probe.close()
    with _eval_mode(policy):
        outcomes = run_in_processes(
            env_id, kwargs, policy, episodes, max(1, min(workers, len(episodes))), video,
            trusted_env,
        )
    return outcomes, env_info


def _probe_env(env_id: str, kwargs: Mapping[str, Any], trusted: bool) -> gym.Env:
    """One env to read the spaces, behaviours and time limit from (checked unless trusted)."""
    plain = {k: v for k, v in kwargs.items() if k != "render_mode"}
    if trusted:
        return gym.make(env_id, **plain)
    from polymimic.envs.allowlist import make_env

    return make_env(env_id, plain)


def evaluate(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    policy: EvaluablePolicy,
    seeds: Sequence[int],
    video_path: str | os.PathLike | None = None,
    max_video_episodes: int = DEFAULT_MAX_VIDEO_EPISODES,
    reference_distribution: Mapping[str, float] | None = None,
    trusted_env: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Evaluate a policy on one episode per seed and return the ``eval_info.json`` dict.

    Each episode starts from ``reset(seed=s)``; the policy's random stream is seeded with
    ``s``. For the benchmark's numbers use :func:`evaluate_protocol`.

    Args:
        env_id: a registered id, e.g. ``"polymimic/Push-v1"``.
        env_kwargs: keyword arguments for ``gym.make``.
        policy: has ``reset``, ``predict_action`` and ``config.obs_keys``.
        seeds: e.g. ``range(TRAIN_EVAL_SEED_START, TRAIN_EVAL_SEED_START + 20)``.
        video_path: if given, write ``max_video_episodes`` episodes to this mp4 grid (in
            protocol mode rollout 0 of the first contexts, in seed mode the first episodes).
        max_video_episodes: how many episodes the video shows.
        reference_distribution: the dataset's mode distribution, for ``kl_to_reference``.
        trusted_env: make ``env_id`` with plain ``gym.make`` (code that registered its own
            env; one worker only). By default the id and kwargs must pass the env allowlist
            (``polymimic.envs.allowlist``), since they usually come from a checkpoint file.
        workers: sub-environments; results do not depend on it.

    Raises:
        ValueError: if ``seeds`` is empty or the env has no time limit.
        EnvRequestError: an env id or kwargs outside the allowlist.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate needs at least one seed")
    episodes = [EpisodeSpec(seed=s, generator_seed=s) for s in seeds]
    info = _evaluate_episodes(
        env_id, env_kwargs, policy, episodes, None, workers, video_path, max_video_episodes,
        reference_distribution, trusted_env,
    )  # fmt: skip
    info["seeds"] = seeds
    return info


def evaluate_protocol(
    env_kwargs: Mapping[str, Any] | None,
    policy: EvaluablePolicy,
    protocol: EvalProtocol,
    workers: int = 1,
    video_path: str | os.PathLike | None = None,
    max_video_episodes: int = DEFAULT_MAX_VIDEO_EPISODES,
    reference_distribution: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Evaluate a policy with a task's protocol (S stored contexts × R rollouts).

    Rollout ``r`` of context ``c`` starts from stored state ``c`` (``reset_to``) and draws
    from a generator seeded by ``rollout_seed(protocol, c, r)``; episodes are listed context
    by context. See :func:`evaluate` for the other arguments.

    Raises:
        ProtocolError: stored contexts that do not fit the environment.
        EnvRequestError: env kwargs outside the allowlist.
    """
    from polymimic.envs.allowlist import make_env

    probe = make_env(protocol.task_id, dict(env_kwargs or {}))
    try:
        states, digest = load_contexts(protocol, probe.unwrapped.state_size)
    finally:
        probe.close()
    from polymimic.eval.protocol import SPLIT_SEED_START

    seed_start = SPLIT_SEED_START[protocol.split]
    episodes = [
        EpisodeSpec(seed=seed_start + c, initial_state=states[c],
                    generator_seed=rollout_seed(protocol, c, r), context=c, rollout=r)
        for c in range(protocol.num_contexts) for r in range(protocol.rollouts_per_context)
    ]  # fmt: skip
    return _evaluate_episodes(
        protocol.task_id, env_kwargs, policy, episodes, {**protocol.to_dict(),
        "contexts_sha256": digest}, workers, video_path, max_video_episodes,
        reference_distribution, False,
    )  # fmt: skip


def evaluate_episodes(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    policy: EvaluablePolicy,
    episodes: Sequence[EpisodeSpec],
    protocol: dict[str, Any],
    workers: int = 1,
) -> dict[str, Any]:
    """Evaluate episodes whose initial states the caller chose, as :func:`evaluate_protocol`
    evaluates its stored ones: the same rollout loop, aggregation and ``eval_info.json``.

    The leaderboard uses it for test contexts drawn from its secret seed range; ``protocol``
    is the ``protocol`` section to record (it needs ``num_contexts``; each episode's
    ``context`` indexes ``range(num_contexts)``). The env id and kwargs pass the allowlist.
    """
    return _evaluate_episodes(
        env_id, env_kwargs, policy, list(episodes), dict(protocol), workers, None, 0, None, False
    )


def _evaluate_episodes(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    policy: EvaluablePolicy,
    episodes: list[EpisodeSpec],
    protocol: dict[str, Any] | None,
    workers: int,
    video_path: str | os.PathLike | None,
    max_video_episodes: int,
    reference_distribution: Mapping[str, float] | None,
    trusted_env: bool,
) -> dict[str, Any]:
    started = time.perf_counter()
    video = _video_episodes(episodes, max_video_episodes) if video_path is not None else []
    outcomes, env_info = _play(env_id, env_kwargs, policy, episodes, workers, video, trusted_env)
    records = [EpisodeRecord.from_outcome(o) for o in outcomes]
    contexts = None if protocol is None else list(range(protocol["num_contexts"]))
    info = {
        "format_version": EVAL_INFO_FORMAT_VERSION,
        "protocol": protocol,
        "env": env_info,
        "policy": _policy_info(policy),
        "settings": {"workers": max(1, min(workers, len(episodes))), "inference": "row_by_row",
                     "video_episodes": len(video)},
        "seeds": [int(e.seed) for e in episodes],
        "per_episode": [r.to_dict() for r in records],
        "aggregated": aggregate(records, env_info["behaviours"], reference_distribution,
                                contexts, task_id=env_id),
        "reference": None if reference_distribution is None else
        {"distribution": dict(reference_distribution)},
        "video": None,
        "video_error": None,
        "versions": {**library_versions(), "git_commit": git_commit()},
    }  # fmt: skip
    if video_path is not None:
        frames = [outcomes[i].frames for i in video if outcomes[i].frames]
        try:
            write_video_grid(video_path, frames, env_info["render_fps"])
            info["video"] = str(video_path)
        except (RuntimeError, OSError, ValueError) as exc:
            # The evaluation is worth more than its video: keep it, say what went wrong.
            info["video_error"] = f"{type(exc).__name__}: {exc}"
    info["wall_s"] = time.perf_counter() - started
    return info


def _video_episodes(episodes: Sequence[EpisodeSpec], count: int) -> list[int]:
    """Which episodes the video shows: rollout 0 of as many contexts as possible first (a
    grid of one context's repeats shows little), then further rollouts; in seed mode, the
    first ``count`` episodes."""
    order = sorted(range(len(episodes)), key=lambda i: (episodes[i].rollout or 0, i))
    return sorted(order[: max(0, min(count, len(episodes)))])


def git_commit() -> str | None:
    """The commit of the polymimic checkout this runs from (None outside a git checkout)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def tile_frames(episodes: Sequence[Sequence[np.ndarray]]) -> Iterator[np.ndarray]:
    """Frames of several episodes side by side: a grid of ceil(sqrt(n)) columns, each
    episode holding its last frame once it has ended."""
    columns = math.ceil(math.sqrt(len(episodes)))
    rows = math.ceil(len(episodes) / columns)
    height, width, channels = episodes[0][0].shape
    for t in range(max(len(e) for e in episodes)):
        canvas = np.zeros((rows * height, columns * width, channels), dtype=np.uint8)
        for k, frames in enumerate(episodes):
            row, column = divmod(k, columns)
            canvas[row * height : (row + 1) * height, column * width : (column + 1) * width] = (
                frames[min(t, len(frames) - 1)]
            )
        yield canvas


def write_video_grid(path: str | os.PathLike, episodes: Sequence[Sequence[np.ndarray]], fps: float) -> None:
    """Write episodes as one mp4 grid (H.264 via imageio-ffmpeg), atomically.

    Raises:
        ValueError: no frames; RuntimeError: no ffmpeg backend; OSError: unwritable path.
    """
    if not episodes:
        raise ValueError(f"no frames to write to {path}")
    write_mp4(path, tile_frames(episodes), fps)


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
