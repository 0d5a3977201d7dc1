"""Named, versioned datasets (Minari-style ids) defined in code.

A name fixes everything that decides the demos' bytes: the task and its kwargs, the
operator population (strategy, style, skill, seed of each), how many demos each operator
gives, and the episode seeds. Changing any of it means a new ``-vN``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from polymimic.operators.base import Operator
from polymimic.operators.push import PUSH_SKILLS, PUSH_STRATEGIES, PUSH_STYLES
from polymimic.registry import lookup

# Dataset episode seeds are 0..N-1; evaluation seeds start at 10_000 (eval.rollout), so a
# learner is never evaluated on an initial state it was trained on.
MAX_DATASET_SEEDS = 10_000
#: Environment variable naming the data home; unset, datasets go to ``DEFAULT_DATA_HOME``.
DATA_HOME_ENV = "POLYMIMIC_DATA_HOME"
DEFAULT_DATA_HOME = Path("~/.polymimic/datasets")
#: Where a named dataset's file lies below ``<data home>/<name>/`` (Minari's layout).
DATASET_FILE = Path("data") / "demos.hdf5"


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

    def episode_seed(self, operator_index: int, demo_index: int) -> int:
        """Seed of one demo, independent of how many demos per operator are generated.

        Demo-major (``demo_index * len(operators) + operator_index``) rather than
        operator-major: a generation with fewer demos per operator then holds exactly the
        first demos of each operator of the full dataset, so it can be checked against the
        full dataset's manifest, and every demo is reproducible on its own.
        """
        seed = demo_index * len(self.operators) + operator_index
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


def data_home() -> Path:
    """The directory named datasets are generated into and read from.

    ``$POLYMIMIC_DATA_HOME`` when set (and not empty), else ``~/.polymimic/datasets``.
    """
    configured = os.environ.get(DATA_HOME_ENV, "")
    return Path(configured or DEFAULT_DATA_HOME).expanduser()


def dataset_path(name: str, home: str | os.PathLike[str] | None = None) -> Path:
    """The file a named dataset lives in: ``<home>/<name>/data/demos.hdf5``.

    Each ``/``-separated part of the name becomes one directory (Minari's layout), so
    ``polymimic/push/multi-operator-v0`` lies in ``<home>/polymimic/push/multi-operator-v0/``.
    The name need not be registered; it must not be able to leave ``home``.

    Raises:
        ValueError: an empty name, an empty, ``.`` or ``..`` part, or a backslash.
    """
    parts = name.split("/")
    if not name or "\\" in name or any(part in ("", ".", "..") for part in parts):
        raise ValueError(
            f"dataset name {name!r} cannot be a path below the data home: use "
            "'/'-separated, non-empty parts without '.', '..' or backslashes"
        )
    root = Path(home).expanduser() if home is not None else data_home()
    return root.joinpath(*parts) / DATASET_FILE
