"""The named datasets: one robomimic-MH-like multi-operator population per task.

Every population follows robomimic's MH recipe (2 better, 2 okay, 2 worse operators) and
the same plan, so the datasets exercise the same questions on every task:
- strategies are chosen so that every behaviour of the task has a sizeable expected share
  over the whole dataset (``registry.expected_behaviour_shares``; stated in each
  description);
- at least one pair of operators shares a strategy but differs in style: the conflict the
  compatibility scorer must find;
- at least one pair shares a style but differs in strategy: a difference of *behaviour*,
  which is diversity, not a conflict;
- operator seeds are distinct across all datasets (so no two operators' behaviour draws
  are correlated), in blocks of 100 per dataset.

An operator is a row of names looked up in the task's tables (``OperatorTables``), so a
population reads as the table it is. Changing anything here that changes demos (an
operator, a seed, the demo count) needs a new ``-vN`` name and a regenerated manifest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from polymimic.datasets.spec import DatasetSpec
from polymimic.operators import task_behaviours
from polymimic.operators.align import ALIGN_SKILLS, ALIGN_STRATEGIES, ALIGN_STYLES
from polymimic.operators.avoid import AVOID_SKILLS, AVOID_STRATEGIES, AVOID_STYLES
from polymimic.operators.base import Operator, Skill, Strategy
from polymimic.operators.push import PUSH_SKILLS, PUSH_STRATEGIES, PUSH_STYLES
from polymimic.operators.sort import SORT_SKILLS, SORT_STYLES, sort_strategies
from polymimic.operators.stack import STACK_SKILLS, STACK_STRATEGIES, STACK_STYLES
from polymimic.registry import lookup

#: One operator as names from its task's tables: (id, strategy, style, skill, seed).
OperatorRow = tuple[str, str, str, str, int]


@dataclasses.dataclass(frozen=True)
class OperatorTables:
    """A task's named strategies, styles and skills: the vocabulary of its populations."""

    strategies: Mapping[str, Strategy]
    styles: Mapping[str, Any]  # the task's style dataclass instances
    skills: Mapping[str, Skill]  # keyed by quality: "better", "okay", "worse"

    def population(self, *rows: OperatorRow) -> tuple[Operator, ...]:
        """The operators named by ``rows``; an unknown name raises a KeyError listing the known."""
        return tuple(
            Operator(
                op_id,
                lookup(self.strategies, strategy, "strategy"),
                lookup(self.styles, style, "style"),
                lookup(self.skills, skill, "skill"),
                seed,
            )
            for op_id, strategy, style, skill, seed in rows
        )


PUSH = OperatorTables(PUSH_STRATEGIES, PUSH_STYLES, PUSH_SKILLS)
AVOID = OperatorTables(AVOID_STRATEGIES, AVOID_STYLES, AVOID_SKILLS)
ALIGN = OperatorTables(ALIGN_STRATEGIES, ALIGN_STYLES, ALIGN_SKILLS)
STACK = OperatorTables(STACK_STRATEGIES, STACK_STYLES, STACK_SKILLS)
SORT2, SORT4, SORT6 = (
    OperatorTables(sort_strategies(task_behaviours(env_id)), SORT_STYLES, SORT_SKILLS)
    for env_id in ("polymimic/Sort2-v0", "polymimic/Sort4-v0", "polymimic/Sort6-v0")
)

PUSH_MULTI_OPERATOR_V0 = DatasetSpec(
    name="polymimic/push/multi-operator-v0",
    env_id="polymimic/Push-v0",
    operators=PUSH.population(
        ("op1", "red_first", "direct_fast", "better", 101),
        ("op2", "green_first", "curved", "better", 102),
        ("op3", "uniform", "retreat_slow", "okay", 103),
        ("op4", "left_first", "direct_fast", "okay", 104),
        ("op5", "uniform", "curved", "worse", 105),
        ("op6", "right_first", "retreat_slow", "worse", 106),
    ),
    demos_per_operator=50,
    description=(
        "robomimic-MH-like mix: 2 better, 2 okay, 2 worse operators x 50 demos. Strategies "
        "are chosen so each of the four behaviours is expected in 25% of demos; op3/op5 "
        "share a strategy and differ in style and skill."
    ),
)

