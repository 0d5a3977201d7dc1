"""``polymimic/Push-v1``: push two blocks into two target zones (D3IL's Pushing)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from polymimic.envs.base import (
    ArmTaskEnv,
    planar_pose_obs,
    step_target,
    unit_action_space,
    vector_spaces,
)
from polymimic.envs.labels import OTHER_BEHAVIOUR  # one definition, shared with eval.metrics
from polymimic.envs.objects import cube_xml, floor_patch_xml, rod_xml, yaw_quat

BLOCKS = ("red", "green")
ZONES = ("left", "right")
BLOCK_HALF = 0.025  # m, half the cube's edge
BLOCK_MASS = 0.2  # kg
ZONE_CENTRES = {"left": np.array([0.68, 0.17]), "right": np.array([0.68, -0.17])}
ZONE_HALF = 0.06  # m: a block is in a zone when its centre is inside this square
ZONE_SIZE = (ZONE_HALF, ZONE_HALF)
_ZONE_XY = tuple(tuple(ZONE_CENTRES[zone].tolist()) for zone in ZONES)
BLOCK_NOMINAL = {"red": np.array([0.45, -0.10]), "green": np.array([0.45, 0.10])}
# Initial-state regions (D3IL scale): each block's centre uniform in a 10 cm (x) x 15 cm (y)
# rectangle around its nominal position, its yaw uniform in +-45 deg (a cube's 90 deg symmetry
# makes that every orientation). The two regions are 5 cm apart in y, so which block is
# nearer which zone never swaps and every block can reach either zone.
REGION_HALF = np.array([0.05, 0.075])  # m, half the region's x and y extent
YAW_RANGE = np.pi / 4  # rad, uniform in [-YAW_RANGE, YAW_RANGE]
# Context k = 8 rx + 4 ry + 2 gx + gy picks one cell (a quarter, 5 x 7.5 cm) of each block's
# region: rx/gx the near (0) or far (1) half in x, ry/gy the half nearer (0) or farther (1)
# from the other block in y. A coarse start configuration; the seed draws the rest.
CELLS = 2
# Rejection of too-close initial states: the blocks' centres at least MIN_BLOCK_DISTANCE
# apart (two half-diagonals, the rod's diameter and 1 cm: the rod fits between the cubes at
# any yaw), each at least MIN_ROD_DISTANCE from the rod's home tip (half-diagonal, rod
# radius and 2 cm of free space).
MIN_BLOCK_DISTANCE = 0.10  # m
MIN_ROD_DISTANCE = 0.065  # m
MAX_DRAWS = 1000  # rejection-sampling attempts; the tightest cell accepts 77 % of draws
TIP_HEIGHT = 0.02  # m, rod axis end above the table (capsule bottom 1 cm above it)
MAX_STEP = 0.015  # m of target motion per control step at |action| = 1
WORKSPACE_LOW = np.array([0.28, -0.30])
WORKSPACE_HIGH = np.array([0.76, 0.30])
HOME_TIP = np.array([0.35, 0.0, TIP_HEIGHT])
_LOW, _HIGH = tuple(WORKSPACE_LOW.tolist()), tuple(WORKSPACE_HIGH.tolist())


class PushEnv(ArmTaskEnv):
    """Push a red and a green block into the two target zones, in either order.

    The reference is D3IL's Pushing task: two blocks, two zones, four behaviours.

    **Scene.** A 7-DOF Panda (base at the world origin, on the table top ``z = 0``) holds a
    vertical rod (capsule, radius 1 cm, 20 cm) whose tip is kept 2 cm above the table.
    Two 5 cm cubes (0.2 kg, friction 0.5) start in two regions (below). The zones are 12 cm
    squares centred at (0.68, +0.17) [``left``] and (0.68, -0.17) [``right``] (left/right
    as seen from the robot base). The rod is slippery (friction 0.05, higher geom priority)
    so an off-centre push slides rather than drags the block.

    **Initial states** (D3IL scale). Each block's centre is uniform in its own 10 cm (x) x
    15 cm (y) region: red x in [0.40, 0.50], y in [-0.175, -0.025]; green x in [0.40, 0.50],
    y in [0.025, 0.175]; each yaw uniform in [-45°, 45°] (every orientation of a cube). D3IL's
    Pushing draws red x in [0.40, 0.50] and green x in [0.55, 0.65], both y in [-0.15, 0]
    (10 x 15 cm each, green behind red), yaw in [-45°, 45°] (its test contexts; [-90°, 90°]
    in its sampler). Here the regions lie side by side, 5 cm apart in y, in front of the
    zones, so each block can be pushed into either zone with the other block beside rather
    than in front of it. States are redrawn until the blocks' centres are at least 10 cm
    apart (two half-diagonals + the rod's 2 cm diameter + 1 cm: the rod passes between the
    cubes at any yaw) and each centre is at least 6.5 cm from the rod's home tip
    (0.35, 0) (half-diagonal + rod radius + 2 cm).

    **Contexts** (``num_contexts = 16``, ``reset(options={"context": k})``; drawn from the
    seed when not given): a coarse start configuration, one cell (5 x 7.5 cm, a quarter) of
    each block's region: ``k = 8 rx + 4 ry + 2 gx + gy`` with ``rx``/``gx`` the near (0) or
    far (1) half of red's/green's region in x and ``ry``/``gy`` the half nearer to (0) or
    farther from (1) the other block in y (``context_cells``). The seed draws the poses
    uniformly within the cells, with the rejection above (so a cell where more draws are
    rejected is slightly over-weighted when contexts are drawn uniformly); the initial
    state is a deterministic function of (seed, context).

    **Timing.** Physics timestep 2 ms (implicitfast), 25 substeps per control step, i.e.
    50 ms / 20 Hz control; ``max_episode_steps = 700`` (35 s: the slowest human-like
    operators of the named datasets need up to ~30 s; v0 allowed 20 s). D3IL uses 1 ms x 35
    substeps (28.6 Hz); 2 ms keeps the stiff position servos stable at half the cost.

    **Actions** ``Box(-1, 1, (2,))``: the change of the desired tip position in x and y,
    scaled by 1.5 cm per step (D3IL: "delta desired xy"). The desired position is clipped
    to the workspace x in [0.28, 0.76], y in [-0.30, 0.30]; height and orientation are held
    by the damped least-squares IK controller.

    **Observations** (``Dict``, float32):

    | key | size | meaning |
    |---|---|---|
    | ``tip_pos`` | 2 | measured rod tip x, y (m) |
    | ``tip_target`` | 2 | the controller's desired tip x, y (m) |
    | ``red_block`` | 4 | x, y (m), sin 4θ, cos 4θ (yaw θ modulo the cube's 90° symmetry) |
    | ``green_block`` | 4 | as ``red_block`` |

    **Success** (``info["success"]``, terminates the episode): each zone holds one block,
    a block being in a zone when its centre lies inside the zone's 12 cm square.
    **Reward**: 1 on the success step, else 0; ``info["blocks_in_zones"]`` counts the
    blocks inside any zone.

    **Behaviours** (``PushEnv.behaviours``): ``"<block>-<zone>"`` names the block that
    entered a zone first and that zone: ``red-left``, ``red-right``, ``green-left``,
    ``green-right``. The label is decided from the simulation: the first time a block's
    centre enters a zone is recorded; a successful episode whose first block still sits in
    that zone gets that label; everything else (failure, or the first block moved on to
    the other zone) is ``other``. ``info["behaviour"]`` is present every step and final at
    episode end.
    """

    task_id: ClassVar[str] = "polymimic/Push-v1"
    behaviours: ClassVar[tuple[str, ...]] = tuple(f"{b}-{z}" for b in BLOCKS for z in ZONES)
    max_episode_steps: ClassVar[int] = 700
    num_contexts: ClassVar[int] = CELLS**4
    task_state_size: ClassVar[int] = 3  # first block index (-1: none), its zone, success

    def __init__(self, **kwargs: Any) -> None:
        self._first = np.array([-1.0, -1.0])
        super().__init__(**kwargs)
        self._block_qpos = {
            b: self.model.jnt_qposadr[self.model.joint(f"{b}_block").id] for b in BLOCKS
        }
        self._success = False

    def _task_xml(self) -> tuple[str, str]:
        objects = (
            floor_patch_xml("left_zone", ZONE_CENTRES["left"], ZONE_SIZE, "0.9 0.9 0.2 0.6")
            + floor_patch_xml("right_zone", ZONE_CENTRES["right"], ZONE_SIZE, "0.2 0.5 0.9 0.6")
            + cube_xml("red_block", BLOCK_HALF, BLOCK_MASS, "0.85 0.15 0.15 1")
            + cube_xml("green_block", BLOCK_HALF, BLOCK_MASS, "0.15 0.7 0.2 1")
        )
        return rod_xml(), objects

    def _home_tip_pos(self) -> np.ndarray:
        return HOME_TIP

    def _observation_space(self) -> gym.spaces.Dict:
        return vector_spaces({"tip_pos": 2, "tip_target": 2, "red_block": 4, "green_block": 4})

    def _action_space(self) -> gym.spaces.Box:
        return unit_action_space(2)

    def _reset_task(self, options: dict[str, Any]) -> None:
        poses = self._draw_poses(self.context)
        for block, (x, y, yaw) in zip(BLOCKS, poses, strict=True):
            adr = self._block_qpos[block]
            self.data.qpos[adr : adr + 3] = (x, y, BLOCK_HALF)
            self.data.qpos[adr + 3 : adr + 7] = yaw_quat(yaw)
        self._first[:] = -1.0
        self._success = False

    def _draw_poses(self, context: int) -> np.ndarray:
        """(x, y, yaw) per block in ``BLOCKS`` order, uniform in context's cells, rejecting
        too-close states; a deterministic function of the seeded ``np_random`` and context."""
        lows, highs = context_cells(context)
        for _ in range(MAX_DRAWS):
            poses = self.np_random.uniform(lows, highs)
            if initial_state_ok(poses):
                return poses
        raise RuntimeError(f"no accepted initial state in context {context}")  # never seen

    def _apply_action(self, action: list[float]) -> None:
        step_target(self.target_pos, action, MAX_STEP, _LOW, _HIGH)

    def block_xy(self, block: str) -> np.ndarray:
        adr = self._block_qpos[block]
        return self.data.qpos[adr : adr + 2].copy()

    def zone_of(self, block: str) -> int:
        """Index into ZONES of the zone holding ``block``'s centre, or -1."""
        adr = self._block_qpos[block]
        x, y = self.data.qpos[adr : adr + 2].tolist()
        for index, (cx, cy) in enumerate(_ZONE_XY):
            if abs(x - cx) <= ZONE_HALF and abs(y - cy) <= ZONE_HALF:
                return index
        return -1

    def _update_task(self) -> tuple[float, bool, dict[str, Any]]:
        zones = [self.zone_of(b) for b in BLOCKS]
        if self._first[0] < 0:
            for index, zone in enumerate(zones):
                if zone >= 0:  # both entering in one step: the lower index wins, rare
                    self._first[:] = (index, zone)
                    break
        in_zones = sum(z >= 0 for z in zones)
        self._success = in_zones == 2 and zones[0] != zones[1]
        return float(self._success), self._success, {"blocks_in_zones": in_zones}

    def behaviour(self) -> str:
        if not self._success or self._first[0] < 0:
            return OTHER_BEHAVIOUR
        block, zone = int(self._first[0]), int(self._first[1])
        if self.zone_of(BLOCKS[block]) != zone:
            return OTHER_BEHAVIOUR
        return f"{BLOCKS[block]}-{ZONES[zone]}"

    def _get_obs(self) -> dict[str, np.ndarray]:
        qpos = self.data.qpos
        return {
            "tip_pos": self.data.site_xpos[self.arm.site_id, :2].astype(np.float32),
            "tip_target": self.target_pos[:2].astype(np.float32),
            "red_block": planar_pose_obs(qpos, self._block_qpos["red"]),
            "green_block": planar_pose_obs(qpos, self._block_qpos["green"]),
        }

    def _task_state(self) -> np.ndarray:
        return np.array([*self._first, float(self._success)])

    def _set_task_state(self, task_state: np.ndarray) -> None:
        self._first[:] = task_state[:2]
        self._success = bool(task_state[2])


def context_cells(context: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds, (2, 3) each, of (x, y, yaw) per block in context ``context``."""
    bits = [(context >> shift) & 1 for shift in (3, 2, 1, 0)]  # rx, ry, gx, gy
    lows, highs = [], []
    for block, (bx, by) in zip(BLOCKS, (bits[:2], bits[2:]), strict=True):
        centre = BLOCK_NOMINAL[block]
        outward = np.sign(centre[1])  # "far from the other block" in y
        x0 = centre[0] - REGION_HALF[0] + bx * REGION_HALF[0]
        inner = centre[1] - outward * REGION_HALF[1]
        y_a = inner + outward * by * REGION_HALF[1]
        y_b = inner + outward * (by + 1) * REGION_HALF[1]
        lows.append((x0, min(y_a, y_b), -YAW_RANGE))
        highs.append((x0 + REGION_HALF[0], max(y_a, y_b), YAW_RANGE))
    return np.array(lows), np.array(highs)


def initial_state_ok(poses: np.ndarray) -> bool:
    """Whether (x, y, yaw) per block keeps the clearances ``MIN_BLOCK_DISTANCE`` (between
    the blocks) and ``MIN_ROD_DISTANCE`` (from the rod's home tip)."""
    xy = poses[:, :2]
    if np.linalg.norm(xy[0] - xy[1]) < MIN_BLOCK_DISTANCE:
        return False
    return bool(np.all(np.linalg.norm(xy - HOME_TIP[:2], axis=1) >= MIN_ROD_DISTANCE))
