"""Tests for the same-skill style pairs (polymimic.datasets.style_pairs) and their distance."""

from __future__ import annotations

from pathlib import Path

import pytest

from polymimic.datasets.generate import generate_dataset
from polymimic.datasets.hdf5 import demo_names, read_episode
from polymimic.datasets.registry import DATASETS, dataset_spec
from polymimic.datasets.style_disagreement import action_disagreement
from polymimic.datasets.style_pairs import (
    STYLE_PAIRS,
    parse_style_pair_name,
    style_pair_name,
    style_pair_spec,
)
from polymimic.datasets.validate import validate_dataset
from polymimic.operators import TASK_OPERATORS
from polymimic.operators.style_blend import BlendedStyle

TASKS = list(STYLE_PAIRS)


def test_every_task_with_operators_has_a_pair() -> None:
    assert sorted(pair.env_id for pair in STYLE_PAIRS.values()) == sorted(TASK_OPERATORS)


@pytest.mark.parametrize("task", TASKS)
def test_pair_differs_in_style_only(task: str) -> None:
    """Same skill and strategy (the objects, not only the labels); other styles at d > 0."""
    full, none = style_pair_spec(task, 1.0), style_pair_spec(task, 0.0)
    a, b = full.operators
    assert [op.operator_id for op in full.operators] == ["a", "b"]
    assert a.skill == b.skill and a.skill.quality == "better"
    assert a.strategy == b.strategy
    assert a.style != b.style and a.style.name != b.style.name
    assert type(a.style) is type(b.style) is type(TASK_OPERATORS[full.env_id].expert_style)
    assert none.operators[1].style == a.style  # d = 0: one style twice
    # A sweep changes the style only: seeds and everything else do not depend on d.
    for d in (0.0, 0.5, 1.0):
        spec = style_pair_spec(task, d)
        assert [op.seed for op in spec.operators] == [a.seed, b.seed]
        assert spec.operators[0] == a and spec.style_distance == d


def test_seeds_are_distinct_from_every_named_dataset() -> None:
    named = {op.seed for spec in DATASETS.values() for op in spec.operators}
    pairs = [op.seed for task in TASKS for op in style_pair_spec(task, 1.0).operators]
    assert len(set(pairs)) == len(pairs) and not set(pairs) & named


def test_names_resolve_at_any_distance() -> None:
    assert style_pair_name("stack", 0.25) == "polymimic/stack/style-pair-d0.25-v1"
    spec = dataset_spec("polymimic/stack/style-pair-d0.25-v1")
    assert spec.style_distance == 0.25 and isinstance(spec.operators[1].style, BlendedStyle)
    assert dataset_spec("polymimic/push/style-pair-d1-v1").operators[1].style.name == (
        "retreat_fast"
    )
    assert parse_style_pair_name("polymimic/push/multi-operator-v1") is None
    for bad in ("d0.50", "d1.5", "d0.1234"):
        with pytest.raises(ValueError):
            dataset_spec(f"polymimic/push/style-pair-{bad}-v1")
    with pytest.raises(ValueError, match="no style pair"):
        dataset_spec("polymimic/lift/style-pair-d0.5-v1")
    assert "style-pair" not in " ".join(DATASETS)  # not MH-like populations: not registered


def test_generation_records_the_knob(tmp_path: Path) -> None:
    """In the generation parameters and in every demo's attrs, for the scorer to read."""
    spec = style_pair_spec("push", 0.5)
    path = generate_dataset(spec, tmp_path / "pair.hdf5", demos_per_operator=2)
    metadata = validate_dataset(path).metadata
    assert metadata["dataset_name"] == "polymimic/push/style-pair-d0.5-v1"
    assert metadata["generation"]["style_distance"] == 0.5
    demos = [read_episode(path, name).attrs for name in demo_names(path)]
    assert [d["operator"] for d in demos] == ["a", "a", "b", "b"]
    assert all(d["style_distance"] == 0.5 for d in demos)
    assert {d["style"] for d in demos} == {"direct_fast", "direct_fast~retreat_fast@0.5"}
    for d in demos[2:]:
        assert d["style_blend"] == 0.5 and d["style_categorical"] in ("direct_fast", "retreat_fast")
    assert "style_blend" not in demos[0]


@pytest.mark.parametrize("task,seeds", [("push", range(6)), ("stack", range(4))])
def test_disagreement_grows_with_the_distance(task: str, seeds: range) -> None:
    """Expert demos of a and b from the same states act more differently as d grows."""
    result = action_disagreement(task, (0.0, 0.5, 1.0), seeds)["distances"]
    means = [result[d]["mean"] for d in (0.0, 0.5, 1.0)]
    assert means[0] == 0.0  # identical demos
    assert means[0] < means[1] < means[2], means
    # A conflict, not a rounding difference (actions lie in [-1, 1]). Stack's bound is lower:
    # its styles differ in the route only, and since the yaw action its actions have five
    # components, two of them (yaw, gripper) the same in both styles (0.083 at d = 1, 4 seeds).
    assert means[2] > (0.08 if task == "stack" else 0.1)
