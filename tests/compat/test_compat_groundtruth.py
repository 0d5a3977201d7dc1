"""Tests of the declared ground truth and its benchmark dataset (polymimic.compat.groundtruth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_files import random_demos, write_demo_file
from polymimic.compat.groundtruth import (
    CLASSES,
    OPERATOR_CLASSES,
    base_behaviours,
    compat_benchmark_name,
    compat_benchmark_spec,
    ground_truth_labels,
)
from polymimic.datasets.reader import demo_attrs, demo_names, open_dataset
from polymimic.datasets.registry import DATASETS, dataset_spec
from polymimic.datasets.style_pairs import STYLE_PAIRS, style_pair_spec
from polymimic.errors import UserError
from polymimic.operators import task_behaviours
from polymimic.operators.style_blend import BlendedStyle


def positive(strategy) -> set[str]:
    return {label for label, weight in strategy.preferences.items() if weight > 0}


@pytest.mark.parametrize("task", list(STYLE_PAIRS))
def test_four_operators_with_hard_disjoint_strategies(task: str) -> None:
    spec = compat_benchmark_spec(task, 1.0)
    base, conflict, noisy, newmode = spec.operators
    assert [op.operator_id for op in spec.operators] == list(OPERATOR_CLASSES)
    pair = STYLE_PAIRS[task]
    contained, others = base_behaviours(task)
    assert positive(base.strategy) == set(contained) and positive(newmode.strategy) == set(others)
    assert set(contained) | set(others) == set(task_behaviours(spec.env_id))
    assert not set(contained) & set(others) and contained and others
    assert conflict.strategy == noisy.strategy == base.strategy
    assert all(op.strategy.change_of_mind == 0 for op in spec.operators)
    styles = pair.tables.styles
    assert base.style == noisy.style == newmode.style == styles[pair.style_a]
    assert conflict.style == styles[pair.style_b]  # d = 1: the pair's full conflict
    assert noisy.skill.quality == "worse"
    assert {op.skill.quality for op in (base, conflict, newmode)} == {"better"}


def test_push_base_is_red_first_and_the_new_mode_green_first() -> None:
    assert base_behaviours("push") == (("red-left", "red-right"), ("green-left", "green-right"))


def test_style_distance_moves_the_conflict_operator_only() -> None:
    none, half = compat_benchmark_spec("push", 0.0), compat_benchmark_spec("push", 0.5)
    assert none.operators[1].style == none.operators[0].style  # d = 0: no conflict at all
    assert isinstance(half.operators[1].style, BlendedStyle)
    full = compat_benchmark_spec("push", 1.0)
    for k in (0, 2, 3):
        assert none.operators[k] == half.operators[k] == full.operators[k]
    assert [op.seed for op in none.operators] == [op.seed for op in full.operators]


def test_seeds_are_their_own() -> None:
    taken = {op.seed for spec in DATASETS.values() for op in spec.operators}
    taken |= {op.seed for task in STYLE_PAIRS for op in style_pair_spec(task, 1.0).operators}
    ours = [op.seed for task in STYLE_PAIRS for op in compat_benchmark_spec(task, 1.0).operators]
    assert len(set(ours)) == len(ours) and not set(ours) & taken


def test_names_resolve_through_the_registry() -> None:
    assert compat_benchmark_name("push", 0.5) == "polymimic/push/compat-d0.5-v1"
    spec = dataset_spec("polymimic/push/compat-d0.5-v1")
    assert spec.style_distance == 0.5 and spec.demos_per_operator == 50
    with pytest.raises(ValueError, match="compat-d0.5-v1"):
        dataset_spec("polymimic/push/compat-d0.50-v1")
    with pytest.raises(ValueError, match="no style pair"):
        dataset_spec("polymimic/juggle/compat-d1-v1")


def test_generated_labels_and_behaviours(benchmark_file: Path) -> None:
    labels = ground_truth_labels(benchmark_file)
    assert sorted(labels.values()) == sorted(c for c in CLASSES for _ in range(3))
    contained, others = base_behaviours("push")
    with open_dataset(benchmark_file) as f:
        attrs = {n: demo_attrs(f["data"][n]) for n in demo_names(f)}
    for name, a in attrs.items():
        assert labels[name] == OPERATOR_CLASSES[a["operator"]]
        intended = others if a["operator"] == "newmode" else contained
        assert a["intended_behaviour"] in intended and a["behaviour"] in (*intended, "other")
        assert a["style_distance"] == 1.0


def test_labels_of_a_file_that_is_not_the_benchmark(tmp_path: Path) -> None:
    path = write_demo_file(tmp_path / "x.hdf5", random_demos(count=2))
    with pytest.raises(UserError, match="compat benchmark"):
        ground_truth_labels(path)