AVOID_MULTI_OPERATOR_V0 = DatasetSpec(
    name="polymimic/avoid/multi-operator-v0",
    env_id="polymimic/Avoid-v0",
    operators=AVOID.population(
        ("op1", "left_first", "direct", "better", 201),
        ("op2", "right_first", "smooth", "better", 202),
        ("op3", "uniform", "wide", "okay", 203),
        ("op4", "inner", "wide", "okay", 204),
        ("op5", "uniform", "smooth", "worse", 205),
        ("op6", "uniform", "direct", "worse", 206),
    ),
    # 24 paths: 100 demos per operator (MH has 50) so every path is expected >= 20 times;
    # Avoid's episodes are the shortest of the suite, so 600 demos stay cheap.
    demos_per_operator=100,
    description=(
        "robomimic-MH-like mix: 2 better, 2 okay, 2 worse operators x 100 demos (24 paths). "
        "Strategies left_first (op1), right_first (op2), inner (op4) and uniform (op3, op5, "
        "op6): each of the 4 inner paths (no outermost obstacle passed on the outside) is "
        "expected in 7.6% of demos, each of the other 20 paths in 3.5%. op3/op5/op6 share "
        "a strategy and differ in style; op3/op4 (wide) and op1/op6 (direct) share a style "
        "and differ in strategy."
    ),
)

ALIGN_MULTI_OPERATOR_V0 = DatasetSpec(
    name="polymimic/align/multi-operator-v0",
    env_id="polymimic/Align-v0",
    operators=ALIGN.population(
        ("op1", "inside", "direct_fast", "better", 301),
        ("op2", "outside", "slide_first", "better", 302),
        ("op3", "uniform", "careful_slow", "okay", 303),
        ("op4", "outside", "direct_fast", "okay", 304),
        ("op5", "uniform", "slide_first", "worse", 305),
        ("op6", "inside", "careful_slow", "worse", 306),
    ),
    demos_per_operator=50,
    description=(
        "robomimic-MH-like mix: 2 better, 2 okay, 2 worse operators x 50 demos. Strategies "
        "inside (op1, op6), outside (op2, op4) and uniform (op3, op5): inside and outside "
        "are each expected in 50.0% of demos. op3/op5, op1/op6 and op2/op4 share a strategy "
        "and differ in style; op1/op4 (direct_fast) share a style and differ in strategy."
    ),
)

SORT2_MULTI_OPERATOR_V0 = DatasetSpec(
    name="polymimic/sort2/multi-operator-v0",
    env_id="polymimic/Sort2-v0",
    operators=SORT2.population(
        ("op1", "reds_first", "direct_fast", "better", 401),
        ("op2", "blues_first", "far_first", "better", 402),
        ("op3", "uniform", "near_first_slow", "okay", 403),
        ("op4", "blues_first", "direct_fast", "okay", 404),
        ("op5", "uniform", "far_first", "worse", 405),
        ("op6", "reds_first", "near_first_slow", "worse", 406),
    ),
    demos_per_operator=50,
    description=(
        "robomimic-MH-like mix: 2 better, 2 okay, 2 worse operators x 50 demos. Strategies "
        "reds_first (op1, op6), blues_first (op2, op4) and uniform (op3, op5); "
        "'alternating' is left out, as with two blocks it prefers exactly what uniform "
        "does. RB and BR are each expected in 50.0% of demos. op3/op5, op1/op6 and op2/op4 "
        "share a strategy and differ in style; op1/op4 (direct_fast) share a style and "
        "differ in strategy."
    ),
)

