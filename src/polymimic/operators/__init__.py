"""Simulated demonstrators: one script factory per task, and the task's populations.

Every task registers a ``TaskOperators`` entry: the closed-loop script factory that can
realise any of the task's behaviours on demand, and the style its *expert* uses. The expert
(``expert_operator``) is a skill-free operator with a uniform strategy over the task's
behaviours: the reference the operator populations (and the issue's >= 95% check) build on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from polymimic.operators.align import ALIGN_STYLES, make_align_script
from polymimic.operators.avoid import AVOID_STYLES, make_avoid_script
from polymimic.operators.base import EpisodeScript, Operator, Skill, Strategy, record_episode
from polymimic.operators.push import PUSH_STYLES, make_push_script
from polymimic.operators.sort import SORT_STYLES, make_sort_script
from polymimic.operators.stack import STACK_STYLES, make_stack_script
from polymimic.registry import lookup

ScriptFactory = Callable[[Operator, str, np.random.Generator], EpisodeScript]


@dataclasses.dataclass(frozen=True)
class TaskOperators:
    """What the operator machinery needs to know about one task."""

    script_factory: ScriptFactory
    expert_style: Any  # the task's style dataclass instance the expert executes with
    # Action components that move the end effector (a skill's gain and noise act on these
    # only); None: all of them. Stack's fourth component is the gripper command.
    motion_dims: tuple[int, ...] | None = None


TASK_OPERATORS: dict[str, TaskOperators] = {
    "polymimic/Push-v0": TaskOperators(make_push_script, PUSH_STYLES["direct_fast"]),
    "polymimic/Sort2-v0": TaskOperators(make_sort_script, SORT_STYLES["direct_fast"]),
    "polymimic/Sort4-v0": TaskOperators(make_sort_script, SORT_STYLES["direct_fast"]),
    "polymimic/Sort6-v0": TaskOperators(make_sort_script, SORT_STYLES["direct_fast"]),
    "polymimic/Avoid-v0": TaskOperators(make_avoid_script, AVOID_STYLES["direct"]),
    "polymimic/Stack-v0": TaskOperators(
        make_stack_script, STACK_STYLES["direct_fast"], motion_dims=(0, 1, 2)
    ),
    "polymimic/Align-v0": TaskOperators(make_align_script, ALIGN_STYLES["direct_fast"]),
}


def task_operators(env_id: str) -> TaskOperators:
    """The operator entry of a task, with a clear error for unknown ids."""
    return lookup(TASK_OPERATORS, env_id, "task with scripted operators")


def script_factory(env_id: str) -> ScriptFactory:
    """The scripted-operator factory of a task."""
    return task_operators(env_id).script_factory


def expert_operator(
    env_id: str, behaviours: tuple[str, ...] | None = None, seed: int = 0
) -> Operator:
    """A skill-free operator of ``env_id`` drawing uniformly from ``behaviours``.

    Args:
        env_id: registered task id.
        behaviours: the labels to mix uniformly; all of the task's behaviours by default.
        seed: the operator's own seed (its behaviour draws depend on it and the episode seed).
    """
    if behaviours is None:
        behaviours = task_behaviours(env_id)
    strategy = Strategy("uniform", {label: 1.0 for label in behaviours})
    return Operator("expert", strategy, task_operators(env_id).expert_style, Skill("better"), seed)


def task_behaviours(env_id: str) -> tuple[str, ...]:
    """A task's behaviour labels (without ``other``), read from its class: no env is built."""
    return tuple(load_env_creator(gym.spec(env_id).entry_point).behaviours)

__all__ = [
    "Operator",
    "Skill",
    "Strategy",
    "TaskOperators",
    "TASK_OPERATORS",
    "expert_operator",
    "record_episode",
    "script_factory",
    "task_behaviours",
    "task_operators",
]
