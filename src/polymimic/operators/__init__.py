"""Simulated demonstrators: one script factory per task, and the task's populations.

Every task registers a ``TaskOperators`` entry: the closed-loop script factory that can
realise any of the task's behaviours on demand, the style its *expert* uses, how its
actions move the hand (``MotionSpec``) and how its scene pulls on an operator's choice
(``scene_utilities``). The expert (``expert_operator``) has a noise-free hand
(``EXPERT_MOTOR``) and a uniform strategy that ignores the scene and never changes its
mind: the reference the operator populations (and the >= 95% success check) build on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from polymimic.envs import align as align_env
from polymimic.envs import avoid as avoid_env
from polymimic.envs import push as push_env
from polymimic.envs import sort as sort_env
from polymimic.envs import stack as stack_env
from polymimic.envs.align import AlignEnv
from polymimic.envs.avoid import AvoidEnv
from polymimic.envs.push import PushEnv
from polymimic.envs.sort import Sort2Env, Sort4Env, Sort6Env
from polymimic.envs.stack import StackEnv
from polymimic.operators.align import ALIGN_STYLES, align_scene_utilities, make_align_script
from polymimic.operators.avoid import AVOID_STYLES, avoid_scene_utilities, make_avoid_script
from polymimic.operators.base import (
    EpisodeScript,
    MotionSpec,
    Operator,
    OperatorEpisode,
    Skill,
    Strategy,
    record_episode,
)
from polymimic.operators.motor import EXPERT_MOTOR, Hand, MotorSkill
from polymimic.operators.planner_avoid import PLANNED_AVOID_STYLES, make_planned_avoid_script
from polymimic.operators.planner_push import PLANNED_PUSH_STYLES, make_planned_push_script
from polymimic.operators.push import PUSH_STYLES, make_push_script, push_scene_utilities
from polymimic.operators.sort import SORT_STYLES, make_sort_script, sort_scene_utilities
from polymimic.operators.stack import STACK_STYLES, make_stack_script, stack_scene_utilities
from polymimic.registry import lookup

ScriptFactory = Callable[[Operator, str, np.random.Generator, Hand], EpisodeScript]
SceneUtilities = Callable[[dict[str, np.ndarray]], dict[str, float]]


@dataclasses.dataclass(frozen=True)
class TaskOperators:
    """What the operator machinery needs to know about one task."""

    script_factory: ScriptFactory
    expert_style: Any  # the task's style dataclass instance the expert executes with
    motion: MotionSpec  # how the hand's motion maps to the task's actions
    # obs -> behaviour -> utility in [-1, 1]: the scene's pull on the strategy (see
    # ``Strategy``); None: the task's choices do not depend on the scene.
    scene_utilities: SceneUtilities | None = None


def _motion(env_class: Any, dims: int, max_step: float) -> MotionSpec:
    return MotionSpec(dims, max_step, env_class.physics_timestep * env_class.substeps)


TASK_OPERATORS: dict[str, TaskOperators] = {
    "polymimic/Push-v1": TaskOperators(
        make_push_script, PUSH_STYLES["direct_fast"], _motion(PushEnv, 2, push_env.MAX_STEP),
        push_scene_utilities,
    ),
    "polymimic/Sort2-v1": TaskOperators(
        make_sort_script, SORT_STYLES["direct_fast"], _motion(Sort2Env, 2, sort_env.MAX_STEP),
        sort_scene_utilities,
    ),
    "polymimic/Sort4-v1": TaskOperators(
        make_sort_script, SORT_STYLES["direct_fast"], _motion(Sort4Env, 2, sort_env.MAX_STEP),
        sort_scene_utilities,
    ),
    "polymimic/Sort6-v1": TaskOperators(
        make_sort_script, SORT_STYLES["direct_fast"], _motion(Sort6Env, 2, sort_env.MAX_STEP),
        sort_scene_utilities,
    ),
    "polymimic/Avoid-v1": TaskOperators(
        make_avoid_script, AVOID_STYLES["direct"], _motion(AvoidEnv, 2, avoid_env.MAX_STEP),
        avoid_scene_utilities,
    ),
    "polymimic/Stack-v1": TaskOperators(
        make_stack_script, STACK_STYLES["direct_fast"],
        dataclasses.replace(
            _motion(StackEnv, 3, stack_env.MAX_STEP),
            wrist_step=stack_env.MAX_YAW_STEP, wrist_limit=stack_env.TOOL_YAW_LIMIT,
        ),
        stack_scene_utilities,
    ),
    "polymimic/Align-v1": TaskOperators(
        make_align_script, ALIGN_STYLES["direct_fast"], _motion(AlignEnv, 3, align_env.MAX_STEP),
        align_scene_utilities,
    ),
}


def task_operators(env_id: str) -> TaskOperators:
    """The operator entry of a task, with a clear error for unknown ids."""
    return lookup(TASK_OPERATORS, env_id, "task with scripted operators")


#: The second, independent operator family (issue 13): free-space motion optimised by CHOMP
#: (``operators.planner``) instead of the scripts' routers, through the same motor model,
#: strategies and scene utilities. Its styles carry the scripted family's names.
PLANNER_OPERATORS: dict[str, TaskOperators] = {
    "polymimic/Push-v1": dataclasses.replace(
        TASK_OPERATORS["polymimic/Push-v1"],
        script_factory=make_planned_push_script,
        expert_style=PLANNED_PUSH_STYLES["direct_fast"],
    ),
    "polymimic/Avoid-v1": dataclasses.replace(
        TASK_OPERATORS["polymimic/Avoid-v1"],
        script_factory=make_planned_avoid_script,
        expert_style=PLANNED_AVOID_STYLES["direct"],
    ),
}
#: Every operator family by name; "scripted" is the default everywhere.
OPERATOR_FAMILIES: dict[str, dict[str, TaskOperators]] = {
    "scripted": TASK_OPERATORS,
    "planner": PLANNER_OPERATORS,
}
DEFAULT_FAMILY = "scripted"


def operator_family(env_id: str, family: str = DEFAULT_FAMILY) -> TaskOperators:
    """The operator entry of a task in one family, with a clear error for unknown names."""
    tasks = lookup(OPERATOR_FAMILIES, family, "operator family")
    return lookup(tasks, env_id, f"task with {family} operators")


def script_factory(env_id: str) -> ScriptFactory:
    """The scripted-operator factory of a task."""
    return task_operators(env_id).script_factory


def expert_operator(
    env_id: str,
    behaviours: tuple[str, ...] | None = None,
    seed: int = 0,
    family: str = DEFAULT_FAMILY,
) -> Operator:
    """A skill-free operator of ``env_id`` drawing uniformly from ``behaviours``.

    Args:
        env_id: registered task id.
        behaviours: the labels to mix uniformly; all of the task's behaviours by default.
        seed: the operator's own seed (its behaviour draws depend on it and the episode seed).
        family: the operator family whose expert style it executes (``OPERATOR_FAMILIES``);
            record it with ``record_episode(..., family=family)``.
    """
    if behaviours is None:
        behaviours = task_behaviours(env_id)
    strategy = Strategy(
        "uniform", {label: 1.0 for label in behaviours}, scene_weight=0.0, change_of_mind=0.0
    )
    skill = Skill("better", EXPERT_MOTOR)
    return Operator("expert", strategy, operator_family(env_id, family).expert_style, skill, seed)


def task_behaviours(env_id: str) -> tuple[str, ...]:
    """A task's behaviour labels (without ``other``), read from its class: no env is built."""
    return tuple(load_env_creator(gym.spec(env_id).entry_point).behaviours)

__all__ = [
    "DEFAULT_FAMILY",
    "OPERATOR_FAMILIES",
    "PLANNER_OPERATORS",
    "Hand",
    "MotionSpec",
    "MotorSkill",
    "Operator",
    "OperatorEpisode",
    "Skill",
    "Strategy",
    "TaskOperators",
    "TASK_OPERATORS",
    "expert_operator",
    "operator_family",
    "record_episode",
    "script_factory",
    "task_behaviours",
    "task_operators",
]
