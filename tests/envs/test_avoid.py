"""Avoid-specific geometry, contact and labelling checks.

Paths are driven through the real controller (full-speed steps of the desired position
towards a list of waypoints), so the labels and the collision flag are checked on the
physical tip path, not on hand-written positions.
"""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

from polymimic.envs.avoid import (
    CONTEXTS,
    FINISH_X,
    MAX_STEP,
    OBSTACLES,
    ROW_X,
    START_JITTER,
    TIP_HEIGHT,
    AvoidEnv,
    gap_index,
)

STILL = np.zeros(2, dtype=np.float32)
# Lanes (y) through each gap, left to right, and the x of the lane changes between rows.
LANES = ((0.08, -0.08), (0.15, 0.0, -0.15), (0.22, 0.075, -0.075, -0.22))
BANDS = (0.4925, 0.61)


def _make(context: int = 1, seed: int = 0) -> AvoidEnv:
    env = gym.make("polymimic/Avoid-v1").unwrapped
    env.reset(seed=seed, options={"context": context})
    return env


def _tip(env: AvoidEnv) -> np.ndarray:
    return env.data.site_xpos[env.model.site("tip").id].copy()


def _drive(env: AvoidEnv, waypoints: list[tuple[float, float]], max_steps: int = 300):
    """Steer the target through ``waypoints`` at full speed; the last step's info.

    Stops when the episode terminates; each waypoint is held until the tip is within 3 mm
    (or 40 steps pass, e.g. when an obstacle blocks the rod).
    """
    info: dict = {}
    steps = 0
    for goal in map(np.asarray, waypoints):
        for _ in range(40):
            action = np.clip((goal - env.target_pos[:2]) / MAX_STEP, -1.0, 1.0)
            _, _, terminated, _, info = env.step(action.astype(np.float32))
            steps += 1
            if terminated or steps >= max_steps:
                return info
            if np.linalg.norm(_tip(env)[:2] - goal) < 0.003:
                break
    return info


def _route(gaps: tuple[int, int, int]) -> list[tuple[float, float]]:
    lanes = [LANES[row][gap] for row, gap in enumerate(gaps)]
    return [
        (0.37, lanes[0]),
        (BANDS[0], lanes[0]),
        (BANDS[0], lanes[1]),
        (BANDS[1], lanes[1]),
        (BANDS[1], lanes[2]),
        (FINISH_X + 0.02, lanes[2]),
    ]


# --------------------------------------------------------------------- declared spec
def test_behaviours_are_every_gap_sequence_of_the_pyramid() -> None:
    expected = {f"{a}-{b}-{c}" for a, b, c in itertools.product(range(2), range(3), range(4))}
    assert set(AvoidEnv.behaviours) == expected and len(AvoidEnv.behaviours) == 24
    assert len(OBSTACLES) == 6 and [len(lanes) for lanes in LANES] == [2, 3, 4]


def test_gap_index_counts_obstacles_to_the_left() -> None:
    assert [gap_index(0, y) for y in (0.05, -0.05)] == [0, 1]
    assert [gap_index(1, y) for y in (0.1, 0.0, -0.1)] == [0, 1, 2]
    assert [gap_index(2, y) for y in (0.2, 0.07, -0.07, -0.2)] == [0, 1, 2, 3]


def test_context_table_matches_the_docstring() -> None:
    assert CONTEXTS == (
        (0.31, -0.06), (0.31, 0.0), (0.31, 0.06), (0.33, -0.06), (0.33, 0.0), (0.33, 0.06),
    )  # fmt: skip
    assert AvoidEnv.num_contexts == 6


@pytest.mark.parametrize("context", range(6))
def test_reset_places_the_arm_at_rest_at_the_context_start(context: int) -> None:
    env = gym.make("polymimic/Avoid-v1").unwrapped
    for seed in range(3):
        obs, _ = env.reset(seed=seed, options={"context": context})
        tip = _tip(env)
        assert np.abs(tip[:2] - CONTEXTS[context]).max() <= START_JITTER + 1e-6
        np.testing.assert_allclose(tip, env.target_pos, atol=1e-6)  # IK converged
        assert abs(tip[2] - TIP_HEIGHT) < 1e-6
        np.testing.assert_allclose(obs["tip_pos"], obs["tip_target"], atol=1e-6)
        for _ in range(10):  # at rest: holding still does not move the tip
            obs, *_ = env.step(STILL)
        assert np.linalg.norm(_tip(env) - tip) < 2e-4


# --------------------------------------------------------------------- labels
@pytest.mark.parametrize("gaps", [(0, 0, 0), (1, 2, 3), (0, 2, 0), (1, 1, 2), (0, 1, 3)])
def test_physical_path_through_gaps_gets_their_label(gaps: tuple[int, int, int]) -> None:
    env = _make(context=1)
    info = _drive(env, _route(gaps))
    assert info["success"] and not info["collided"]
    assert info["rows_crossed"] == 3
    assert info["behaviour"] == "-".join(map(str, gaps))
    assert _tip(env)[0] >= FINISH_X


def test_label_is_other_until_success_and_finish_line_is_the_threshold() -> None:
    env = _make(context=1)
    route = _route((1, 1, 1))
    info = _drive(env, [*route[:-1], (FINISH_X - 0.006, route[-1][1])])
    assert info["rows_crossed"] == 3 and not info["success"]
    assert info["behaviour"] == "other"
    _, reward, terminated, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    _, reward, terminated, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert (reward, terminated, info["success"], info["behaviour"]) == (1.0, True, True, "1-1-1")


def test_the_last_crossing_of_a_row_counts() -> None:
    env = _make(context=1)
    # Through row 1 on the left, back (-x) round the obstacle, then through on the right.
    _drive(env, [(0.37, 0.08), (BANDS[0], 0.08), (BANDS[0], 0.08)])
    assert env._task_state()[2] == 0  # row 1 recorded: left
    info = _drive(env, [(0.37, 0.08), (0.37, -0.08), *_route((1, 0, 2))])
    assert info["success"] and info["behaviour"] == "1-0-2"


# --------------------------------------------------------------------- touching
def test_touching_an_obstacle_is_failure_that_latches() -> None:
    env = _make(context=1)  # starts straight behind the row-1 obstacle at y = 0
    info = _drive(env, [(0.45, 0.0)], max_steps=25)
    assert info["collided"]
    # The obstacle is solid: the rod is stopped at its surface (radius 3 + 1 cm).
    assert _tip(env)[0] < ROW_X[0] - 0.04 + 0.005
    info = _drive(env, [(0.33, 0.0), *_route((0, 1, 1))])
    assert _tip(env)[0] >= FINISH_X and info["rows_crossed"] == 3
    assert info["collided"] and not info["success"] and info["behaviour"] == "other"


def test_a_step_that_sweeps_through_an_obstacle_counts_as_touching() -> None:
    # The tip ends the step clear of the obstacle, but its path during the step crossed it
    # (a too-fast pass): set the recorded previous tip on the obstacle's far side.
    env = _make(context=1)
    _drive(env, [(0.37, 0.08), (0.43, 0.08)])
    assert not env.step(STILL)[4]["collided"]
    state = env.get_state()
    task = -AvoidEnv.task_state_size
    state[task : task + 2] = (0.425, -0.08)  # previous tip: right of the row-1 obstacle
    env.reset_to(state)
    assert env.step(STILL)[4]["collided"]
    # Passing 5 mm outside the contact distance is not touching.
    state[task : task + 2] = (0.43, 0.045)
    env.reset_to(state)
    assert not env.step(STILL)[4]["collided"]
