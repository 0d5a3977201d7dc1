"""Simulated demonstrators: one script factory per task, and the task's populations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from polymimic.operators.base import EpisodeScript, Operator, Skill, Strategy, record_episode
from polymimic.operators.push import make_push_script
from polymimic.registry import lookup

ScriptFactory = Callable[[Operator, str, np.random.Generator], EpisodeScript]

SCRIPT_FACTORIES: dict[str, ScriptFactory] = {"polymimic/Push-v0": make_push_script}


def script_factory(env_id: str) -> ScriptFactory:
    """The scripted-operator factory of a task, with a clear error for unknown ids."""
    return lookup(SCRIPT_FACTORIES, env_id, "task with scripted operators")


__all__ = ["Operator", "Skill", "Strategy", "record_episode", "script_factory", "SCRIPT_FACTORIES"]
