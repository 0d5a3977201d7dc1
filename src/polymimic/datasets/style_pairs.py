"""Same-skill style pairs: two operators that differ in style only, at any style distance.

The multi-operator datasets' conflicting-style pairs also differ in skill, so a scorer that
flags them may be flagging skill. Each task here has a pair of operators with the same
skill (``better``), the same strategy (``uniform``) and conflicting styles: in the same
state they act differently (``STYLE_PAIRS`` says how, per task).

**The knob.** ``style_pair_spec(task, d)`` is a two-operator dataset: operator ``a``
executes style ``a``; operator ``b`` executes ``interpolate_style(a, b, d)``
(``operators.style_blend``), so ``d = 0`` is two operators of one style and ``d = 1`` the
pair's full conflict. Operator seeds do not depend on ``d``, so a sweep changes the style
and nothing else (intentions, hand noise and initial states are the same at every ``d``).

**Names, not a registry.** The pair is generated at any ``d`` from its name,
``polymimic/<task>/style-pair-d<d>-v1`` (``d`` with at most three decimals, e.g.
``d0``, ``d0.25``, ``d1``): ``registry.dataset_spec`` parses it, so ``polymimic data
generate --dataset polymimic/stack/style-pair-d0.5-v1`` and the API take the same
route. A sweep matters more than a few fixed files, so the names are not entries of
``DATASETS`` (whose tests expect a robomimic-MH-like population) and have no committed
manifests. The knob is stored in the file twice: the generation parameters
(``style_distance``) and every demo's attrs (``style_distance``; demos of a
per-episode blend also carry ``style_blend`` and ``style_categorical``, the style whose
route or pick rule they used).
"""

from __future__ import annotations

import dataclasses
import re

from polymimic.datasets import named
from polymimic.datasets.spec import DatasetSpec
from polymimic.operators.style_blend import interpolate_style


@dataclasses.dataclass(frozen=True)
class StylePair:
    """One task's pair: styles ``a`` and ``b`` (names in its tables) and why they conflict."""

    env_id: str
    tables: named.OperatorTables
    style_a: str
    style_b: str
    conflict: str  # what the two styles do differently in the same state
    seed: int  # operator a's seed; b's is seed + 1 (a block of their own, see below)
    strategy: str = "uniform"
    skill: str = "better"


# Push's pair differs in the route alone: retreat_slow (the named datasets' retreat style)
# is also slower and pauses, and those alone made a quarter of the knob give 80 % of the
# full disagreement (results/operators/style_pairs/README.md). Not added to PUSH_STYLES:
# the named datasets' tables stay as they are.
PUSH_TABLES = dataclasses.replace(named.PUSH, styles={
    **named.PUSH.styles,
    "retreat_fast": dataclasses.replace(
        named.PUSH.styles["direct_fast"], name="retreat_fast", route="retreat"
    ),
})  # fmt: skip


def _near_first(tables: named.OperatorTables) -> named.OperatorTables:
    """Sort's tables plus near_first: far_first with the opposite pick rule, nothing else.

    Like Push's, so the knob moves one decision: near_first_slow is also slower, keeps
    more clearance and pauses, and those alone diverge the pushes at a quarter of the knob
    (Sort2's pair, where the pick rule has nothing to choose, shows it).
    """
    far = tables.styles["far_first"]
    near = dataclasses.replace(far, name="near_first", pick="near_first")
    return dataclasses.replace(tables, styles={**tables.styles, "near_first": near})