SORT4_MULTI_OPERATOR_V0 = DatasetSpec(
    name="polymimic/sort4/multi-operator-v0",
    env_id="polymimic/Sort4-v0",
    operators=SORT4.population(
        ("op1", "reds_first", "direct_fast", "better", 501),
        ("op2", "blues_first", "far_first", "better", 502),
        ("op3", "alternating", "near_first_slow", "okay", 503),
        ("op4", "blues_first", "direct_fast", "okay", 504),
        ("op5", "uniform", "far_first", "worse", 505),
        ("op6", "reds_first", "near_first_slow", "worse", 506),
    ),
    demos_per_operator=50,
    description=(
        "robomimic-MH-like mix: 2 better, 2 okay, 2 worse operators x 50 demos (6 orders). "
        "Strategies reds_first (op1, op6), blues_first (op2, op4), alternating (op3) and "
        "uniform (op5): the alternating orders RBRB and BRBR are each expected in 22.2% of "
        "demos, the other four orders in 13.9%. op1/op6 and op2/op4 share a strategy and "
        "differ in style; op1/op4 (direct_fast) and op2/op5 (far_first) share a style and "
        "differ in strategy."
    ),
)

SORT6_MULTI_OPERATOR_V0 = DatasetSpec(
    name="polymimic/sort6/multi-operator-v0",
    env_id="polymimic/Sort6-v0",
    operators=SORT6.population(
        ("op1", "reds_first", "direct_fast", "better", 601),
        ("op2", "blues_first", "far_first", "better", 602),
        ("op3", "uniform", "near_first_slow", "okay", 603),
        ("op4", "blues_first", "direct_fast", "okay", 604),
        ("op5", "uniform", "far_first", "worse", 605),
        ("op6", "reds_first", "near_first_slow", "worse", 606),
    ),
    # 20 orders: 100 demos per operator (MH has 50) so every order is expected 30 times.
    demos_per_operator=100,
    description=(
        "robomimic-MH-like mix: 2 better, 2 okay, 2 worse operators x 100 demos (20 orders). "
        "Strategies reds_first (op1, op6), blues_first (op2, op4) and uniform (op3, op5): "
        "each of the 20 orders is expected in 5.0% of demos ('alternating' is left out: it "
        "would put 12.5% on each of its two orders). op3/op5, op1/op6 and op2/op4 share a "
        "strategy and differ in style; op1/op4 (direct_fast) share a style and differ in "
        "strategy."
    ),
)

STACK_MULTI_OPERATOR_V0 = DatasetSpec(
    name="polymimic/stack/multi-operator-v0",
    env_id="polymimic/Stack-v0",
    operators=STACK.population(
        ("op1", "red_bottom", "direct_fast", "better", 701),
        ("op2", "blue_top", "vertical_fast", "better", 702),
        ("op3", "uniform", "vertical_slow", "okay", 703),
        ("op4", "uniform", "direct_fast", "okay", 704),
        ("op5", "uniform", "direct_slow", "worse", 705),
        ("op6", "uniform", "vertical_fast", "worse", 706),
    ),
    demos_per_operator=50,
    description=(
        "robomimic-MH-like mix: 2 better, 2 okay, 2 worse operators x 50 demos (6 orders). "
        "Strategies red_bottom (op1), blue_top (op2) and uniform (op3-op6; only uniform "
        "prefers the three orders with neither red at the bottom nor blue on top): "
        "red-green-blue is expected in 27.8% of demos, red-blue-green and green-red-blue "
        "in 19.4% each, the other three orders in 11.1% each. op3/op4/op5/op6 share a "
        "strategy and differ in style; op1/op4 (direct_fast) and op2/op6 (vertical_fast) "
        "share a style and differ in strategy."
    ),
)

#: Every named dataset, in the order they are listed.
NAMED_DATASETS: tuple[DatasetSpec, ...] = (
    PUSH_MULTI_OPERATOR_V0,
    AVOID_MULTI_OPERATOR_V0,
    ALIGN_MULTI_OPERATOR_V0,
    SORT2_MULTI_OPERATOR_V0,
    SORT4_MULTI_OPERATOR_V0,
    SORT6_MULTI_OPERATOR_V0,
    STACK_MULTI_OPERATOR_V0,
)
