"""The second operator family (CHOMP planner, issue 13): the optimiser and its operators.

The optimiser's paths keep clear of obstacles, stay smooth and in the homotopy class they
were seeded in; the family's experts realise every behaviour of Push and Avoid on request
through the same motor model, deterministically per seed. The named ``planner-v1``
datasets are generated in ``tests/datasets/test_named_datasets.py`` with the others.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from polymimic.envs.avoid import AvoidEnv
from polymimic.operators import (
    OPERATOR_FAMILIES,
    PLANNER_OPERATORS,
    expert_operator,
    operator_family,
    record_episode,
    task_behaviours,
)
from polymimic.operators.avoid import parse_behaviour
from polymimic.operators.planner import FreeSpace, PathFollower, optimise_path, polyline
from polymimic.operators.planner_avoid import (
    AVOID_SPACE,
    MIN_CLEARANCE,
    PLANNED_AVOID_STYLES,
    plan_avoid_path,
    realised_gaps,
)

PUSH, AVOID = "polymimic/Push-v1", "polymimic/Avoid-v1"


def turning_angles(path: np.ndarray) -> np.ndarray:
    """Angle (rad) between consecutive segments of a polyline."""
    seg = np.diff(path, axis=0)
    cos = np.sum(seg[1:] * seg[:-1], axis=1) / (
        np.linalg.norm(seg[1:], axis=1) * np.linalg.norm(seg[:-1], axis=1)
    )
    return np.arccos(np.clip(cos, -1.0, 1.0))


def test_optimiser_pushes_a_straight_path_out_of_a_disc_and_smooths_it() -> None:
    space = FreeSpace(np.array([[0.5, 0.01]]), np.array([0.05]), np.array([0.0, -0.5]),
                      np.array([1.0, 0.5]))  # fmt: skip
    initial = polyline(np.array([[0.3, 0.0], [0.7, 0.0]]), 40)
    assert space.clearance(initial) < -0.03  # straight through the disc
    path = optimise_path(initial, space, margin=0.02)
    assert np.array_equal(path[[0, -1]], initial[[0, -1]])  # the ends stay fixed
    assert space.clearance(path) > 0.005
    assert path[:, 1].min() < -0.04  # round the side the disc leaves more room on
    assert np.degrees(turning_angles(path)).max() < 15.0


@pytest.mark.parametrize("style", sorted(PLANNED_AVOID_STYLES))
def test_avoid_plans_take_every_requested_gap_sequence_with_clearance(style: str) -> None:
    rng = np.random.default_rng(0)
    for behaviour in AvoidEnv.behaviours:
        gaps = parse_behaviour(behaviour)
        start = np.array([0.32, rng.uniform(-0.07, 0.07)])
        path = plan_avoid_path(start, gaps, PLANNED_AVOID_STYLES[style], rng)
        assert realised_gaps(path) == gaps, behaviour
        assert AVOID_SPACE.clearance(path) >= MIN_CLEARANCE, behaviour
        # (The polyline may turn sharply where it wraps round an obstacle's margin; the
        # hand's 3 cm via-points and minimum-jerk submovements round that off: see
        # test_planner_motion_has_no_step_change_of_velocity.)


def test_follower_hands_over_via_points_in_order_and_ends_at_the_goal() -> None:
    path = polyline(np.array([[0.0, 0.0], [0.3, 0.0]]), 31)
    follower = PathFollower(path, spacing=0.03, lookahead=0.02)
    assert np.allclose(follower.aim(np.zeros(2)), [0.03, 0.0])
    assert np.allclose(follower.aim(np.array([0.015, 0.0])), [0.06, 0.0])
    for x in np.linspace(0.015, 0.3, 20):  # the hand walks along: the aim stays ahead
        aim = follower.aim(np.array([x, 0.0]))
        assert aim[0] >= min(x, 0.3) - 1e-9
    assert follower.last and np.allclose(aim, follower.goal) and np.allclose(aim, [0.3, 0.0])


def test_families_are_registered_and_unknown_ones_are_refused() -> None:
    assert sorted(OPERATOR_FAMILIES) == ["planner", "scripted"]
    assert sorted(PLANNER_OPERATORS) == [AVOID, PUSH]
    planner, scripted = operator_family(PUSH, "planner"), operator_family(PUSH)
    assert planner.script_factory is not scripted.script_factory
    assert planner.motion == scripted.motion  # the same motor model and action scaling
    with pytest.raises(KeyError, match="planner"):
        operator_family("polymimic/Stack-v1", "planner")
    with pytest.raises(KeyError, match="operator family"):
        operator_family(PUSH, "rrt")


@pytest.mark.parametrize("env_id", [PUSH, AVOID])
def test_planner_expert_realises_every_behaviour(env_id: str) -> None:
    """Each behaviour requested once (Push: twice, from two seeds): all realised."""
    env = gym.make(env_id)
    behaviours = task_behaviours(env_id)
    requests = behaviours * (2 if len(behaviours) < 8 else 1)
    failures = []
    for seed, behaviour in enumerate(requests):
        operator = expert_operator(env_id, (behaviour,), family="planner")
        attrs = record_episode(env, operator, seed, family="planner").attrs
        if not attrs["success"] or attrs["behaviour"] != behaviour:
            failures.append((seed, behaviour, attrs["behaviour"]))
    assert not failures


def test_planner_motion_has_no_step_change_of_velocity() -> None:
    """The motor model turns the path into minimum-jerk submovements: Avoid's actions (the
    desired position's velocity) change by at most 0.2 of full scale per step."""
    env = gym.make(AVOID)
    for seed, behaviour in enumerate(("0-0-0", "0-0-3", "1-0-3", "0-0-2", "1-2-0")):
        operator = expert_operator(AVOID, (behaviour,), family="planner")
        actions = record_episode(env, operator, seed, family="planner").actions
        assert np.abs(np.diff(actions, axis=0)).max() < 0.2


@pytest.mark.parametrize("env_id", [PUSH, AVOID])
def test_planner_episodes_are_deterministic_and_vary_with_the_seed(env_id: str) -> None:
    env = gym.make(env_id)
    behaviour = task_behaviours(env_id)[0]
    operator = expert_operator(env_id, (behaviour,), family="planner")
    first = record_episode(env, operator, 7, family="planner")
    again = record_episode(env, operator, 7, family="planner")
    other = record_episode(env, operator, 8, family="planner")
    assert np.array_equal(first.actions, again.actions)
    assert len(first.actions) != len(other.actions) or not np.allclose(first.actions, other.actions)
