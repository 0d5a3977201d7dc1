"""Named, versioned datasets (Minari-style ids) defined in code.

A name fixes everything that decides the demos' bytes: the task and its kwargs, the
operator population (strategy, style, skill, seed of each), how many demos each operator
gives, and the episode seeds. Changing any of it means a new ``-vN``.

The definitions live in ``datasets.named`` (``DatasetSpec`` in ``datasets.spec``); this
module is the API: look a name up, the behaviour mix a population is expected to give, and
where a named dataset's file lies.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from polymimic.datasets.named import NAMED_DATASETS
from polymimic.datasets.spec import MAX_DATASET_SEEDS, DatasetSpec
from polymimic.datasets.style_pairs import parse_style_pair_name
from polymimic.operators import task_behaviours
from polymimic.registry import lookup

__all__ = [
    "DATASETS",
    "DATA_HOME_ENV",
    "DEFAULT_DATA_HOME",
    "DATASET_FILE",
    "MAX_DATASET_SEEDS",
    "DatasetSpec",
    "data_home",
    "dataset_path",
    "dataset_spec",
    "expected_behaviour_shares",
]

#: Environment variable naming the data home; unset, datasets go to ``DEFAULT_DATA_HOME``.
DATA_HOME_ENV = "POLYMIMIC_DATA_HOME"
DEFAULT_DATA_HOME = Path("~/.polymimic/datasets")
#: Where a named dataset's file lies below ``<data home>/<name>/`` (Minari's layout).
DATASET_FILE = Path("data") / "demos.hdf5"

#: Every named dataset by name; the definitions live in ``datasets.named``.
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in NAMED_DATASETS}


def dataset_spec(name: str) -> DatasetSpec:
    """Look a named dataset up, with an error listing the known names.

    Besides ``DATASETS``, a same-skill style pair at any style distance,
    ``polymimic/<task>/style-pair-d<d>-v1`` (``datasets.style_pairs``), and the
    compatibility benchmark, ``polymimic/<task>/compat-d<d>-v1`` (``compat.groundtruth``).
    """
    # Imported here: the benchmark's module builds on this package's style pairs.
    from polymimic.compat.groundtruth import parse_compat_name

    spec = parse_style_pair_name(name) or parse_compat_name(name)
    return spec if spec is not None else lookup(DATASETS, name, "dataset")


def expected_behaviour_shares(spec: DatasetSpec) -> dict[str, float]:
    """Each behaviour's expected share of the demos an operator *intends*, over the dataset.

    Every operator gives the same number of demos and draws each episode's behaviour from
    its strategy, so the share of behaviour ``b`` is the mean over operators of their
    normalised preference for it::

        share(b) = (1 / K) * sum_k  w_k(b) / sum_b' w_k(b')

    for K operators with strategy weights ``w_k``. The scene's pull on each choice
    (``Strategy.scene_weight`` and the task's ``scene_utilities``) is left out: over the
    spread of initial states it averages out only roughly, and
    ``polymimic.operators.scene.choice_information`` gives the scene-aware numbers. These
    are priors over *intended*
    behaviours: the env labels each demo by the behaviour it physically realised
    (``other`` for most failures), so a generated file's realised shares differ, most
    for the behaviours the worse operators prefer.

    Returns:
        Every behaviour of the task (``operators.task_behaviours``, in its order), with
        0.0 for those no operator prefers; the shares sum to 1.

    Raises:
        ValueError: a strategy prefers a label that is not one of the task's behaviours
            (it could never be realised as that label), or has no positive weight.
    """
    behaviours = task_behaviours(spec.env_id)
    totals: Counter[str] = Counter()
    for operator in spec.operators:
        preferences = operator.strategy.preferences
        unknown = sorted(set(preferences) - set(behaviours))
        weight = sum(preferences.values())
        if unknown or weight <= 0:
            problem = f"prefers {unknown}" if unknown else "has no positive weight"
            raise ValueError(
                f"{spec.name}: operator {operator.operator_id}'s strategy "
                f"{operator.strategy.name!r} {problem}; the behaviours of {spec.env_id} are "
                f"{', '.join(behaviours)}"
            )
        for label, w in preferences.items():
            totals[label] += w / weight / len(spec.operators)
    return {label: totals[label] for label in behaviours}


def data_home() -> Path:
    """The directory named datasets are generated into and read from.

    ``$POLYMIMIC_DATA_HOME`` when set (and not empty), else ``~/.polymimic/datasets``.
    """
    configured = os.environ.get(DATA_HOME_ENV, "")
    return Path(configured or DEFAULT_DATA_HOME).expanduser()


def dataset_path(name: str, home: str | os.PathLike[str] | None = None) -> Path:
    """The file a named dataset lives in: ``<home>/<name>/data/demos.hdf5``.

    Each ``/``-separated part of the name becomes one directory (Minari's layout), so
    ``polymimic/push/multi-operator-v1`` lies in ``<home>/polymimic/push/multi-operator-v1/``.
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
