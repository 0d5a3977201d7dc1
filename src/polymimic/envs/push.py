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
# Context k = (x shift of both blocks, y shift of red, y shift of green) from the nominal
# positions: the 2 x 2 x 2 corners of a +-2 cm box, in binary order of k.
CONTEXT_SHIFT = 0.02  # m
CONTEXTS = tuple(
    (sx * CONTEXT_SHIFT, sr * CONTEXT_SHIFT, sg * CONTEXT_SHIFT)
    for sx in (-1, 1)
    for sr in (-1, 1)
    for sg in (-1, 1)
)
BLOCK_JITTER = 0.01  # m, uniform per axis around the context's position
YAW_JITTER = 0.15  # rad, uniform around 0
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
    Two 5 cm cubes (0.2 kg, friction 0.5) start near (0.45, -0.10) [red] and (0.45, 0.10)
    [green], moved by the context and perturbed by the seed (below). The zones are 12 cm
    squares centred at (0.68, +0.17) [``left``] and (0.68, -0.17) [``right``] (left/right
    as seen from the robot base). The rod is slippery (friction 0.05, higher geom priority)
    so an off-centre push slides rather than drags the block.

    **Contexts** (``num_contexts = 8``, ``reset(options={"context": k})``; drawn from the
    seed when not given): context ``k = 4 i + 2 j + l`` shifts both blocks by
    ``(-1)^(i+1) 2 cm`` in x, red by ``(-1)^(j+1) 2 cm`` and green by ``(-1)^(l+1) 2 cm`` in y
    (``CONTEXTS``). The seed then adds uniform +-1 cm per axis and +-0.15 rad yaw per block,
    so all initial states lie within +-3 cm of the nominal positions.

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
    num_contexts: ClassVar[int] = len(CONTEXTS)
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
        shift_x, shift_red, shift_green = CONTEXTS[self.context]
        shifts = {"red": np.array([shift_x, shift_red]), "green": np.array([shift_x, shift_green])}
        for block in BLOCKS:
            jitter = self.np_random.uniform(-BLOCK_JITTER, BLOCK_JITTER, 2)
            xy = BLOCK_NOMINAL[block] + shifts[block] + jitter
            yaw = self.np_random.uniform(-YAW_JITTER, YAW_JITTER)
            adr = self._block_qpos[block]
            self.data.qpos[adr : adr + 3] = (xy[0], xy[1], BLOCK_HALF)
            self.data.qpos[adr + 3 : adr + 7] = yaw_quat(yaw)
        self._first[:] = -1.0
        self._success = False

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
