"""The compatibility ground truth, declared in code before any experiment.

**Definition.** The base set declares the behaviours it contains (``S``). A demonstration
is *incompatible* with the base when it executes a behaviour the base contains, from the
same states, in a conflicting style: the paper's "reaching down then across to grasp vs
across then down" (Gandhi et al., CoRL 2022). A demonstration of a behaviour the base does
not contain is a *new mode*, not incompatible: it adds diversity, which the rest of the
benchmark measures and a filter must keep. A noisy demonstration in the base's style (a
lower-skill operator) is *noisy-compatible*, not incompatible.

**The benchmark dataset.** ``compat_benchmark_spec(task, d)`` makes that definition a
dataset of four operators, built from the task's same-skill style pair
(``datasets.style_pairs.STYLE_PAIRS[task]``: its tables, its styles ``a`` and ``b``, its
skill); every strategy is hard (weight 0 outside its behaviours, no change of mind), so an
operator never intends a behaviour outside its set:

============  ==============================  =========  =====================  ==================
operator      style                           skill      strategy over          class
============  ==============================  =========  =====================  ==================
``base``      ``a``                           better     ``S``                  base
``conflict``  ``interpolate_style(a, b, d)``  better     ``S``                  incompatible
``noisy``     ``a``                           worse      ``S``                  noisy_compatible
``newmode``   ``a``                           better     the others (not ``S``)  new_mode
============  ==============================  =========  =====================  ==================

``S`` is ``BASE_BEHAVIOURS[task]`` where declared (Push: red first, ``red-left`` and
``red-right``; the new mode is green first), else the first half of the task's behaviours
in their declared order. ``d`` is the style distance of ``datasets.style_pairs``: at
``d = 0`` the conflict operator executes style ``a`` itself, so its class is nominal there
(a scorer can only be at chance); at ``d = 1`` it executes the pair's full conflict.
Operator seeds are ``STYLE_PAIRS[task].seed + SEED_OFFSET + i`` (i = 0..3 in the table's
order): a block of their own, distinct from every named dataset's and style pair's, and
independent of ``d``, so a sweep changes the conflict operator's style and nothing else.

The name ``polymimic/<task>/compat-d<d>-v1`` (``d`` with at most three decimals, as the
style pairs) resolves through ``registry.dataset_spec``, so ``polymimic data generate
--dataset polymimic/push/compat-d0.5-v1`` generates it. :func:`ground_truth_labels` reads
the classes back from the demos' ``operator`` attributes.
"""

from __future__ import annotations

import re
from pathlib import Path

from polymimic.datasets.reader import demo_attrs, demo_names, open_dataset
from polymimic.datasets.spec import DatasetSpec
from polymimic.datasets.style_pairs import STYLE_PAIRS, _canonical
from polymimic.errors import UserError
from polymimic.operators import task_behaviours
from polymimic.operators.base import Operator, Strategy
from polymimic.operators.style_blend import interpolate_style

#: Ground-truth classes of the benchmark's operators.
OPERATOR_CLASSES: dict[str, str] = {
    "base": "base",
    "conflict": "incompatible",
    "noisy": "noisy_compatible",
    "newmode": "new_mode",
}
CLASSES = ("base", "incompatible", "noisy_compatible", "new_mode")
#: Behaviours the base contains, where a task's first half is not the natural choice.
BASE_BEHAVIOURS: dict[str, tuple[str, ...]] = {"push": ("red-left", "red-right")}
COMPAT_DEMOS = 50  # per operator, as robomimic MH and the style pairs
SEED_OFFSET = 1000  # style pairs use 1001-1062; the benchmark 2001-2064
NAME_PATTERN = re.compile(r"polymimic/(?P<task>[a-z0-9]+)/compat-d(?P<d>[0-9.]+)-v1")


def compat_benchmark_name(task: str, distance: float) -> str:
    """``polymimic/<task>/compat-d<d>-v1`` with ``d`` written canonically."""
    return f"polymimic/{task}/compat-d{_canonical(distance)}-v1"


