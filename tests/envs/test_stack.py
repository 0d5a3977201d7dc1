"""Stack-specific physics, grasping and labelling checks.

Cubes are teleported by editing a ``get_state()`` vector and restoring it with
``reset_to`` (the public replay API). The state starts with MuJoCo's integration state,
whose first entry is the time, so qpos entry ``i`` sits at index ``1 + i``. Grasps are
real: the arm is driven with actions and the fingers hold cubes by contact only.
"""

from __future__ import annotations

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest

from polymimic.envs.gripper import FINGER_LENGTH, PAD_HALF
from polymimic.envs.stack import (
    BLOCK_HALF,
    BLOCKS,
    CONTEXTS,
    MAX_STEP,
    MAX_YAW_STEP,
    MIN_BLOCK_DISTANCE,
    REGIONS,
    SETTLE_STEPS,
    TARGET_CENTRE,
    TARGET_LEAD,
    TARGET_PRESS,
    TOOL_YAW_LIMIT,
    StackEnv,
    context_bounds,
)

PARKED = {"red": (0.30, 0.28), "green": (0.40, 0.30), "blue": (0.50, 0.30)}  # out of the way
OPEN, CLOSE = -1.0, 1.0


def _make() -> StackEnv:
    env = gym.make("polymimic/Stack-v1").unwrapped
    env.reset(seed=0, options={"context": 0})
    return env


