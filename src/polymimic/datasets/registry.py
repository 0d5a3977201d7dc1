"""Named, versioned datasets (Minari-style ids) defined in code.

A name fixes everything that decides the demos' bytes: the task and its kwargs, the
operator population (strategy, style, skill, seed of each), how many demos each operator
gives, and the episode seeds. Changing any of it means a new ``-vN``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from polymimic.operators.base import Operator
from polymimic.operators.push import PUSH_SKILLS, PUSH_STRATEGIES, PUSH_STYLES
from polymimic.registry import lookup

# Dataset episode seeds are 0..N-1; evaluation seeds start at 10_000 (eval.rollout), so a
# learner is never evaluated on an initial state it was trained on.
MAX_DATASET_SEEDS = 10_000


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Everything that defines a named dataset.

    Attributes:
        name: Minari-style id, ``polymimic/<task>/<variant>-v<N>``.
        env_id: the gym id the demos are recorded in.
        env_kwargs: kwargs for ``gym.make``.
        operators: the population, in a fixed order.
        demos_per_operator: robomimic MH uses 50.
        description: what the mix is meant to exercise.
    """

    name: str
    env_id: str
    operators: tuple[Operator, ...]
    demos_per_operator: int
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""

    def episode_seed(self, operator_index: int, demo_index: int, demos_per_operator: int) -> int:
        """Seed of one demo: operator-major, so every demo is reproducible on its own."""
        seed = operator_index * demos_per_operator + demo_index
        if seed >= MAX_DATASET_SEEDS:
            raise ValueError(f"dataset seeds must stay below {MAX_DATASET_SEEDS} (eval seeds)")
        return seed


def _push_operator(op_id: str, strategy: str, style: str, skill: str, seed: int) -> Operator:
    return Operator(op_id, PUSH_STRATEGIES[strategy], PUSH_STYLES[style], PUSH_SKILLS[skill], seed)


PUSH_MULTI_OPERATOR_V0 = DatasetSpec(
    name="polymimic/push/multi-operator-v0",
    env_id="polymimic/Push-v0",
    operators=(
        _push_operator("op1", "red_first", "direct_fast", "better", 101),
        _push_operator("op2", "green_first", "curved", "better", 102),
        _push_operator("op3", "uniform", "retreat_slow", "okay", 103),
        _push_operator("op4", "left_first", "direct_fast", "okay", 104),
        _push_operator("op5", "uniform", "curved", "worse", 105),
        _push_operator("op6", "right_first", "retreat_slow", "worse", 106),
    ),
    demos_per_operator=50,
    description=(
        "robomimic-MH-like mix: 2 better, 2 okay, 2 worse operators x 50 demos. Strategies "
        "are chosen so each of the four behaviours is expected in 25% of demos; op3/op5 "
        "share a strategy and differ in style and skill."
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (PUSH_MULTI_OPERATOR_V0,)}


def dataset_spec(name: str) -> DatasetSpec:
    """Look a named dataset up, with an error listing the known names."""
    return lookup(DATASETS, name, "dataset")