def base_behaviours(task: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(S, the others)``: the behaviours the base contains and the new modes' behaviours.

    Raises:
        KeyError: a task without a style pair.
    """
    if task not in STYLE_PAIRS:
        raise KeyError(f"no style pair for task {task!r}; known: {', '.join(STYLE_PAIRS)}")
    behaviours = task_behaviours(STYLE_PAIRS[task].env_id)
    contained = BASE_BEHAVIOURS.get(task, behaviours[: max(1, len(behaviours) // 2)])
    return tuple(contained), tuple(b for b in behaviours if b not in contained)


def hard_strategy(name: str, behaviours: tuple[str, ...], scene_weight: float) -> Strategy:
    """Weight 1 on ``behaviours``, none elsewhere, no change of mind; the scene still tilts
    the choice among ``behaviours`` (``scene_weight``, the style pair's)."""
    return Strategy(name, dict.fromkeys(behaviours, 1.0), scene_weight, change_of_mind=0.0)


def compat_benchmark_spec(
    task: str, distance: float, demos_per_operator: int = COMPAT_DEMOS
) -> DatasetSpec:
    """The four-operator benchmark of ``task`` at style distance ``distance`` (see the
    module docstring).

    Raises:
        KeyError: a task without a style pair.
        ValueError: a distance outside [0, 1] or with more than three decimals.
    """
    name = compat_benchmark_name(task, distance)  # validates the distance
    d = float(_canonical(distance))
    contained, others = base_behaviours(task)  # an unknown task fails here, naming the known
    pair = STYLE_PAIRS[task]
    scene_weight = pair.tables.strategies[pair.strategy].scene_weight
    in_base = hard_strategy("base_behaviours", contained, scene_weight)
    new_modes = hard_strategy("new_behaviours", others, scene_weight)
    style_a, style_b = pair.tables.styles[pair.style_a], pair.tables.styles[pair.style_b]
    better, worse = pair.tables.skills[pair.skill], pair.tables.skills["worse"]
    seed = pair.seed + SEED_OFFSET
    operators = (
        Operator("base", in_base, style_a, better, seed),
        Operator("conflict", in_base, interpolate_style(style_a, style_b, d), better, seed + 1),
        Operator("noisy", in_base, style_a, worse, seed + 2),
        Operator("newmode", new_modes, style_a, better, seed + 3),
    )
    return DatasetSpec(
        name=name,
        env_id=pair.env_id,
        operators=operators,
        demos_per_operator=demos_per_operator,
        style_distance=d,
        description=(
            f"Compatibility benchmark at style distance {d:g}: base ({pair.style_a}, "
            f"{pair.skill}, behaviours {', '.join(contained)}); conflict (the same behaviours, "
            f"{pair.style_a} moved {d:g} of the way to {pair.style_b}: {pair.conflict}); "
            f"noisy (base's style and behaviours, worse skill); newmode (base's style, "
            f"behaviours {', '.join(others)}). Ground truth: polymimic.compat.groundtruth."
        ),
    )


def parse_compat_name(name: str) -> DatasetSpec | None:
    """The spec a ``compat-d<d>-v1`` name denotes; None for any other name.

    Raises:
        ValueError: the name has the pattern but an unknown task or a bad distance.
    """
    match = NAME_PATTERN.fullmatch(name)
    if match is None:
        return None
    try:
        spec = compat_benchmark_spec(match["task"], float(match["d"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{name}: {exc.args[0]}") from None
    if spec.name != name:  # one name per dataset, as the style pairs
        raise ValueError(f"{name}: write the distance as {spec.name}")
    return spec


def ground_truth_labels(path: str | Path) -> dict[str, str]:
    """Every demo's ground-truth class, from its ``operator`` attribute.

    Returns:
        demo name -> one of ``CLASSES``.

    Raises:
        UserError: a demo without an ``operator`` attribute, or an operator that is not one
            of the benchmark's (the file is not a compat benchmark dataset).
    """
    with open_dataset(path) as f:
        operators = {name: demo_attrs(f["data"][name]).get("operator") for name in demo_names(f)}
    unknown = sorted({str(op) for op in operators.values() if op not in OPERATOR_CLASSES})
    if unknown:
        raise UserError(
            f"{path}: operators {unknown[:5]} are not the compat benchmark's "
            f"({', '.join(OPERATOR_CLASSES)}); ground truth exists only for files generated "
            "from polymimic/<task>/compat-d<d>-v1"
        )
    return {name: OPERATOR_CLASSES[str(op)] for name, op in operators.items()}