def _place(env: StackEnv, **poses: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Teleport cubes to (x, y[, z[, yaw]]) at rest (z defaults to resting on the table)."""
    state = env.get_state()
    for block, pose in poses.items():
        x, y, z, yaw = (*pose, *(0.0, 0.0, BLOCK_HALF[block], 0.0)[len(pose) :])
        joint = env.model.joint(f"{block}_block")
        start = 1 + joint.qposadr[0]
        state[start : start + 7] = (x, y, z, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        dof = 1 + env.model.nq + joint.dofadr[0]
        state[dof : dof + 6] = 0.0
    obs = env.reset_to(state)
    for block, pose in poses.items():
        np.testing.assert_allclose(obs[f"{block}_block"][:2], pose[:2], atol=1e-6)
    return obs


def _drive(env: StackEnv, goal, grip: float, steps: int) -> dict[str, np.ndarray]:
    """Move the controller target at full speed towards ``goal`` for ``steps`` steps."""
    obs = None
    for _ in range(steps):
        move = np.clip((np.asarray(goal) - env.target_pos) / MAX_STEP, -1.0, 1.0)
        obs, *_ = env.step(np.append(move, (0.0, grip)).astype(np.float32))
    return obs


def _grasp(env: StackEnv, block: str, lift_to: float = 0.15) -> dict[str, np.ndarray]:
    """Pick ``block`` up from where it stands: above it, down, close, lift."""
    cube = env.data.qpos[env._block_qpos[BLOCKS.index(block), :3]].copy()
    _drive(env, cube + (0, 0, 0.07), OPEN, 25)
    _drive(env, cube, OPEN, 12)
    _drive(env, cube, CLOSE, 10)
    return _drive(env, (cube[0], cube[1], lift_to), CLOSE, 20)


def _stack_at_target(env: StackEnv, order: list[str], offsets=None) -> dict[str, np.ndarray]:
    """Teleport the cubes into a resting stack on the target, bottom first."""
    offsets = offsets or [(0.0, 0.0)] * len(order)
    poses, z, (x, y) = {}, 0.0, TARGET_CENTRE
    for block, (dx, dy) in zip(order, offsets, strict=True):
        x, y = x + dx, y + dy
        z += BLOCK_HALF[block]
        poses[block] = (x, y, z)
        z += BLOCK_HALF[block]
    return _place(env, **poses)


def _still(env: StackEnv, steps: int, grip: float = OPEN) -> list[dict]:
    infos = []
    for _ in range(steps):
        *_, info = env.step(np.array([0, 0, 0, 0, grip], dtype=np.float32))
        infos.append(info)
    return infos


# --------------------------------------------------------------------- initial states
# The documented regions (class docstring), per slot: x low, x high, y low, y high.
DOCUMENTED_REGIONS = ((0.35, 0.45, -0.25, -0.15), (0.35, 0.45, -0.10, 0.0), (0.55, 0.60, -0.20, 0.0))
YAW_LIMIT = math.pi / 4


def _initial_poses(env: StackEnv, seed: int, context: int | None = None) -> np.ndarray:
    """(x, y, yaw) per cube (red, green, blue) after a reset; yaw from the quaternion."""
    env.reset(seed=seed, options=None if context is None else {"context": context})
    poses = []
    for block in BLOCKS:
        adr = env.model.joint(f"{block}_block").qposadr[0]
        x, y, _, w, _, _, z = env.data.qpos[adr : adr + 7]
        poses.append((x, y, 2.0 * np.arctan2(z, w)))
    return np.array(poses)


def _slot_of(context: int) -> dict[str, int]:
    colours, _ = CONTEXTS[context]
    return {colour: slot for slot, colour in enumerate(colours)}


def test_initial_states_span_the_documented_regions_without_overlaps() -> None:
    assert REGIONS == DOCUMENTED_REGIONS
    env = _make()
    by_slot: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
    gaps = []
    for seed in range(600):
        poses = _initial_poses(env, seed)
        slots = _slot_of(env.context)
        for index, block in enumerate(BLOCKS):
            by_slot[slots[block]].append(poses[index])
        xy = poses[:, :2]
        gaps += [np.linalg.norm(xy[i] - xy[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
        assert env.data.qpos[env._block_qpos[:, 2]].tolist() == [BLOCK_HALF[b] for b in BLOCKS]
    for slot, (x0, x1, y0, y1) in enumerate(DOCUMENTED_REGIONS):
        x, y, yaw = np.array(by_slot[slot]).T
        # Inside the region, and reaching within 1 cm (x, y) and 5 deg (yaw) of every end.
        assert x.min() >= x0 and x.max() <= x1 and y.min() >= y0 and y.max() <= y1, slot
        assert x.min() < x0 + 0.01 and x.max() > x1 - 0.01, slot
        assert y.min() < y0 + 0.01 and y.max() > y1 - 0.01, slot
        assert np.abs(yaw).max() <= YAW_LIMIT + 1e-9
        assert yaw.min() < -YAW_LIMIT + np.radians(5) and yaw.max() > YAW_LIMIT - np.radians(5)
    # No overlaps: 10 cm between centres, room for an open finger (5.2 cm from the grasp
    # centre) beside the nearest face of a neighbour at any yaw.
    assert min(gaps) >= MIN_BLOCK_DISTANCE
    assert min(gaps) > 2 * math.sqrt(2) * BLOCK_HALF["red"] + 0.02
    # Every context is drawn when none is asked for, each colour in every slot.
    contexts = {env.reset(seed=seed)[1]["context"] for seed in range(200)}
    assert contexts == set(range(StackEnv.num_contexts)) and StackEnv.num_contexts == 12


@pytest.mark.parametrize("context", range(12))
def test_each_context_draws_inside_its_bounds(context: int) -> None:
    env = _make()
    lows, highs = context_bounds(context)
    colours, half = CONTEXTS[context]
    orders = list(itertools.permutations(BLOCKS))
    assert CONTEXTS.index((colours, half)) == 2 * orders.index(colours) + half
    for seed in range(10):
        poses = _initial_poses(env, seed, context)
        assert np.all(poses >= lows - 1e-9) and np.all(poses <= highs + 1e-9)
    # Slot 2's region is halved in y (0: the half nearer the robot's right), the others whole.
    x0, x1, y0, y1 = DOCUMENTED_REGIONS[2]
    third = BLOCKS.index(colours[2])
    middle = 0.5 * (y0 + y1)
    expected = (y0, middle) if half == 0 else (middle, y1)
    assert (lows[third, 1], highs[third, 1]) == pytest.approx(expected)
    first = BLOCKS.index(colours[0])
    np.testing.assert_allclose([lows[first, :2], highs[first, :2]], [(0.35, -0.25), (0.45, -0.15)])


def test_initial_state_is_a_function_of_seed_and_context() -> None:
    first, second = _make(), _make()
    for seed, context in ((3, 5), (3, 11), (7, None)):
        a = _initial_poses(first, seed, context)
        np.testing.assert_array_equal(a, _initial_poses(second, seed, context))
    assert not np.allclose(_initial_poses(first, 3, 5), _initial_poses(first, 4, 5))
    assert not np.allclose(_initial_poses(first, 3, 5), _initial_poses(first, 3, 6))


def test_starts_open_at_yaw_zero() -> None:
    env = _make()
    obs, _ = env.reset(seed=2)
    assert obs["gripper"][0] == pytest.approx(0.08, abs=1e-6)
    np.testing.assert_allclose(obs["tip_yaw"], (0.0, 1.0), atol=1e-6)
    assert env.target_yaw == 0.0


# --------------------------------------------------------------------- tool yaw
def test_yaw_action_turns_the_tool_and_the_observation_measures_it() -> None:
    """A full-speed turn advances the desired yaw MAX_YAW_STEP per step up to the limit;
    the measured yaw (``tip_yaw``) follows within 1 degree and the tip stays in place."""
    env = _make()
    _place(env, **PARKED)
    _drive(env, (0.45, -0.1, 0.12), OPEN, 20)
    tip = env.measured_tip.copy()
    lags = []
    for step in range(15):
        obs, *_ = env.step(np.array([0.0, 0.0, 0.0, 1.0, OPEN], dtype=np.float32))
        assert env.target_yaw == pytest.approx(min((step + 1) * MAX_YAW_STEP, TOOL_YAW_LIMIT))
        measured = math.atan2(*obs["tip_yaw"])
        assert measured == pytest.approx(env.tool_yaw(), abs=1e-6)
        lags.append(abs(measured - env.target_yaw))
    assert max(lags) < math.radians(1.0)
    assert env.target_yaw == pytest.approx(TOOL_YAW_LIMIT)  # clipped at 60 deg
    np.testing.assert_allclose(env.measured_tip, tip, atol=0.001)
    # The fingers turned with it: the pads' line is the tool's y axis.
    left = env.data.geom_xpos[env.model.geom("pad_left").id]
    right = env.data.geom_xpos[env.model.geom("pad_right").id]
    across = (left - right)[:2] / np.linalg.norm((left - right)[:2])
    assert abs(abs(np.dot(across, (-math.sin(TOOL_YAW_LIMIT), math.cos(TOOL_YAW_LIMIT)))) - 1) < 1e-3
    for _ in range(25):
        env.step(np.array([0.0, 0.0, 0.0, -1.0, OPEN], dtype=np.float32))
    assert env.target_yaw == pytest.approx(-TOOL_YAW_LIMIT)


def test_a_yawed_cube_is_grasped_square_after_turning_the_tool() -> None:
    """A cube at 40 deg: turn the fingers to its faces, grasp, lift; the pads stop at its width."""
    env = _make()
    _place(env, green=PARKED["green"], blue=PARKED["blue"], red=(0.45, -0.1, 0.025, 0.7))
    for _ in range(7):  # to 0.7 rad
        env.step(np.array([0.0, 0.0, 0.0, 1.0, OPEN], dtype=np.float32))
    obs = _grasp(env, "red")
    assert math.atan2(*obs["tip_yaw"]) == pytest.approx(0.7, abs=0.01)
    cube_yaw = math.atan2(obs["red_block"][3], obs["red_block"][4]) / 4
    assert cube_yaw == pytest.approx(0.7 - math.pi / 2 * round(0.7 / (math.pi / 2)), abs=0.05)
    assert obs["red_block"][2] > 0.12
    assert obs["gripper"][0] == pytest.approx(2 * BLOCK_HALF["red"], abs=0.002)


# --------------------------------------------------------------------- gripper
def test_tip_is_the_grasp_centre_between_the_pads() -> None:
    env = _make()
    tip = env.data.site_xpos[env.arm.site_id]
    left = env.data.geom_xpos[env.model.geom("pad_left").id]
    right = env.data.geom_xpos[env.model.geom("pad_right").id]
    np.testing.assert_allclose((left + right) / 2, tip, atol=1e-9)
    # Fingers close along world y; the pads' inner faces are the reported opening apart.
    assert abs(left[0] - right[0]) < 1e-9 and abs(left[2] - right[2]) < 1e-9
    inner_gap = abs(left[1] - right[1]) - 2 * PAD_HALF[1]
    assert inner_gap == pytest.approx(env.gripper_opening(), abs=1e-9)
    assert FINGER_LENGTH > 0.08  # the palm stays well above a grasped 5 cm cube


def test_gripper_observation_is_the_measured_opening_not_the_command() -> None:
    """After a close command the observation follows the fingers as they move (halving
    each 50 ms step), so the command itself cannot be read off it; it is the pads' gap."""
    env = _make()
    _place(env, **PARKED)
    obs = _drive(env, (0.45, 0.1, 0.15), OPEN, 5)
    assert obs["gripper"].shape == (1,)
    assert obs["gripper"][0] == pytest.approx(env.gripper_opening(), abs=1e-6)
    openings = [_drive(env, (0.45, 0.1, 0.15), CLOSE, 1)["gripper"][0] for _ in range(4)]
    assert 0.02 < openings[0] < 0.07  # commanded closed, measured still half open
    assert all(a > b > 0.0 for a, b in zip(openings, openings[1:], strict=False))
    assert openings[-1] == pytest.approx(env.gripper_opening(), abs=1e-6)


def _deepest_mm(env: StackEnv) -> float:
    """The deepest interpenetration of any contact now (mm; 0 when none overlaps)."""
    return 1000 * max([0.0] + [-env.data.contact[i].dist for i in range(env.data.ncon)])


def test_pressing_down_on_a_cube_holds_the_target_just_below_the_tip() -> None:
    """Closed fingers driven down onto a cube's top at full speed for 2 s: the tip stops
    on the cube, the desired height stops TARGET_PRESS below it instead of winding down to
    the workspace floor, and nothing sinks more than 5 mm into anything. (Without the rule
    the target reached the floor 3 cm below and cubes were pressed 13.6 mm into the table.)"""
    env = _make()
    _place(env, green=PARKED["green"], blue=PARKED["blue"], red=(0.45, -0.1))
    _drive(env, (0.45, -0.1, 0.12), CLOSE, 25)
    deepest, gaps = 0.0, []
    for _ in range(40):
        obs, *_ = env.step(np.array([0.0, 0.0, -1.0, 0.0, CLOSE], dtype=np.float32))
        deepest = max(deepest, _deepest_mm(env))
        gaps.append(float(obs["tip_pos"][2] - obs["tip_target"][2]))
    top = 2 * BLOCK_HALF["red"]
    assert obs["tip_pos"][2] > top  # resting on the cube, not through it
    assert gaps[-1] == pytest.approx(TARGET_PRESS, abs=0.0005)
    assert max(gaps[5:]) < TARGET_PRESS + MAX_STEP  # at most one step's command below
    assert deepest < 5.0
    obs = _drive(env, (0.45, -0.1, 0.12), CLOSE, 12)  # and it lifts off at once
    assert obs["tip_pos"][2] > 0.10


def test_free_motion_down_is_not_held_back() -> None:
    """The rule acts only in contact: a full-speed move down through free space tracks
    the commanded target as before (within 2 mm)."""
    env = _make()
    _place(env, **PARKED)
    _drive(env, (0.45, 0.0, 0.25), OPEN, 25)
    for _ in range(10):
        before = env.target_pos[2]
        obs, *_ = env.step(np.array([0.0, 0.0, -1.0, 0.0, OPEN], dtype=np.float32))
        assert env.target_pos[2] == pytest.approx(before - MAX_STEP, abs=1e-9)
        assert abs(obs["tip_pos"][2] - obs["tip_target"][2]) < 0.002


def test_a_target_left_behind_sideways_is_pulled_back_to_the_tip() -> None:
    """A desired x that the tip stopped following (as when a finger drags a cube) leads it
    by at most TARGET_LEAD after the next step; y, which the tip follows, is untouched."""
    env = _make()
    _place(env, **PARKED)
    _drive(env, (0.45, 0.0, 0.15), OPEN, 20)
    tip = env.measured_tip.copy()
    env.target_pos[0] = tip[0] + 0.02  # wound up 2 cm ahead of the tip, as if blocked
    env.step(np.array([1.0, 0.0, 0.0, 0.0, OPEN], dtype=np.float32))
    assert env.target_pos[0] == pytest.approx(tip[0] + TARGET_LEAD, abs=1e-9)


def test_free_motion_sideways_is_not_held_back() -> None:
    """Full-speed moves in x and y through free space: the target advances a whole step
    every step (the tip's lag stays under TARGET_LEAD)."""
    env = _make()
    _place(env, **PARKED)
    _drive(env, (0.40, -0.05, 0.15), OPEN, 25)
    for move in ((1.0, 0.0), (0.0, 1.0), (-1.0, -1.0)):
        for _ in range(6):
            before = env.target_pos.copy()
            env.step(np.array([*move, 0.0, 0.0, OPEN], dtype=np.float32))
            np.testing.assert_allclose(env.target_pos[:2] - before[:2], np.multiply(move, MAX_STEP),
                                       atol=1e-9)


@pytest.mark.parametrize("block", BLOCKS)
def test_fingers_stop_at_the_cube_faces(block: str) -> None:
    """Closing on a cube stops at its width (no tunnelling); closing on air shuts fully."""
    env = _make()
    _place(env, **{b: PARKED[b] for b in BLOCKS if b != block}, **{block: (0.45, -0.10)})
    obs = _grasp(env, block)
    assert obs["gripper"].shape == (1,)  # measured only: the command is not observed
    assert obs["gripper"][0] == pytest.approx(2 * BLOCK_HALF[block], abs=0.002)
    cube = obs[f"{block}_block"]
    assert cube[2] > 0.12  # lifted with the gripper
    _drive(env, (0.45, 0.1, 0.15), OPEN, 10)  # let go over the table
    obs = _drive(env, (0.45, 0.1, 0.15), CLOSE, 15)
    assert obs["gripper"][0] < 0.002


def test_held_cube_does_not_slip_over_a_full_episode() -> None:
    """The heaviest cube, carried around and then held for max_episode_steps steps.

    A known pitfall (impratio 1 in the grasping prototype): a soft grip slips ~1-3 mm/s,
    which a 2 s test does not show.
    """
    env = _make()
    _place(env, green=PARKED["green"], blue=PARKED["blue"], red=(0.45, -0.1, 0.025, 0.15))
    obs = _grasp(env, "red")
    for corner in ((0.60, -0.10, 0.10), (0.60, 0.15, 0.20), (0.40, 0.15, 0.10), (0.45, -0.1, 0.15)):
        obs = _drive(env, corner, CLOSE, 25)
    carried = obs["red_block"][:3] - obs["tip_pos"]
    assert np.linalg.norm(carried) < 0.012  # the moves shifted it only a little in the grip
    obs = _drive(env, (0.45, -0.1, 0.15), CLOSE, env.max_episode_steps)
    held = obs["red_block"][:3] - obs["tip_pos"]
    assert np.linalg.norm(held - carried) < 0.004, (carried, held)
    assert obs["gripper"][0] == pytest.approx(2 * BLOCK_HALF["red"], abs=0.002)


# --------------------------------------------------------------------- labels and success
def test_behaviours_are_the_six_orders() -> None:
    assert len(StackEnv.behaviours) == 6
    assert {tuple(b.split("-")) for b in StackEnv.behaviours} == {
        (a, b, c) for a in BLOCKS for b in BLOCKS for c in BLOCKS if len({a, b, c}) == 3
    }


@pytest.mark.parametrize("label", StackEnv.behaviours)
def test_a_settled_stack_gets_its_bottom_to_top_label(label: str) -> None:
    env = _make()
    _drive(env, (0.40, -0.15, 0.25), OPEN, 5)  # gripper away from the target
    _stack_at_target(env, label.split("-"))
    infos = _still(env, SETTLE_STEPS)
    assert all(info["blocks_stacked"] == 3 for info in infos)
    assert [info["success"] for info in infos] == [False] * (SETTLE_STEPS - 1) + [True]
    assert [info["behaviour"] for info in infos[:-1]] == ["other"] * (SETTLE_STEPS - 1)
    assert infos[-1]["behaviour"] == label


@pytest.mark.parametrize(
    ("offsets", "stacked"),
    [
        ([(0.0, 0.0), (0.018, 0.0), (0.0, -0.018)], 3),  # within 2 cm per level
        ([(0.0, 0.0), (0.0, 0.023), (0.0, 0.0)], 1),  # green 2.3 cm off red: not on it
        ([(0.065, 0.0), (0.0, 0.0), (0.0, 0.0)], 0),  # bottom outside the target square
    ],
)
def test_stack_tolerances(offsets: list[tuple[float, float]], stacked: int) -> None:
    env = _make()
    _drive(env, (0.40, -0.15, 0.25), OPEN, 5)
    _stack_at_target(env, ["red", "green", "blue"], offsets)
    infos = _still(env, SETTLE_STEPS + 2)
    assert infos[-1]["blocks_stacked"] == stacked
    assert infos[-1]["success"] == (stacked == 3)
    assert infos[-1]["behaviour"] == ("red-green-blue" if stacked == 3 else "other")


def test_a_held_top_cube_is_not_success_until_released() -> None:
    env = _make()
    _place(env, blue=(0.45, -0.10, BLOCK_HALF["blue"]))
    _stack_at_target(env, ["red", "green"])
    _grasp(env, "blue", lift_to=0.20)
    top = BLOCK_HALF["red"] * 2 + BLOCK_HALF["green"] * 2 + BLOCK_HALF["blue"] + 0.002
    _drive(env, (*TARGET_CENTRE, 0.20), CLOSE, 25)
    _drive(env, (*TARGET_CENTRE, top), CLOSE, 15)
    held = _still(env, 10, grip=CLOSE)
    assert all(info["blocks_stacked"] == 3 for info in held)
    assert not any(info["success"] for info in held)
    released = _still(env, 15, grip=OPEN)
    assert any(info["success"] for info in released)
    assert released[-1]["behaviour"] == "red-green-blue"


def test_yaw_features_fold_the_cube_symmetry() -> None:
    env = _make()
    a = _place(env, red=(0.45, -0.1, BLOCK_HALF["red"], 0.3))["red_block"]
    b = _place(env, red=(0.45, -0.1, BLOCK_HALF["red"], 0.3 + math.pi / 2))["red_block"]
    np.testing.assert_allclose(a[3:], (math.sin(1.2), math.cos(1.2)), atol=1e-6)
    np.testing.assert_allclose(a[3:], b[3:], atol=1e-6)
