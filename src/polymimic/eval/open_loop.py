"""The open-loop baseline: replay the actions of the training demo whose start is nearest.

It answers one question about a task: does it need closed-loop control? For each episode
the baseline looks at the environment's first observation after reset only, picks the demo
whose initial observation is nearest, and then returns that demo's recorded actions one
per step with no feedback at all. Where this succeeds often, the initial state alone
decides a good action sequence and the task does not test closed-loop control (issue 13
asks for success <= 20 % on every task except Avoid).

**Distance.** Euclidean distance between standardised initial observations:

    d(x, x_j) = sqrt( sum_i ((x_i - x_{j,i}) / s_i)^2 )   over the used dimensions i,

where ``x`` is the flat first observation of the episode, ``x_j`` demo ``j``'s first
observation (``obs/<key>[0]``), and ``s_i`` the standard deviation of dimension ``i`` over
the candidate demos' first observations (population std, ``ddof = 0``). Used dimensions:
every dimension of every observation key except ``tip_target`` (the commanded hand
position, equal to ``tip_pos`` at reset, so it would count the hand twice), dropping those
whose std is below ``CONSTANT_STD`` (constant over the demos: they cannot tell demos apart
and would divide by zero). In the v1 tasks the hand starts at one fixed point in every
task but Avoid, so the used dimensions are exactly the objects' keys (positions, and yaw
as its sin/cos features, which are continuous; cubes' 4θ features already identify the
90°-symmetric poses); in Avoid, whose observation holds the hand only, they are the hand's
start position, which is what Avoid's contexts vary. Standardising makes a metre of
position and a unit of sin/cos comparable by their spread in the data, and every
dimension counts once (a key with more dimensions, e.g. Sort6's 12 block values, counts
more). Ties go to the first demo in ``demo_<int>`` order.

**Candidates.** The successful demos (``attrs["success"]``) of the chosen mask
(``--filter-key``, default every demo): replaying a failed demo measures nothing.

**After the demo's last action** the baseline holds still: it returns zeros, which in
every polymimic task means "do not move the hand target" (Stack: and the gripper command
``<= 0``, open, which is how every Stack demo ends). The episode then runs on to the
task's time limit or its success.

The baseline is a policy object with the inference interface of ``policies.base.Policy``
(``config.obs_keys``, batched ``predict_action``, ``reset(env_ids)``), so it is evaluated
through the same protocol, rollout loop and ``eval_info.json`` as every learner; it is not
a registered learner and ``polymimic train`` cannot pick it. ``polymimic eval --open-loop
DATASET`` runs it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polymimic.datasets.obs import flatten_obs
from polymimic.datasets.reader import (
    demo_attrs,
    demo_names,
    open_dataset,
    read_demo_arrays,
    read_env_args,
)
from polymimic.errors import UserError

#: Observation keys never used in the distance (see the module docstring).
EXCLUDED_KEYS = ("tip_target",)
#: Dimensions whose std over the candidates' initial observations is below this are unused.
CONSTANT_STD = 1e-9
POLICY_NAME = "open_loop"


class OpenLoopError(UserError):
    """A dataset the open-loop baseline cannot use (no successful demos, another task)."""


@dataclasses.dataclass
class OpenLoopConfig:
    """What the baseline was built from (``eval_info.json``'s ``policy.config``).

    Attributes:
        obs_keys: the flat observation's keys, in order (the dataset's, sorted).
        obs_dim, action_dim: widths.
        distance_dims: the used dimensions, as ``key[i]`` names.
        dataset: the dataset file.
        filter_key: the mask the candidates came from (None: every demo).
        num_demos: candidate demos (successful demos of the mask).
        demos: their names, in ``demo_<int>`` order (indices in ``open_loop.per_context``).
    """

    obs_keys: tuple[str, ...] = ()
    obs_dim: int = 0
    action_dim: int = 0
    distance_dims: tuple[str, ...] = ()
    dataset: str = ""
    filter_key: str | None = None
    num_demos: int = 0
    demos: tuple[str, ...] = ()


class OpenLoopPolicy:
    """Replays, per environment, the actions of the demo nearest to its first observation.

    Args:
        obs_keys: keys of the flat observations, in order.
        key_widths: each key's width.
        initial_obs: ``(N, obs_dim)`` the demos' first flat observations.
        actions: the N demos' ``(T_j, action_dim)`` actions.
        demos, dataset, filter_key: recorded in the config.
    """

    name = POLICY_NAME

    def __init__(
        self,
        obs_keys: Sequence[str],
        key_widths: Sequence[int],
        initial_obs: np.ndarray,
        actions: Sequence[np.ndarray],
        demos: Sequence[str] = (),
        dataset: str = "",
        filter_key: str | None = None,
    ) -> None:
        initial_obs = np.asarray(initial_obs, dtype=np.float32)
        if len(actions) == 0 or len(actions) != len(initial_obs):
            raise ValueError(f"need one action array per demo, got {len(actions)} for "
                             f"{len(initial_obs)} initial observations")
        dims = [f"{k}[{i}]" for k, w in zip(obs_keys, key_widths, strict=True) for i in range(w)]
        if initial_obs.ndim != 2 or initial_obs.shape[1] != len(dims):
            raise ValueError(f"initial observations {initial_obs.shape} do not fit keys of "
                             f"{len(dims)} values")
        candidate = np.array([not d.startswith(tuple(f"{k}[" for k in EXCLUDED_KEYS))
                              for d in dims])
        x = initial_obs.astype(np.float64)
        std = x.std(axis=0)
        self.used = candidate & (std >= CONSTANT_STD)
        self.scale = np.where(self.used, std, 1.0)
        self._points = x[:, self.used] / self.scale[self.used]
        self.actions = [np.asarray(a, dtype=np.float64) for a in actions]
        action_dim = self.actions[0].shape[1]
        self.config = OpenLoopConfig(
            obs_keys=tuple(obs_keys), obs_dim=len(dims), action_dim=int(action_dim),
            distance_dims=tuple(d for d, u in zip(dims, self.used, strict=True) if u),
            dataset=str(dataset), filter_key=filter_key, num_demos=len(self.actions),
            demos=tuple(demos),
        )  # fmt: skip
        self._demo = np.zeros(0, dtype=np.int64)  # per environment: the demo it replays
        self._step = np.zeros(0, dtype=np.int64)  # per environment: its next action's index
        self._fresh = np.zeros(0, dtype=bool)  # per environment: next obs starts an episode

    # --- the distance -------------------------------------------------------------------
    def distances(self, obs: np.ndarray) -> np.ndarray:
        """``(obs_dim,)`` one flat observation -> ``(N,)`` its distance to every demo."""
        x = np.asarray(obs, dtype=np.float32).astype(np.float64)[self.used] / self.scale[self.used]
        return np.sqrt(((self._points - x) ** 2).sum(axis=1))

    def nearest(self, obs: np.ndarray) -> tuple[int, float]:
        """The nearest demo's index (first of ties) and its distance, for one observation."""
        d = self.distances(obs)
        j = int(np.argmin(d))
        return j, float(d[j])

    # --- the inference interface ----------------------------------------------------------
    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        """The named environments' next observation starts an episode (None: all)."""
        if env_ids is None:
            self._demo, self._step = np.zeros(0, np.int64), np.zeros(0, np.int64)
            self._fresh = np.zeros(0, dtype=bool)
            return
        for env_id in env_ids:
            if 0 <= env_id < len(self._fresh):
                self._fresh[env_id] = True

    def predict_action(
        self, obs: np.ndarray, generators: Any = None, row_by_row: bool = False
    ) -> np.ndarray:
        """``(B, obs_dim)`` observations -> ``(B, action_dim)`` actions.

        Only an environment's first observation after ``reset`` is read (to pick its demo);
        every environment is handled on its own, so a row's action never depends on the
        others in the batch. ``generators`` and ``row_by_row`` are accepted and unused: the
        baseline is deterministic.
        """
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1] != self.config.obs_dim:
            raise ValueError(f"expected observations (B, {self.config.obs_dim}), got {obs.shape}")
        if len(self._fresh) != len(obs):  # a new batch size: every environment starts anew
            self._demo = np.zeros(len(obs), dtype=np.int64)
            self._step = np.zeros(len(obs), dtype=np.int64)
            self._fresh = np.ones(len(obs), dtype=bool)
        out = np.zeros((len(obs), self.config.action_dim), dtype=np.float64)
        for i, row in enumerate(obs):
            if self._fresh[i]:
                self._demo[i], _ = self.nearest(row)
                self._step[i] = 0
                self._fresh[i] = False
            actions = self.actions[self._demo[i]]
            if self._step[i] < len(actions):
                out[i] = actions[self._step[i]]
            self._step[i] += 1
        return out

    # --- building -------------------------------------------------------------------------
    @classmethod
    def from_dataset(
        cls, path: str | os.PathLike, filter_key: str | None = None
    ) -> tuple[OpenLoopPolicy, dict[str, Any]]:
        """The baseline over a dataset's successful demos, and the dataset's ``env_args``.

        Raises:
            DatasetError: a missing or damaged file, an unknown mask.
            OpenLoopError: no successful demo in the selection.
        """
        with open_dataset(path) as f:
            env_args = read_env_args(f)
            names = demo_names(f, filter_key)
            chosen = [n for n in names if demo_attrs(f["data"][n]).get("success", False)]
            which = "every demo" if filter_key is None else f"mask '{filter_key}'"
            if not chosen:
                raise OpenLoopError(
                    f"{path}: {which} holds {len(names)} demos and none succeeded; the "
                    "open-loop baseline replays successful demos. Choose another --filter-key"
                )
            keys = sorted(f["data"][chosen[0]]["obs"])
            initial, actions, widths = [], [], None
            for name in chosen:
                arrays = read_demo_arrays(f, name, ["actions", *(f"obs/{k}" for k in keys)])
                first = {k: arrays[f"obs/{k}"][0] for k in keys}
                widths = [int(np.prod(np.shape(first[k]))) for k in keys]
                initial.append(flatten_obs(first, keys))
                actions.append(arrays["actions"])
        policy = cls(keys, widths or [], np.stack(initial), actions, chosen, str(path), filter_key)
        return policy, env_args


