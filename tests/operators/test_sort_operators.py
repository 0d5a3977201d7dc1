"""The Sort operators' pushing judgement: extrapolating a seen block over the reaction
delay, steering through the middle of a gap, and pushing straight where a steer is out of
reach."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from polymimic.envs.sort import MAX_STEP, WORKSPACE_HIGH, WORKSPACE_LOW
from polymimic.operators import Operator, Strategy
from polymimic.operators.motor import Hand
from polymimic.operators.pushing import PRE_PUSH_GAP
from polymimic.operators.sort import SORT_SKILLS, SORT_STYLES, SortScript

DT = 0.05


def _script(quality: str = "better", prediction: float | None = None) -> SortScript:
    skill = SORT_SKILLS[quality]
    if prediction is not None:
        skill = dataclasses.replace(skill, motor=dataclasses.replace(skill.motor, prediction=prediction))
    operator = Operator(quality, Strategy("uniform", {"RB": 1.0}), SORT_STYLES["direct_fast"], skill, seed=0)
    hand = Hand(skill.motor, np.random.default_rng(0), 2, MAX_STEP, DT)
    return SortScript(operator, "RB", np.random.default_rng(0), hand)


def _pose(x: float, y: float, yaw: float) -> np.ndarray:
    return np.array([x, y, math.sin(4 * yaw), math.cos(4 * yaw)])


def test_a_turning_block_is_extrapolated_over_the_skills_share_of_the_delay() -> None:
    script = _script(prediction=0.5)
    delay = script.hand.reveal_delay
    assert delay == 4  # the better tier's 0.2 s at 20 Hz
    yaw_step, drift = math.radians(1.0), 0.002  # per step, as seen
    predicted = None
    for k in range(40):  # the smoothed rate converges to the seen rate
        predicted = script._predicted(_pose(0.5 + drift * k, 0.1 * k / 40, yaw_step * k))
    seen_yaw = yaw_step * 39
    predicted_yaw = math.atan2(predicted[2], predicted[3]) / 4
    assert predicted_yaw == pytest.approx(seen_yaw + 0.5 * delay * yaw_step, abs=1e-6)
    assert predicted[0] == pytest.approx(0.5 + drift * 39 + 0.5 * delay * drift, abs=1e-9)
    assert predicted[1] == pytest.approx(0.1 * 39 / 40)  # along the push: as seen


def test_an_operator_without_a_forward_model_steers_from_what_it_saw() -> None:
    script = _script(prediction=0.0)
    for k in range(10):
        pose = _pose(0.5 + 0.002 * k, 0.0, math.radians(1.0) * k)
        np.testing.assert_allclose(script._predicted(pose), pose, atol=1e-12)


def test_the_tiers_forward_models_fall_with_skill() -> None:
    predictions = [SORT_SKILLS[q].motor.prediction for q in ("better", "okay", "worse")]
    assert predictions == sorted(predictions, reverse=True) and predictions[-1] < predictions[0]


def test_a_jump_is_a_knock_not_motion_to_extrapolate() -> None:
    script = _script(prediction=1.0)
    script._predicted(_pose(0.5, 0.0, 0.0))
    knocked = _pose(0.56, 0.0, 0.3)  # 6 cm in one step
    np.testing.assert_allclose(script._predicted(knocked), knocked, atol=1e-12)


def test_the_row_runs_through_the_middle_of_the_gap_ahead() -> None:
    script = _script()
    blocks = np.array([
        [0.50, -0.07],  # the block to push (red: towards +y)
        [0.43, 0.075],  # the gap ahead: x 0.43 ...
        [0.59, 0.065],  # ... to 0.59
        [0.45, -0.07],  # beside it, not ahead
        [0.52, 0.25],  # already in the zone: not in the way
    ])  # fmt: skip
    script.current = 0
    assert script._gap_centre(blocks, side=1.0) == pytest.approx(0.51)
    # Nothing ahead on one side: the block's own x.
    assert script._gap_centre(blocks[[0, 1, 3]], side=1.0) == pytest.approx(0.50)


def test_a_block_at_the_reach_edge_is_pushed_straight_rather_than_steered() -> None:
    script = _script()
    script.row_x = 0.60  # far inside: the steer would want the rod beyond the edge
    edge = float(WORKSPACE_HIGH[0]) + 0.005
    direction = script._push_direction(_pose(edge, 0.0, 0.0), side=1.0)
    behind = edge - (script.push.offset + PRE_PUSH_GAP) * direction[0]
    assert behind <= WORKSPACE_HIGH[0] + 1e-9 or direction[0] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(direction, [0.0, 1.0], atol=1e-9)
    # Away from the edges the same drift is steered back towards the row.
    inside = script._push_direction(_pose(0.66, 0.0, 0.0), side=1.0)
    assert inside[0] < -0.1 and inside[1] > 0
    assert WORKSPACE_LOW[0] < 0.66 < WORKSPACE_HIGH[0]
