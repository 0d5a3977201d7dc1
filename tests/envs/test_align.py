"""Align-specific geometry, success tolerances, contexts and behaviour labelling.

The box is teleported by editing a ``get_state()`` vector and restoring it with
``reset_to`` (the public replay API). The state starts with MuJoCo's integration state,
whose first entry is the time, so qpos entry ``i`` sits at index ``1 + i``; the task's
progress is the last ``task_state_size`` entries, whose entries 2..4 (the box pose the
last step ended in) are moved with the box so a teleport is not credited as a push.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from polymimic.envs.align import (
    BOX_HALF,
    CONTEXTS,
    INNER_HALF,
    MAX_STEP,
    POSITION_JITTER,
    REACH_RADIUS,
    START_X,
    START_Y,
    START_YAW,
    TARGET_XY,
    TARGET_YAW,
    TIP_HIGH,
    TIP_LOW,
    WALL_HEIGHT,
    YAW_JITTER,
    AlignEnv,
)
from polymimic.envs.objects import ROD_RADIUS, wrap_angle

STILL = np.zeros(3, dtype=np.float32)


def _make(context: int = 0, seed: int = 0) -> AlignEnv:
    env = gym.make("polymimic/Align-v1").unwrapped
    env.reset(seed=seed, options={"context": context})
    return env


def _place_box(env: AlignEnv, x: float, y: float, yaw: float) -> None:
    """Teleport the box (flat, at rest) to x, y, yaw."""
    state = env.get_state()
    joint = env.model.joint("box")
    start = 1 + joint.qposadr[0]
    state[start : start + 7] = (x, y, 0.0, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
    dof = 1 + env.model.nq + joint.dofadr[0]
    state[dof : dof + 6] = 0.0
    state[-env.task_state_size + 2 : -env.task_state_size + 5] = (x, y, yaw)
    obs = env.reset_to(state)
    np.testing.assert_allclose(obs["box"][:2], (x, y), atol=1e-6)


def _tip(env: AlignEnv) -> np.ndarray:
    return env.data.site_xpos[env.model.site("tip").id].copy()


def _go(env: AlignEnv, goal: np.ndarray, settle: int = 6) -> dict:
    """Move the desired tip straight to ``goal`` at full speed, then let it settle."""
    info: dict = {}
    for _ in range(200):
        delta = goal - env.target_pos
        if np.abs(delta).max() < 1e-9:
            break
        _, _, _, _, info = env.step(np.clip(delta / MAX_STEP, -1.0, 1.0).astype(np.float32))
    for _ in range(settle):
        _, _, _, _, info = env.step(STILL)
    return info


def _push(env: AlignEnv, direction: np.ndarray, distance: float, speed: float = 0.008):
    """Move the desired tip ``distance`` along ``direction`` (xy); stop on success."""
    action = np.zeros(3, dtype=np.float32)
    action[:2] = direction * speed / MAX_STEP
    infos = []
    for _ in range(int(math.ceil(distance / speed))):
        _, _, terminated, _, info = env.step(action)
        infos.append(info)
        if terminated:
            break
    return infos


def _target_frame(env: AlignEnv) -> tuple[np.ndarray, float, np.ndarray]:
    """Target centre, yaw and long axis."""
    tx, ty, yaw = env.target_pose()
    return np.array([tx, ty]), yaw, np.array([math.cos(yaw), math.sin(yaw)])


# --------------------------------------------------------------------- contexts
def test_context_table_is_the_documented_grid() -> None:
    assert AlignEnv.num_contexts == len(CONTEXTS) == 8
    for i, x in enumerate(START_X):
        for j, yaw in enumerate(START_YAW):
            for k, target_yaw in enumerate(TARGET_YAW):
                assert CONTEXTS[4 * i + 2 * j + k] == (x, START_Y, yaw, *TARGET_XY, target_yaw)
    assert START_X == (0.50, 0.62) and START_Y == -0.14 and TARGET_XY == (0.56, 0.14)
    np.testing.assert_allclose(np.degrees(START_YAW), (-30.0, 30.0))
    np.testing.assert_allclose(np.degrees(TARGET_YAW), (0.0, 90.0))


@pytest.mark.parametrize("context", range(8))
def test_reset_places_box_and_target_near_the_context(context: int) -> None:
    x, y, yaw, tx, ty, target_yaw = CONTEXTS[context]
    env = _make(context)
    for seed in range(3):
        env.reset(seed=seed, options={"context": context})
        bx, by, byaw = env.box_pose()
        px, py, pyaw = env.target_pose()
        assert abs(bx - x) <= POSITION_JITTER and abs(by - y) <= POSITION_JITTER
        assert abs(wrap_angle(byaw - yaw)) <= YAW_JITTER + 1e-9
        assert abs(px - tx) <= POSITION_JITTER and abs(py - ty) <= POSITION_JITTER
        assert abs(wrap_angle(pyaw - target_yaw)) <= YAW_JITTER + 1e-9
        # The observation carries the same poses, yaw doubled for the half-turn symmetry.
        obs = env._get_obs()
        np.testing.assert_allclose(obs["box"], (bx, by, math.sin(2 * byaw), math.cos(2 * byaw)),
                                   atol=1e-6)
        np.testing.assert_allclose(obs["target"][:2], (px, py), atol=1e-6)


def test_box_observation_is_invariant_to_a_half_turn() -> None:
    env = _make()
    _place_box(env, 0.5, -0.1, 0.3)
    a = env._get_obs()["box"]
    _place_box(env, 0.5, -0.1, 0.3 + math.pi)
    np.testing.assert_allclose(env._get_obs()["box"], a, atol=1e-6)


# --------------------------------------------------------------------- geometry, actions
def test_box_is_light_open_and_sized_as_documented() -> None:
    env = _make()
    body = env.model.body("box")
    assert env.model.body_subtreemass[body.id] == pytest.approx(0.3)
    walls = [env.model.geom(f"wall_{s}") for s in ("px", "nx", "py", "ny")]
    assert all(float(g.size[2]) * 2 == pytest.approx(WALL_HEIGHT) for g in walls)
    # The walls' outer faces span the footprint; nothing else (no lid, no floor).
    outer_x = max(float(g.pos[0] + g.size[0]) for g in walls)
    outer_y = max(float(g.pos[1] + g.size[1]) for g in walls)
    assert (outer_x, outer_y) == pytest.approx(BOX_HALF)
    assert len([g for g in range(env.model.ngeom) if env.model.geom_bodyid[g] == body.id]) == 4


def test_action_moves_the_desired_tip_in_3d_and_clips_it() -> None:
    env = _make()
    env.step(np.array([0.0, 0.0, -1.0], dtype=np.float32))
    np.testing.assert_allclose(env.target_pos, (0.35, 0.0, TIP_HIGH - MAX_STEP))
    for _ in range(10):
        env.step(np.array([0.0, 0.0, -1.0], dtype=np.float32))
    assert env.target_pos[2] == TIP_LOW
    for _ in range(60):  # towards the far corner: clipped to the arm's reach
        env.step(np.array([1.0, 1.0, 1.0], dtype=np.float32))
    assert math.hypot(*env.target_pos[:2]) == pytest.approx(REACH_RADIUS)
    assert env.target_pos[2] == TIP_HIGH
    tip = _tip(env)
    assert np.linalg.norm(tip - env.target_pos) < 0.005  # the arm still tracks it there


def test_rod_passes_over_the_walls_high_and_pushes_them_low() -> None:
    env = _make()
    _place_box(env, 0.55, 0.0, 0.0)
    _go(env, np.array([0.40, 0.0, TIP_HIGH]))
    _go(env, np.array([0.70, 0.0, TIP_HIGH]))  # straight over the box
    assert env.box_pose()[:2] == pytest.approx((0.55, 0.0), abs=1e-4)
    _go(env, np.array([0.70, 0.0, TIP_LOW]))
    _go(env, np.array([0.60, 0.0, TIP_LOW]))  # back through the +x wall at table height
    assert env.box_pose()[0] < 0.55 - 0.02


def test_rod_side_is_read_in_the_box_frame() -> None:
    env = _make()
    _go(env, np.array([0.50, 0.05, TIP_LOW]))
    tip = _tip(env)[:2]
    yaw = 0.7
    axes = np.array([[math.cos(yaw), math.sin(yaw)], [-math.sin(yaw), math.cos(yaw)]])

    def side_with_tip_at(local: tuple[float, float]) -> int:
        centre = tip - axes.T @ np.array(local)
        _place_box(env, centre[0], centre[1], yaw)
        return env.rod_side()

    inner = np.array(INNER_HALF) - ROD_RADIUS  # rod centre touching an inner face
    outer = np.array(BOX_HALF) + ROD_RADIUS  # rod centre touching an outer face
    assert side_with_tip_at((0.0, 0.0)) == 0
    assert side_with_tip_at((inner[0] - 0.001, 0.0)) == 0
    assert side_with_tip_at((0.0, -inner[1] + 0.001)) == 0
    assert side_with_tip_at((inner[0] - 0.001, inner[1] - 0.001)) == 0  # in a corner
    assert side_with_tip_at((0.0, outer[1] + 0.001)) == 1
    assert side_with_tip_at((-outer[0] - 0.001, 0.0)) == 1
    assert side_with_tip_at((0.20, 0.0)) == 1
    # The yaw matters: 4.5 cm off the centre is outside across the box, inside along it.
    _place_box(env, tip[0], tip[1] - 0.045, 0.0)
    assert env.rod_side() == 1
    _place_box(env, tip[0], tip[1] - 0.045, math.pi / 2)
    assert env.rod_side() == 0
    # Above the walls the rod cannot push: no side.
    _go(env, np.array([*tip, WALL_HEIGHT + ROD_RADIUS + 0.002]))
    _place_box(env, *tip, 0.3)
    assert env.rod_side() == -1


# --------------------------------------------------------------------- success
@pytest.mark.parametrize(
    ("offset", "yaw_offset", "success"),
    [
        (0.019, 0.0, True),
        (0.021, 0.0, False),
        (0.0, math.radians(9.5), True),
        (0.0, math.radians(10.5), False),
        (0.0, math.pi + math.radians(5.0), True),  # the box looks the same after a half turn
        (0.0, math.pi / 2, False),
        (0.015, math.radians(-8.0), True),
    ],
)
def test_success_tolerances(offset: float, yaw_offset: float, success: bool) -> None:
    env = _make()
    centre, yaw, _ = _target_frame(env)
    direction = np.array([math.cos(1.0), math.sin(1.0)])
    box = centre + offset * direction
    _place_box(env, box[0], box[1], yaw + yaw_offset)
    _, reward, terminated, _, info = env.step(STILL)
    assert (info["success"], terminated, reward) == (success, success, float(success))
    assert info["position_error"] == pytest.approx(offset, abs=1e-3)
    assert info["behaviour"] == "other"  # nothing pushed the box: no behaviour


# --------------------------------------------------------------------- labels
def test_behaviours_are_inside_and_outside() -> None:
    assert AlignEnv.behaviours == ("inside", "outside")


def _set_up_push(env: AlignEnv, start_offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Put the box ``start_offset`` behind the target along its long axis; return
    (box centre, long axis)."""
    centre, yaw, axis = _target_frame(env)
    box = centre - start_offset * axis
    _place_box(env, box[0], box[1], yaw)
    return box, axis