def context_initial_obs(
    env_id: str, env_kwargs: Mapping[str, Any] | None, states: Sequence[np.ndarray],
    obs_keys: Sequence[str],
) -> np.ndarray:
    """The flat first observation of each protocol context (``reset`` then ``reset_to``, as
    the rollout loop starts them)."""
    from polymimic.envs.allowlist import make_env

    env = make_env(env_id, dict(env_kwargs or {}))
    try:
        rows = []
        for state in states:
            env.reset(seed=0)
            obs = env.unwrapped.reset_to(np.asarray(state, dtype=np.float64))
            rows.append(flatten_obs(obs, obs_keys))
        return np.stack(rows)
    finally:
        env.close()


def nearest_demo_section(
    policy: OpenLoopPolicy, env_id: str, env_kwargs: Mapping[str, Any] | None,
    protocol: Any,
) -> dict[str, Any]:
    """``eval_info.json``'s ``open_loop`` section: each context's nearest demo and distance.

    The rollout loop asks the policy itself; this repeats its choice in this process (the
    policy may run in worker processes), from the same first observations.
    """
    from polymimic.envs.allowlist import make_env
    from polymimic.eval.protocol import load_contexts

    probe = make_env(env_id, dict(env_kwargs or {}))
    try:
        states, _ = load_contexts(protocol, probe.unwrapped.state_size)
    finally:
        probe.close()
    first = context_initial_obs(env_id, env_kwargs, states, policy.config.obs_keys)
    picks = [policy.nearest(row) for row in first]
    d = np.array([dist for _, dist in picks])
    return {
        "dataset": policy.config.dataset,
        "filter_key": policy.config.filter_key,
        "num_demos": policy.config.num_demos,
        "distance": "Euclidean over the first observation's dimensions "
        f"{list(policy.config.distance_dims)}, each divided by its std over the candidate "
        "demos' first observations (polymimic.eval.open_loop)",
        "after_demo": "zeros (hold still)",
        "per_context": [
            {"context": c, "demo": policy.config.demos[j] if policy.config.demos else j,
             "distance": dist}
            for c, (j, dist) in enumerate(picks)
        ],
        "distance_stats": {
            "min": float(d.min()), "median": float(np.median(d)), "mean": float(d.mean()),
            "max": float(d.max()),
        },
    }  # fmt: skip


def check_task(env_args: Mapping[str, Any], env: str | None, path: Path | str) -> None:
    """Refuse ``--env`` naming another task than the dataset's."""
    if env is not None and env != env_args.get("env_name"):
        raise OpenLoopError(
            f"{path} holds demos of {env_args.get('env_name')!r}, not {env!r}; the open-loop "
            "baseline replays demos in their own task (drop --env or pick that task's dataset)"
        )
