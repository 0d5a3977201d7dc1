"""Tests for the named datasets (polymimic.datasets.named) and ``expected_behaviour_shares``.

Every registered named dataset is checked: a robomimic-MH-like population (2 better, 2 okay,
2 worse), the operator pairs the compatibility scorer is evaluated on, every behaviour of
its task with a sizeable expected share, and a real 1-demo-per-operator generation.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from pathlib import Path

import gymnasium as gym
import pytest

from polymimic.datasets.generate import generate_dataset
from polymimic.datasets.hdf5 import demo_names, read_episode
from polymimic.datasets.registry import DATASETS, DatasetSpec, expected_behaviour_shares
from polymimic.operators import (
    OPERATOR_FAMILIES,
    TASK_OPERATORS,
    Operator,
    Strategy,
    task_behaviours,
)

SPECS = list(DATASETS.values())
NAMES = [spec.name for spec in SPECS]
PUSH = DATASETS["polymimic/push/multi-operator-v1"]
# A behaviour's expected demo count over the full dataset must reach this ("sizeable").
MIN_EXPECTED_DEMOS = 20
# Sort6 and Stack have the suite's longest episodes (~1-1.5 s per demo on one core): their
# generation test records one demo of the first two operators only, keeping this module
# at ~10 s. Every operator of every dataset is still checked for labels and shares above,
# and generated in full by `polymimic data generate` / scripts/update_manifests.py.
FIRST_TWO_OPERATORS_ONLY = {
    "polymimic/sort6/multi-operator-v1",
    "polymimic/stack/multi-operator-v1",
}


def test_every_task_with_operators_has_one_multi_operator_dataset() -> None:
    scripted = [spec for spec in SPECS if spec.family == "scripted"]
    assert sorted(spec.env_id for spec in scripted) == sorted(TASK_OPERATORS)
    for spec in scripted:
        task = spec.env_id.removeprefix("polymimic/").removesuffix("-v1").lower()
        assert spec.name == f"polymimic/{task}/multi-operator-v1"


@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_population_is_robomimic_mh_like(spec: DatasetSpec) -> None:
    assert spec.env_id in gym.registry
    assert len(spec.operators) >= 6
    qualities = Counter(op.skill.quality for op in spec.operators)
    assert sorted(qualities) == ["better", "okay", "worse"]
    assert len(set(qualities.values())) == 1, f"unbalanced qualities {dict(qualities)}"
    ids = [op.operator_id for op in spec.operators]
    assert len(set(ids)) == len(ids)
    assert spec.demos_per_operator >= 50
    # The last demo's seed must stay below the evaluation seeds.
    spec.episode_seed(len(spec.operators) - 1, spec.demos_per_operator - 1)


@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_population_has_a_style_conflict_and_a_behaviour_difference(spec: DatasetSpec) -> None:
    """Same strategy, other style: what the compatibility scorer must flag. Same style,
    other strategy: a difference of behaviour, which it must not."""
    pairs = [(a.labels(), b.labels()) for a, b in itertools.combinations(spec.operators, 2)]
    assert any(a["strategy"] == b["strategy"] and a["style"] != b["style"] for a, b in pairs)
    assert any(a["style"] == b["style"] and a["strategy"] != b["strategy"] for a, b in pairs)


def test_operator_seeds_are_distinct_across_all_datasets() -> None:
    """Distinct across the scripted datasets; another family's twin reuses its twin's."""
    seeds = [op.seed for spec in SPECS if spec.family == "scripted" for op in spec.operators]
    assert len(set(seeds)) == len(seeds), Counter(seeds).most_common(3)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.family != "scripted"],
                         ids=[s.name for s in SPECS if s.family != "scripted"])  # fmt: skip
def test_another_family_dataset_is_its_scripted_twin_but_for_the_family(spec: DatasetSpec) -> None:
    """Same task, operators (labels and seeds) and demo count: a paired comparison."""
    task = spec.name.split("/")[1]
    assert spec.name == f"polymimic/{task}/{spec.family}-v1"
    assert spec.family in OPERATOR_FAMILIES and spec.env_id in OPERATOR_FAMILIES[spec.family]
    twin = DATASETS[f"polymimic/{task}/multi-operator-v1"]
    assert (spec.env_id, spec.env_kwargs, spec.demos_per_operator) == (
        twin.env_id, twin.env_kwargs, twin.demos_per_operator,
    )  # fmt: skip
    rows = [(op.labels(), op.seed, op.strategy, op.skill) for op in spec.operators]
    assert rows == [(op.labels(), op.seed, op.strategy, op.skill) for op in twin.operators]
    pairs = zip(spec.operators, twin.operators, strict=True)
    assert all(type(a.style) is not type(b.style) for a, b in pairs)


def test_push_population_is_unchanged() -> None:
    """The committed Push manifest was generated from exactly this population."""
    rows = [(*op.labels().values(), op.seed) for op in PUSH.operators]
    assert rows == [
        ("op1", "red_first", "direct_fast", "better", 101),
        ("op2", "green_first", "curved", "better", 102),
        ("op3", "uniform", "retreat_slow", "okay", 103),
        ("op4", "left_first", "direct_fast", "okay", 104),
        ("op5", "uniform", "curved", "worse", 105),
        ("op6", "right_first", "retreat_slow", "worse", 106),
    ]
    assert (PUSH.env_id, PUSH.env_kwargs, PUSH.demos_per_operator) == ("polymimic/Push-v1", {}, 50)


# ------------------------------------------------------------------ expected shares


def test_push_shares_are_a_quarter_each() -> None:
    shares = expected_behaviour_shares(PUSH)
    assert shares == pytest.approx({b: 0.25 for b in task_behaviours(PUSH.env_id)})


def test_shares_average_each_operators_normalised_preferences() -> None:
    # red_first (weights 1, 1, 0.25, 0.25: 0.4 / 0.4 / 0.1 / 0.1) and uniform (1/4 each).
    spec = dataclasses.replace(PUSH, operators=(PUSH.operators[0], PUSH.operators[2]))
    assert expected_behaviour_shares(spec) == pytest.approx(
        {"red-left": 0.325, "red-right": 0.325, "green-left": 0.175, "green-right": 0.175}
    )
    # Weights are normalised per operator: scaling one strategy's weights changes nothing.
    heavy = dataclasses.replace(
        PUSH.operators[0], strategy=Strategy("red_first", {"red-left": 5.0, "red-right": 5.0})
    )
    spec = dataclasses.replace(spec, operators=(heavy, PUSH.operators[2]))
    assert expected_behaviour_shares(spec)["red-left"] == pytest.approx(0.375)  # 1/2 and 1/4


def test_shares_reject_a_strategy_preferring_no_behaviour_of_the_task() -> None:
    typo = Operator("x", Strategy("typo", {"red-lft": 1.0}), None, PUSH.operators[0].skill, 1)
    with pytest.raises(ValueError, match="red-lft"):
        expected_behaviour_shares(dataclasses.replace(PUSH, operators=(typo,)))


@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_every_behaviour_has_a_sizeable_expected_share(spec: DatasetSpec) -> None:
    shares = expected_behaviour_shares(spec)
    assert list(shares) == list(task_behaviours(spec.env_id))
    assert sum(shares.values()) == pytest.approx(1.0)
    total = len(spec.operators) * spec.demos_per_operator
    rarest = min(shares, key=shares.__getitem__)
    assert shares[rarest] * total >= MIN_EXPECTED_DEMOS, f"{rarest}: {shares[rarest]:.1%}"
    assert shares[rarest] >= 0.5 / len(shares), f"{rarest} is under half the uniform share"
    # The description states the mix; it must be the one the strategies give.
    for share in {round(100 * s, 1) for s in shares.values()}:
        assert f"{share:.1f}%" in spec.description or f"{share:g}%" in spec.description


# ------------------------------------------------------------------ generation


@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_one_demo_per_operator_generates_with_its_labels(spec: DatasetSpec, tmp_path: Path) -> None:
    if spec.name in FIRST_TWO_OPERATORS_ONLY:
        spec = dataclasses.replace(spec, operators=spec.operators[:2])
    path = generate_dataset(spec, tmp_path / "demos.hdf5", demos_per_operator=1, workers=1)
    names = demo_names(path)
    assert len(names) == len(spec.operators)
    labels = set(task_behaviours(spec.env_id)) | {"other"}
    for k, (name, operator) in enumerate(zip(names, spec.operators, strict=True)):
        attrs = read_episode(path, name).attrs
        assert {key: attrs[key] for key in operator.labels()} == operator.labels()
        assert attrs["seed"] == spec.episode_seed(k, 0)
        assert attrs["intended_behaviour"] in operator.strategy.preferences
        assert attrs["behaviour"] in labels
        # A change of mind is recorded: the first intention, and the step it changed.
        assert attrs["original_intent"] in operator.strategy.preferences
        switched = attrs["original_intent"] != attrs["intended_behaviour"]
        assert (attrs["switch_step"] >= 0) == switched
        assert attrs["submovements"] >= 1
