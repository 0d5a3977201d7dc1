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
    INNER_HALF,
    MAX_STEP,
    MIN_TARGET_DISTANCE,
    REACH_RADIUS,
    TIP_HIGH,
    TIP_LOW,
    WALL_HEIGHT,
    AlignEnv,
    context_bounds,
)
from polymimic.envs.objects import ROD_RADIUS

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
REGIONS = {"box": ((0.42, 0.62), (-0.22, -0.07)), "target": ((0.42, 0.62), (0.07, 0.22))}


def _poses(env: AlignEnv, seed: int, context: int | None = None) -> np.ndarray:
    """Box start and target (x, y, yaw) after a reset, (2, 3)."""
    env.reset(seed=seed, options=None if context is None else {"context": context})
    return np.array([env.box_pose(), env.target_pose()])


def _turn(poses: np.ndarray) -> np.ndarray:
    """Target yaw - box yaw modulo the half turn, per row of stacked ``_poses``."""
    return (poses[..., 1, 2] - poses[..., 0, 2] + 0.5 * np.pi) % np.pi - 0.5 * np.pi


def test_initial_states_span_the_documented_regions_without_overlaps() -> None:
    env = _make()
    poses = np.array([_poses(env, seed) for seed in range(600)])  # (600, 2, 3)
    for index, (name, ((x0, x1), (y0, y1))) in enumerate(REGIONS.items()):
        x, y, yaw = poses[:, index].T
        # Inside the region, reaching within 1 cm (x, y) and 5 deg (yaw) of every end.
        assert x.min() >= x0 and x.max() <= x1 and y.min() >= y0 and y.max() <= y1, name
        assert x.min() < x0 + 0.01 and x.max() > x1 - 0.01, name
        assert y.min() < y0 + 0.01 and y.max() > y1 - 0.01, name
        # Every orientation: yaw (mod 180 deg) over [-90, 90) deg, to within 5 deg.
        half = np.mod(yaw + 0.5 * np.pi, np.pi) - 0.5 * np.pi
        assert half.min() < -0.5 * np.pi + np.radians(5) and half.max() > 0.5 * np.pi - np.radians(5)
    turns = np.abs(_turn(poses))
    assert turns.min() < np.radians(5) and turns.max() > np.radians(85)
    gaps = np.linalg.norm(poses[:, 0, :2] - poses[:, 1, :2], axis=1)
    assert gaps.min() >= MIN_TARGET_DISTANCE
    assert MIN_TARGET_DISTANCE > 2 * math.hypot(*BOX_HALF)  # box and outline never overlap
    contexts = {env.reset(seed=seed)[1]["context"] for seed in range(100)}
    assert contexts == set(range(AlignEnv.num_contexts)) and AlignEnv.num_contexts == 8


def test_initial_state_is_a_function_of_seed_and_context() -> None:
    first, second = _make(), _make()
    for seed, context in ((3, 5), (3, 2), (7, None)):
        np.testing.assert_array_equal(_poses(first, seed, context), _poses(second, seed, context))
    assert not np.allclose(_poses(first, 3, 5), _poses(first, 4, 5))
    assert not np.allclose(_poses(first, 3, 5), _poses(first, 3, 4))


@pytest.mark.parametrize("context", range(8))
def test_reset_draws_box_and_target_inside_the_context(context: int) -> None:
    lows, highs = context_bounds(context)
    # Halves of the regions in x (10 cm), the whole regions in y, a half of the turns.
    np.testing.assert_allclose(highs - lows, [0.10, 0.15, 0.10, 0.15, np.pi, np.pi / 4])
    env = _make(context)
    for seed in range(10):
        (bx, by, byaw), (px, py, pyaw) = poses = _poses(env, seed, context)
        drawn = np.array([bx, by, px, py])
        assert np.all(drawn >= lows[:4] - 1e-9) and np.all(drawn <= highs[:4] + 1e-9)
        assert lows[5] - 1e-9 <= abs(_turn(poses)) <= highs[5] + 1e-9
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
