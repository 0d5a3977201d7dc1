"""What defines a named dataset: ``DatasetSpec``.

Its own module so that the named definitions (``datasets.named``) and the registry API
(``datasets.registry``, which re-exports it) can both import it without a cycle.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from polymimic.operators.base import Operator

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
        family: the operator family whose scripts the operators run
            (``polymimic.operators.OPERATOR_FAMILIES``): ``"scripted"`` or ``"planner"``.
        style_distance: a same-skill style pair's knob (``datasets.style_pairs``), stored
            in the file's generation parameters and in every demo's attrs; None otherwise.
    """

    name: str
    env_id: str
    operators: tuple[Operator, ...]
    demos_per_operator: int
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    family: str = "scripted"
    style_distance: float | None = None

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