# Seeds 1001-1062: distinct from every multi-operator dataset's (101-706).
STYLE_PAIRS: dict[str, StylePair] = {
    "push": StylePair(
        "polymimic/Push-v1", PUSH_TABLES, "direct_fast", "retreat_fast",
        "route to the pre-push point of a block well behind the hand: straight, skirting "
        "blocks, vs backing away from the far side, across, then in (nothing else)", 1001,
    ),
    "avoid": StylePair(
        "polymimic/Avoid-v1", named.AVOID, "direct", "smooth",
        "corners: turned near-sharp (lookahead 2 cm) vs cut into wide curves (5 cm); "
        "also slower", 1011,
    ),
    "align": StylePair(
        "polymimic/Align-v1", named.ALIGN, "direct_fast", "careful_slow",
        "outside: over the box vs round it at table height; turn then slide vs slide then "
        "turn; also slower, with a pause after each push", 1021,
    ),
    "sort2": StylePair(
        "polymimic/Sort2-v1", named.SORT2, "near_first_slow", "far_first",
        "speed, clearance and pauses only: with one block per colour the pick rule "
        "(near vs far first) has nothing to choose from, so Sort2 keeps the named "
        "datasets' styles (its disagreement saturates by d = 0.25)", 1031,
    ),
    "sort4": StylePair(
        "polymimic/Sort4-v1", _near_first(named.SORT4), "near_first", "far_first",
        "which block of the colour goes next: nearest the robot vs farthest (nothing "
        "else)", 1041,
    ),
    "sort6": StylePair(
        "polymimic/Sort6-v1", _near_first(named.SORT6), "near_first", "far_first",
        "which block of the colour goes next: nearest the robot vs farthest (nothing "
        "else)", 1051,
    ),
    "stack": StylePair(
        "polymimic/Stack-v1", named.STACK, "vertical_fast", "direct_fast",
        "route: up to a cruise height, across, straight down vs across and down together "
        "over an arc; the grasp descent starts 3 cm vs 1.2 cm above the cube", 1061,
    ),
}  # fmt: skip
STYLE_PAIR_DEMOS = 50  # per operator, as robomimic MH
NAME_PATTERN = re.compile(r"polymimic/(?P<task>[a-z0-9]+)/style-pair-d(?P<d>[0-9.]+)-v1")


def style_pair_name(task: str, distance: float) -> str:
    """``polymimic/<task>/style-pair-d<d>-v1`` with ``d`` written canonically."""
    return f"polymimic/{task}/style-pair-d{_canonical(distance)}-v1"


def _canonical(distance: float) -> str:
    """``d`` with at most three decimals and no trailing zeros; others are refused."""
    d = float(distance)
    if not 0.0 <= d <= 1.0 or round(d, 3) != d:
        raise ValueError(f"style distance must lie in [0, 1] with at most 3 decimals, got {d}")
    return f"{d:.3f}".rstrip("0").rstrip(".")


def style_pair_spec(task: str, distance: float) -> DatasetSpec:
    """The pair of ``task`` (a ``STYLE_PAIRS`` key) at style distance ``distance``."""
    if task not in STYLE_PAIRS:
        raise KeyError(f"no style pair for task {task!r}; known: {', '.join(STYLE_PAIRS)}")
    pair = STYLE_PAIRS[task]
    name = style_pair_name(task, distance)  # validates the distance
    d = float(_canonical(distance))
    a, b = pair.tables.population(
        ("a", pair.strategy, pair.style_a, pair.skill, pair.seed),
        ("b", pair.strategy, pair.style_b, pair.skill, pair.seed + 1),
    )
    shifted = dataclasses.replace(b, style=interpolate_style(a.style, b.style, d))
    return DatasetSpec(
        name=name,
        env_id=pair.env_id,
        operators=(a, shifted),
        demos_per_operator=STYLE_PAIR_DEMOS,
        style_distance=d,
        description=(
            f"Same-skill style pair at style distance {d:g}: operators a and b, both "
            f"{pair.skill} with strategy {pair.strategy}; a executes {pair.style_a}, b "
            f"{pair.style_a} moved {d:g} of the way to {pair.style_b} (numeric fields "
            "linear, categorical ones per episode with probability d). They conflict in: "
            f"{pair.conflict}."
        ),
    )


def parse_style_pair_name(name: str) -> DatasetSpec | None:
    """The spec a ``style-pair-d<d>-v1`` name denotes; None for any other name.

    Raises:
        ValueError: the name has the pattern but an unknown task or a bad distance.
    """
    match = NAME_PATTERN.fullmatch(name)
    if match is None:
        return None
    try:
        spec = style_pair_spec(match["task"], float(match["d"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{name}: {exc.args[0]}") from None
    if spec.name != name:  # one name per dataset: d0.50 would be d0.5's twin under another name
        raise ValueError(f"{name}: write the distance as {spec.name}")
    return spec
