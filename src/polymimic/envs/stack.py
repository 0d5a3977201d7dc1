"""``polymimic/Stack-v1``: pick three cubes and stack them on a target area (D3IL's Stacking)."""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from polymimic.envs.base import ArmTaskEnv, step_target, unit_action_space, vector_spaces
from polymimic.envs.gripper import (
    FINGER_JOINTS,
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    PAD_GEOMS,
    PALM_GEOM,
    gripper_actuators_xml,
    gripper_xml,
)
from polymimic.envs.labels import OTHER_BEHAVIOUR  # one definition, shared with eval.metrics
from polymimic.envs.objects import cube_xml, floor_patch_xml, yaw_quat

BLOCKS = ("red", "green", "blue")
BLOCK_RGBA = {"red": "0.85 0.15 0.15 1", "green": "0.15 0.7 0.2 1", "blue": "0.15 0.3 0.85 1"}
# Three sizes and masses inside D3IL's range (4-5 cm, 0.1-0.3 kg): the stack's height,
# and so where each cube must be put down, depends on the order.
BLOCK_HALF = {"red": 0.025, "green": 0.0225, "blue": 0.02}  # m, half edge
BLOCK_MASS = {"red": 0.3, "green": 0.2, "blue": 0.1}  # kg
BLOCK_FRICTION = "0.8 0.005 0.0001"  # cube-table and cube-cube (pads use their own 1.5)
# The cubes' contacts are 5x faster (stiffer) than MuJoCo's default 0.02 s time constant
# (0.004 s = 2 physics steps, the fastest MuJoCo allows at 2 ms): a gripper pressing a cube
# down pushed it up to 22.5 mm into the table with the default (67 of the named dataset's
# 300 demos beyond 5 mm), 13.6 mm with this (31 demos; scripts/contact_depth.py).
BLOCK_SOLREF = "0.004 1"
TARGET_CENTRE = np.array([0.56, 0.18])
TARGET_HALF = 0.05  # m: the bottom cube's centre must lie inside this square
# Initial states (D3IL scale): one start region per slot, as D3IL's Stacking places its red,
# green and blue blocks: (x low, x high, y low, y high) in m. A context assigns the colours to
# the slots and picks the half (in y) of the third region; every cube's yaw is uniform in
# +-45 deg (a cube's 90 deg symmetry makes that every orientation).
REGIONS = (
    (0.35, 0.45, -0.25, -0.15),
    (0.35, 0.45, -0.10, 0.0),
    (0.55, 0.60, -0.20, 0.0),
)
SPLIT_REGION = 2  # the region a context halves (in y)
YAW_RANGE = math.pi / 4  # rad, each cube's yaw uniform in [-YAW_RANGE, YAW_RANGE]
CONTEXTS = tuple(
    (colours, half) for colours in itertools.permutations(BLOCKS) for half in (0, 1)
)
# Rejection of overlapping initial states: cube centres at least MIN_BLOCK_DISTANCE apart
# (two half-diagonals of the largest cube, 7.1 cm, and 2.9 cm for an open finger between
# them at any yaw: the open fingers reach 5.2 cm from the grasp centre along their closing
# axis, a cube's face is at least 2 cm from its centre).
MIN_BLOCK_DISTANCE = 0.10  # m
MAX_DRAWS = 1000  # rejection-sampling attempts per reset (the worst context accepts > 60 %)
# The tool's yaw: the action's fourth component turns the desired yaw by at most
# MAX_YAW_STEP per step; the desired yaw is clipped to +-TOOL_YAW_LIMIT (60 deg: a cube's
# nearest face is always within 45 deg, and the two fingers are 180 deg symmetric).
MAX_YAW_STEP = 0.1  # rad per control step at |action| = 1
TOOL_YAW_LIMIT = math.pi / 3  # rad
MAX_STEP = 0.015  # m of target motion per control step at |action| = 1, per axis
WORKSPACE_LOW = np.array([0.28, -0.32, 0.015])
WORKSPACE_HIGH = np.array([0.75, 0.32, 0.30])
_LOW, _HIGH = tuple(WORKSPACE_LOW.tolist()), tuple(WORKSPACE_HIGH.tolist())
# Once the grasp centre stops following its desired position down (a finger on a cube, a
# carried cube on its support), the desired height is held TARGET_PRESS below the measured
# one instead of sinking further. Without it a hand that keeps commanding down winds the
# target centimetres below the tip, and the servos' full force pressed cubes up to 13.6 mm
# into the table (named v1 dataset, 31 of 300 demos over 5 mm; with both rules here: 4.4 mm,
# none). In free motion the tip tracks the target within 1.4 mm (99.9 % of steps, named v1
# dataset), so the rules only act in contact; it is what robosuite's controllers get by
# applying deltas to the measured pose.
TARGET_PRESS = 0.001  # m
RESTING_SPEED = 0.02  # m/s: a tip sinking slower than this is resting (1 mm per step)
# The same across: once the tip lags its desired x or y by more than TARGET_LEAD (a finger
# caught on a cube, dragging and tilting it), the target leads it by at most that. In free
# motion the horizontal lag stays below 2.6 mm (99.9 % of the fast steps, named dataset).
TARGET_LEAD = 0.003  # m
HOME_TIP = np.array([0.42, 0.0, 0.20])
# Success tolerances (see the class docstring).
STACK_XY_TOL = 0.02  # m, centre offset of a cube from the one below
STACK_Z_TOL = 0.01  # m, deviation from the height of a cube resting on the one below
REST_SPEED = 0.05  # m/s, every cube slower than this
SETTLE_STEPS = 5  # consecutive control steps (0.25 s) the finished stack must stand
ORDERS = tuple(itertools.permutations(range(len(BLOCKS))))  # bottom-to-top block indices