def test_pushing_from_inside_is_labelled_inside() -> None:
    env = _make(context=0)
    box, axis = _set_up_push(env, 0.07)
    _go(env, np.array([*box, TIP_HIGH]))
    info = _go(env, np.array([*box, TIP_LOW]))  # down into the cavity, touching nothing
    assert info["inside_push"] == info["outside_push"] == 0.0
    infos = _push(env, axis, 0.20)
    assert infos[-1]["success"] and infos[-1]["behaviour"] == "inside"
    assert infos[-1]["outside_push"] == 0.0 and infos[-1]["inside_push"] > 0.04
    assert all(i["behaviour"] == "other" for i in infos[:-1])  # final only on success


def test_pushing_from_outside_is_labelled_outside() -> None:
    env = _make(context=1)
    box, axis = _set_up_push(env, 0.07)
    start = box - (BOX_HALF[0] + ROD_RADIUS + 0.02) * axis
    _go(env, np.array([*start, TIP_HIGH]))
    _go(env, np.array([*start, TIP_LOW]))
    infos = _push(env, axis, 0.20)
    assert infos[-1]["success"] and infos[-1]["behaviour"] == "outside"
    assert infos[-1]["inside_push"] == 0.0 and infos[-1]["outside_push"] > 0.04


def test_half_inside_half_outside_is_other() -> None:
    env = _make(context=0)
    box, axis = _set_up_push(env, 0.07)
    _go(env, np.array([*box, TIP_HIGH]))
    _go(env, np.array([*box, TIP_LOW]))
    _push(env, axis, (INNER_HALF[0] - ROD_RADIUS) + 0.035)  # ~3.5 cm of box travel inside
    # Lift out over the walls and come down behind the back wall, outside.
    behind = np.array(env.box_pose()[:2]) - (BOX_HALF[0] + ROD_RADIUS + 0.02) * axis
    _go(env, np.array([*_tip(env)[:2], TIP_HIGH]))
    _go(env, np.array([*behind, TIP_HIGH]))
    _go(env, np.array([*behind, TIP_LOW]))
    infos = _push(env, axis, 0.10)
    last = infos[-1]
    assert last["success"]
    share = last["inside_push"] / (last["inside_push"] + last["outside_push"])
    assert 0.2 < share < 0.8, share
    assert last["behaviour"] == "other"