def order_label(order: tuple[int, ...]) -> str:
    """The behaviour label of a bottom-to-top order of block indices."""
    return "-".join(BLOCKS[i] for i in order)


class StackEnv(ArmTaskEnv):
    """Pick up a red, a green and a blue cube and stack them on the target area.

    The reference is D3IL's Stacking task: three blocks, six stacking orders.

    **Scene.** A 7-DOF Panda (base at the world origin, table top ``z = 0``) carries a
    two-finger parallel gripper (``polymimic.envs.gripper``): fingers slide 0-4 cm each
    (opening 0-8 cm), position servos kp 400 N/m limited to 20 N, grasping by contact and
    friction only (no welds, no attachment). The tool points straight down; its yaw
    about the vertical is an action (below); at yaw 0 the fingers close along world y.
    Cubes: red 5 cm / 0.3 kg, green 4.5 cm / 0.2 kg, blue 4 cm / 0.1 kg (friction 0.8). The target area is a 10 cm square centred at
    (0.56, 0.18) (yellow, visual only).

    **Initial states** (D3IL scale). The three cubes start in three regions (``REGIONS``):
    slot 0 x in [0.35, 0.45], y in [-0.25, -0.15]; slot 1 x in [0.35, 0.45], y in
    [-0.10, 0]; slot 2 x in [0.55, 0.60], y in [-0.20, 0]; each centre uniform in its
    region, each yaw uniform in [-45°, 45°] (every orientation of a cube). These are D3IL's
    Stacking regions (its red, green and blue blocks: x [0.35, 0.45] / y [-0.25, -0.15],
    x [0.35, 0.45] / y [-0.10, 0], x [0.55, 0.60] / y [-0.20, 0], yaw in [-90°, 90°]);
    D3IL draws the target in x [0.4, 0.6], y [0.15, 0.25], here it is fixed. States are
    redrawn until every two cube centres are at least 10 cm apart (``MIN_BLOCK_DISTANCE``:
    two half-diagonals of the largest cube and room for an open finger between them at any
    yaw; only slots 0 and 1 can come closer). The home grasp centre (0.42, 0, 0.20) is
    15 cm above every cube.

    **Contexts** (``num_contexts = 12``, ``reset(options={"context": k})``; drawn from
    the seed when not given): context ``k = 2 p + h`` gives slot ``i`` the colour ``c[i]``
    of permutation ``p`` of ``itertools.permutations(("red", "green", "blue"))`` (``c``)
    and puts slot 2's cube in the half ``h`` of its region in y (0: y in [-0.20, -0.10],
    1: [-0.10, 0]) (``CONTEXTS``, ``context_bounds``). The seed draws the poses uniformly
    within these bounds, with the rejection above; the initial state is a deterministic
    function of (seed, context).

    **Timing.** Physics timestep 2 ms (implicitfast, elliptic friction cone, impratio 10),
    25 substeps per control step, i.e. 50 ms / 20 Hz control; ``max_episode_steps =
    1600`` (80 s: the scripted experts need 400-650 steps, the slowest human-like operators
    (worse tier, vertical_slow style) up to ~1500). D3IL uses 1 ms x 35 substeps (28.6 Hz);
    2 ms keeps the stiff servos and the grasp contacts stable at half the cost (5 ms
    launches cubes). impratio 10 is what keeps a held cube from slipping out over a long
    episode.

    **Actions** ``Box(-1, 1, (5,))``: ``(dx, dy, dz, dyaw, gripper)``. The first three
    change the desired grasp-centre (``tip``) position in x, y, z, scaled by 1.5 cm per
    step; ``dyaw`` turns the desired tool yaw (about the vertical) by 0.1 rad per step at
    ``|a| = 1`` (``MAX_YAW_STEP``); the last component is the gripper command: ``> 0``
    closes both fingers (servo target 0), ``<= 0`` opens them (4 cm). The desired position
    is clipped to x in [0.28, 0.75], y in [-0.32, 0.32], z in [0.015, 0.30], the desired
    yaw to [-60°, 60°] (``TOOL_YAW_LIMIT``: a cube's nearest face is always within 45°,
    and the fingers are 180° symmetric). Where the grasp centre stops following it, the
    desired position is held near the measured one instead of winding up: 1 mm below it
    once the tip rests on something (``TARGET_PRESS``), at most 3 mm ahead of it across
    (``TARGET_LEAD``). The damped least-squares IK controller holds the tool pointing down
    at the desired yaw (it follows a full-speed turn within ~1°). The desired yaw starts
    at 0 and is part of the replay state (task state).

    **Observations** (``Dict``, float32):

    | key | size | meaning |
    |---|---|---|
    | ``tip_pos`` | 3 | measured grasp centre x, y, z (m) |
    | ``tip_target`` | 3 | the controller's desired grasp centre (m) |
    | ``tip_yaw`` | 2 | sin ψ, cos ψ of the measured tool yaw ψ (from the tip frame) |
    | ``gripper`` | 1 | measured opening between the pads (m) |
    | ``red_block`` | 5 | centre x, y, z (m), sin 4θ, cos 4θ (yaw θ modulo 90°) |
    | ``green_block`` | 5 | as ``red_block`` |
    | ``blue_block`` | 5 | as ``red_block`` |

    **Success** (``info["success"]``, terminates the episode): the three cubes form one
    stack: the bottom cube's centre lies inside the target square and it rests on the
    table (centre height within 1 cm of its half edge); each higher cube's centre is
    within 2 cm (horizontally) of the centre of the cube below and its height within 1 cm
    of resting on it (``z_below + half_below + half``); every cube moves slower than
    5 cm/s; and no pad nor the palm touches a cube (released, not held) -- all of this
    for 5 consecutive control steps (0.25 s), so a stack that is about to topple (it
    speeds up past 5 cm/s well within that time) does not count.
    **Reward**: 1 on the success step, else 0; ``info["blocks_stacked"]`` is the height
    (0-3) of the stack standing on the target by the geometric rules above.

    **Behaviours** (``StackEnv.behaviours``): the bottom-to-top colour order of the final
    stack, e.g. ``"red-green-blue"`` is red at the bottom and blue on top; all six
    permutations. The label is read from the physics at the success step (the vertical
    order of the cubes), so a cube that was put down and later moved is labelled where it
    ended up. A failed episode is ``other``. ``info["behaviour"]`` is present every step
    and final at episode end.
    """

    task_id: ClassVar[str] = "polymimic/Stack-v1"
    behaviours: ClassVar[tuple[str, ...]] = tuple(order_label(o) for o in ORDERS)
    max_episode_steps: ClassVar[int] = 1600
    num_contexts: ClassVar[int] = len(CONTEXTS)
    # index into ORDERS of the succeeded stack (-1: none yet), steps the stack has stood,
    # the desired tool yaw (rad)
    task_state_size: ClassVar[int] = 3
    physics_options: ClassVar[str] = 'cone="elliptic" impratio="10"'

    def __init__(self, **kwargs: Any) -> None:
        self._order = -1
        self._settled = 0
        self.target_yaw = 0.0  # the controller's desired tool yaw (rad)
        super().__init__(**kwargs)
        model = self.model
        adr = [model.jnt_qposadr[model.joint(f"{b}_block").id] for b in BLOCKS]
        dof = [model.jnt_dofadr[model.joint(f"{b}_block").id] for b in BLOCKS]
        self._block_qpos = np.array([np.arange(a, a + 7) for a in adr])  # (3, 7)
        self._block_lin_dof = np.array([np.arange(d, d + 3) for d in dof])  # (3, 3)
        self._finger_qpos = [model.jnt_qposadr[model.joint(j).id] for j in FINGER_JOINTS]
        self._halves = [BLOCK_HALF[b] for b in BLOCKS]
        self._block_geoms = {model.geom(f"{b}_block").id for b in BLOCKS}
        self._gripper_geoms = {model.geom(g).id for g in (*PAD_GEOMS, PALM_GEOM)}
        self._tip_velocity = np.zeros(6)  # scratch for mj_objectVelocity (angular, linear)

    # ----------------------------------------------------------------- model
    def _task_xml(self) -> tuple[str, str]:
        target = floor_patch_xml(
            "target", tuple(TARGET_CENTRE), (TARGET_HALF, TARGET_HALF), "0.9 0.9 0.2 0.6"
        )
        cubes = "".join(
            cube_xml(
                f"{b}_block", BLOCK_HALF[b], BLOCK_MASS[b], BLOCK_RGBA[b], BLOCK_FRICTION,
                BLOCK_SOLREF,
            )
            for b in BLOCKS
        )
        return gripper_xml(), target + cubes

    def _task_actuators_xml(self) -> str:
        return gripper_actuators_xml()

    def _home_tip_pos(self) -> np.ndarray:
        return HOME_TIP

    def _observation_space(self) -> gym.spaces.Dict:
        return vector_spaces(
            {
                "tip_pos": 3, "tip_target": 3, "tip_yaw": 2, "gripper": 1,
                **{f"{b}_block": 5 for b in BLOCKS},
            }
        )

    def _action_space(self) -> gym.spaces.Box:
        return unit_action_space(5)

    def _target_rotation(self) -> np.ndarray:
        """The tool pointing down, turned by the desired yaw about the world vertical."""
        c, s = math.cos(self.target_yaw), math.sin(self.target_yaw)
        return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])

    # ----------------------------------------------------------------- episode
    def _reset_task(self, options: dict[str, Any]) -> None:
        poses = self._draw_poses(self.context)
        for index, (x, y, yaw) in enumerate(poses.tolist()):
            adr = self._block_qpos[index]
            self.data.qpos[adr] = (x, y, BLOCK_HALF[BLOCKS[index]], *yaw_quat(yaw))
        self.data.qpos[self._finger_qpos] = GRIPPER_OPEN
        self.data.ctrl[7:9] = GRIPPER_OPEN
        self._order, self._settled = -1, 0
        self.target_yaw = 0.0

    def _draw_poses(self, context: int) -> np.ndarray:
        """(x, y, yaw) per cube in ``BLOCKS`` order, uniform within the context's bounds,
        rejecting too-close states; a deterministic function of ``np_random`` and context."""
        lows, highs = context_bounds(context)
        for _ in range(MAX_DRAWS):
            poses = self.np_random.uniform(lows, highs)
            if initial_state_ok(poses):
                return poses
        raise RuntimeError(f"no accepted initial state in context {context}")  # never seen

    def _apply_action(self, action: list[float]) -> None:
        previous = self.target_pos.tolist()
        previous_z = previous[2]
        step_target(self.target_pos, action, MAX_STEP, _LOW, _HIGH)
        tip = self.measured_tip.tolist()
        for axis in (0, 1):  # held back where the tip no longer follows (TARGET_LEAD)
            lead, before = self.target_pos[axis] - tip[axis], previous[axis] - tip[axis]
            if abs(before) > TARGET_LEAD and abs(lead) > TARGET_LEAD and lead * before > 0:
                self.target_pos[axis] = tip[axis] + math.copysign(TARGET_LEAD, lead)
        tip_z = tip[2]
        floor = tip_z - TARGET_PRESS
        # Resting: the target was below the tip, which is not moving down (a tip that sinks
        # a fraction of a millimetre into what it rests on still counts; a free descent
        # lags its target by up to 1.4 mm but moves at centimetres per second).
        mujoco.mj_objectVelocity(
            self.model, self.data, mujoco.mjtObj.mjOBJ_SITE, self.arm.site_id, self._tip_velocity, 0
        )
        still = self._tip_velocity[5] > -RESTING_SPEED
        resting = previous_z < floor or (still and previous_z < tip_z - 0.5 * TARGET_PRESS)
        if resting and self.target_pos[2] < floor:
            self.target_pos[2] = floor
        yaw = self.target_yaw + MAX_YAW_STEP * action[3]
        self.target_yaw = min(max(yaw, -TOOL_YAW_LIMIT), TOOL_YAW_LIMIT)
        self.data.ctrl[7:9] = GRIPPER_CLOSED if action[4] > 0 else GRIPPER_OPEN

    # ----------------------------------------------------------------- progress
    def stack_order(self) -> list[int]:
        """Bottom-to-top block indices of the stack standing on the target (may be empty).

        Geometric rules only (target square, resting heights, 2 cm centre offsets); the
        success test adds the rest and release conditions.
        """
        pos = self.data.qpos[self._block_qpos[:, :3]].tolist()
        halves = self._halves
        cx, cy = TARGET_CENTRE
        order: list[int] = []
        for _ in range(len(BLOCKS)):
            found = -1
            for i, (x, y, z) in enumerate(pos):
                if i in order:
                    continue
                if not order:
                    ok = (
                        abs(x - cx) <= TARGET_HALF
                        and abs(y - cy) <= TARGET_HALF
                        and abs(z - halves[i]) <= STACK_Z_TOL
                    )
                else:
                    below = order[-1]
                    bx, by, bz = pos[below]
                    ok = (
                        math.hypot(x - bx, y - by) <= STACK_XY_TOL
                        and abs(z - (bz + halves[below] + halves[i])) <= STACK_Z_TOL
                    )
                if ok:
                    found = i
                    break
            if found < 0:
                break
            order.append(found)
        return order

    def _released_and_still(self) -> bool:
        """No pad or palm touches a cube, and every cube moves slower than REST_SPEED."""
        speeds = self.data.qvel[self._block_lin_dof]
        if float(np.max(np.einsum("ij,ij->i", speeds, speeds))) > REST_SPEED**2:
            return False
        ncon = self.data.ncon
        if ncon:
            geoms = self.data.contact.geom[:ncon]
            for g1, g2 in geoms.tolist():
                if (g1 in self._gripper_geoms and g2 in self._block_geoms) or (
                    g2 in self._gripper_geoms and g1 in self._block_geoms
                ):
                    return False
        return True

    def _update_task(self) -> tuple[float, bool, dict[str, Any]]:
        order = self.stack_order()
        standing = len(order) == len(BLOCKS) and self._released_and_still()
        self._settled = self._settled + 1 if standing else 0
        success = self._settled >= SETTLE_STEPS
        if success and self._order < 0:
            self._order = ORDERS.index(tuple(order))
        return float(success), success, {"blocks_stacked": len(order)}

    def behaviour(self) -> str:
        if self._order < 0:
            return OTHER_BEHAVIOUR
        return order_label(ORDERS[self._order])

    # ----------------------------------------------------------------- observations
    def tool_yaw(self) -> float:
        """The measured tool yaw (rad): the direction of the tip frame's x axis in the
        horizontal plane (0 at the home pose, the fingers then close along world y)."""
        mat = self.data.site_xmat[self.arm.site_id]
        return math.atan2(float(mat[3]), float(mat[0]))

    def gripper_opening(self) -> float:
        """Distance between the pads' inner faces (m)."""
        q = self.data.qpos
        return float(q[self._finger_qpos[0]] + q[self._finger_qpos[1]])

    def _get_obs(self) -> dict[str, np.ndarray]:
        # One float32 array built from Python floats, then sliced into the keys: a handful
        # of tiny numpy calls per key would cost more than the numbers themselves.
        data = self.data
        values = self.measured_tip.tolist() + self.target_pos.tolist()
        # The tool's measured yaw, not the desired one: like the gripper below, a commanded
        # quantity would let a learner read its previous actions off the observation.
        yaw = self.tool_yaw()
        values += (math.sin(yaw), math.cos(yaw))
        # The fingers' measured opening only, not the last gripper command.
        values.append(self.gripper_opening())
        for x, y, z, w, _, _, qz in data.qpos[self._block_qpos].tolist():
            # Yaw of a (nearly) upright cube; 4θ folds the cube's 90° symmetry away.
            angle = 8.0 * math.atan2(qz, w)
            values += (x, y, z, math.sin(angle), math.cos(angle))
        flat = np.array(values, dtype=np.float32)
        obs = {
            "tip_pos": flat[0:3], "tip_target": flat[3:6], "tip_yaw": flat[6:8],
            "gripper": flat[8:9],
        }
        for i, block in enumerate(BLOCKS):
            obs[f"{block}_block"] = flat[9 + 5 * i : 14 + 5 * i]
        return obs

    # ----------------------------------------------------------------- replay
    def _task_state(self) -> np.ndarray:
        return np.array([float(self._order), float(self._settled), self.target_yaw])

    def _set_task_state(self, task_state: np.ndarray) -> None:
        self._order, self._settled = int(task_state[0]), int(task_state[1])
        self.target_yaw = float(task_state[2])


def context_bounds(context: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds, (3, 3) each, of (x, y, yaw) per cube (``BLOCKS`` order) in
    context ``context`` (see the class docstring)."""
    colours, half = CONTEXTS[context]
    lows, highs = np.zeros((3, 3)), np.zeros((3, 3))
    for slot, colour in enumerate(colours):
        x0, x1, y0, y1 = REGIONS[slot]
        if slot == SPLIT_REGION:
            middle = 0.5 * (y0 + y1)
            y0, y1 = (y0, middle) if half == 0 else (middle, y1)
        index = BLOCKS.index(colour)
        lows[index], highs[index] = (x0, y0, -YAW_RANGE), (x1, y1, YAW_RANGE)
    return lows, highs


def initial_state_ok(poses: np.ndarray) -> bool:
    """Whether every two cube centres of (x, y, yaw) per cube are ``MIN_BLOCK_DISTANCE``
    apart."""
    xy = poses[:, :2]
    for i, j in itertools.combinations(range(len(xy)), 2):
        if math.hypot(*(xy[i] - xy[j]).tolist()) < MIN_BLOCK_DISTANCE:
            return False
    return True
