"""``polymimic/Align-v1``: push an open box onto a target pose (D3IL's Aligning)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from polymimic.envs.base import ArmTaskEnv, unit_action_space, vector_spaces
from polymimic.envs.labels import OTHER_BEHAVIOUR  # one definition, shared with eval.metrics
from polymimic.envs.objects import ROD_RADIUS, rod_xml, wrap_angle, yaw_of, yaw_quat

BEHAVIOURS = ("inside", "outside")
# The box: four thin walls and no lid or floor, so the rod can stand inside it.
BOX_HALF = (0.07, 0.05)  # m, outer half extents along the box's x (long) and y axes
WALL_THICKNESS = 0.01  # m
WALL_HEIGHT = 0.06  # m
INNER_HALF = (BOX_HALF[0] - WALL_THICKNESS, BOX_HALF[1] - WALL_THICKNESS)  # cavity
BOX_MASS = 0.3  # kg, spread over the walls by their length
BOX_SYMMETRY = math.pi  # a rectangle looks the same after half a turn
# Initial-state regions (D3IL scale): the box's centre uniform in a 20 cm (x) x 15 cm (y)
# rectangle on the right, the target's in its mirror image on the left; both yaws cover
# every orientation (the box looks the same after half a turn). The regions sit nearer the
# middle (y) than D3IL's so that every face of a box anywhere in them can still be pushed
# from outside within the arm's reach (operators.align_geometry.centre_reachable).
REGION_X = (0.42, 0.62)  # m, box start and target
START_Y = (-0.22, -0.07)  # m, box start
TARGET_Y = (0.07, 0.22)  # m, target
# Context k = 4 i + 2 j + l: i / j the near (0) or far (1) half in x of the box's / the
# target's region, l a turn (target yaw - box yaw, modulo the half turn) below (0) or
# above (1) 45 deg. A coarse start configuration; the seed draws the rest.
CELLS = 2
TURN_SPLIT = math.pi / 4  # rad
# Rejection of overlapping initial states: box and target centres at least this far apart
# (two half-diagonals of the box plus 2.8 cm), so the box never starts on its outline.
MIN_TARGET_DISTANCE = 0.20  # m
MAX_DRAWS = 1000  # rejection-sampling attempts; the tightest context accepts 93 % of draws
# Success tolerances (D3IL: 1.8 cm and 0.048 pi = 8.6 deg).
POSITION_TOLERANCE = 0.02  # m, box centre to target centre
YAW_TOLERANCE = math.radians(10.0)  # rad, modulo the box's half-turn symmetry
UPRIGHT_LIMIT = 0.01  # qx^2 + qy^2 of the box's quaternion: tilted < ~11 deg
# Labelling: a step's box motion counts as |dxy| + LEVER |dyaw|, and an episode belongs
# to a side when the rod pushed from that side for at least DOMINANCE of the motion.
LEVER = 0.05  # m
RESTING_MOTION = 2e-4  # m: smaller per-step motion is a resting box's solver jitter
DOMINANCE = 0.8
TIP_LOW = 0.02  # m, lowest tip height (capsule bottom 1 cm above the table)
TIP_HIGH = 0.10  # m, highest tip height (capsule bottom 4 cm above the walls)
MAX_STEP = 0.015  # m of target motion per control step and axis at |action| = 1
# The desired tip is clipped to this box and to REACH_RADIUS from the arm's base axis:
# the rod tracks its target everywhere in that region, at both heights (the arm's reach
# is an annulus; nearer than 0.30 m and beyond 0.80 m the IK stalls).
WORKSPACE_LOW = np.array([0.30, -0.35, TIP_LOW])
WORKSPACE_HIGH = np.array([0.80, 0.35, TIP_HIGH])
REACH_RADIUS = 0.80  # m
HOME_TIP = np.array([0.35, 0.0, TIP_HIGH])
_X_RANGE = (float(WORKSPACE_LOW[0]), float(WORKSPACE_HIGH[0]))
_Y_RANGE = (float(WORKSPACE_LOW[1]), float(WORKSPACE_HIGH[1]))


def _box_xml() -> str:
    """A free body at the box's centre on the table; walls are boxes around it."""
    hx, hy = BOX_HALF
    t, hz = 0.5 * WALL_THICKNESS, 0.5 * WALL_HEIGHT
    density = BOX_MASS / (2 * (2 * hx) + 2 * (2 * hy - 2 * WALL_THICKNESS))  # kg per m of wall
    walls = (  # long walls span the full length; short walls fit between them
        ("wall_px", (hx - t, 0.0), (t, hy - 2 * t), "0.2 0.35 0.8 1"),
        ("wall_nx", (-hx + t, 0.0), (t, hy - 2 * t), "0.2 0.35 0.8 1"),
        ("wall_py", (0.0, hy - t), (hx, t), "0.85 0.55 0.2 1"),
        ("wall_ny", (0.0, -hy + t), (hx, t), "0.85 0.55 0.2 1"),
    )
    geoms = "".join(
        f'<geom name="{name}" type="box" pos="{x} {y} {hz}" size="{sx} {sy} {hz}" '
        f'mass="{density * 2 * max(sx, sy):.6g}" rgba="{rgba}" friction="0.5 0.005 0.0001"/>'
        for name, (x, y), (sx, sy), rgba in walls
    )
    return f'<body name="box" pos="0 0 0"><freejoint name="box"/>{geoms}</body>'


def _target_xml() -> str:
    """The target pose: the box's outline drawn on the table (a mocap body, no contact)."""
    hx, hy = BOX_HALF
    t = 0.5 * WALL_THICKNESS
    strips = (
        (hx - t, 0.0, t, hy), (-hx + t, 0.0, t, hy), (0.0, hy - t, hx, t), (0.0, -hy + t, hx, t)
    )
    geoms = "".join(
        f'<geom type="box" pos="{x} {y} 0.0005" size="{sx} {sy} 0.0005" '
        f'rgba="0.1 0.75 0.3 0.8" contype="0" conaffinity="0"/>'
        for x, y, sx, sy in strips
    )
    # Placed at the middle of its region here; every reset moves it.
    return f'<body name="target" mocap="true" pos="0.52 0.145 0">{geoms}</body>'


class AlignEnv(ArmTaskEnv):
    """Push an open-topped box onto a target pose, from inside the box or from outside.

    The reference is D3IL's Aligning task: a hollow box, a target pose marked on the
    table, two behaviours (push from inside vs outside).

    **Scene.** A 7-DOF Panda (base at the world origin, table top ``z = 0``) holds the
    vertical rod of the pushing tasks (capsule, radius 1 cm, slippery: friction 0.05 with
    a higher geom priority). The box is four 1 cm thick, 6 cm high walls around a
    14 x 10 cm footprint (cavity 12 x 8 cm), no lid and no floor, 0.3 kg, friction 0.5
    with the table. The rod can stand *inside* the cavity (it clears the walls when its
    tip is above 7 cm) or push the outer faces. The target is the box's outline drawn on
    the table (a non-colliding mocap body). The box's x axis is its long axis.

    **Initial states** (D3IL scale). The box's centre is uniform in x [0.42, 0.62],
    y [-0.22, -0.07] (20 x 15 cm), the target's in x [0.42, 0.62], y [0.07, 0.22]; both
    yaws are uniform over every orientation, [-90°, 90°) (half-turn symmetry), so the turn
    needed is anything up to 90° either way. D3IL's Aligning draws the box in x [0.40,
    0.60], y [-0.25, -0.10] and the target in x [0.40, 0.60], y [0.20, 0.35], yaws in
    [-90°, 90°] (its ``BlockContextManager``): the same sizes; here both regions sit 3 cm
    (box) and 13 cm (target) nearer the middle, so every face of a box anywhere in them can
    be pushed from outside within the arm's reach (0.80 m) and the workspace (|y| <= 0.35).
    States are redrawn until box and target centres are at least 20 cm apart (two
    half-diagonals of the box + 2.8 cm: the box never starts on its target's outline).

    **Contexts** (``num_contexts = 8``, ``reset(options={"context": k})``; drawn from the
    seed when not given): a coarse start configuration, ``k = 4 i + 2 j + l`` with ``i``
    / ``j`` the near (0) or far (1) half in x of the box's / the target's region and ``l``
    a turn (target yaw - box yaw modulo 180°) of less (0) or more (1) than 45°
    (``context_bounds``). The seed draws the box's yaw uniformly, the turn's size
    uniformly in its half and its sign, and the positions uniformly in their halves, with
    the rejection above; so over uniformly drawn contexts both yaws are uniform. The
    initial state is a deterministic function of (seed, context).

    **Timing.** Physics timestep 2 ms (implicitfast), 25 substeps per control step, i.e.
    50 ms / 20 Hz control; ``max_episode_steps = 700`` (35 s; v0 allowed 500). D3IL uses
    1 ms x 35 substeps (28.6 Hz) and 400 steps; 2 ms keeps the position servos stable at
    half the cost, and the longer limit leaves time to lift the rod over a wall at the
    human-like speeds of the named datasets' operators (the slowest successful ones need
    about 450 steps).

    **Actions** ``Box(-1, 1, (3,))``: the change of the desired tip position in x, y and z,
    scaled by 1.5 cm per step (D3IL's Aligning action is 3-D as well). The desired
    position is clipped to x in [0.30, 0.80], y in [-0.35, 0.35], at most 0.80 m from the
    arm's base axis (the arm's reach), and tip height z in [0.02, 0.10]: low enough to
    push the walls (capsule bottom 1 cm above the table), high enough to pass over them
    (capsule bottom 4 cm above the 6 cm walls). The rod points down (held by the damped
    least-squares IK controller). The tip starts at (0.35, 0, 0.10), above the table.

    **Observations** (``Dict``, float32; 14 numbers, D3IL's Aligning state has 20: it
    gives 3-D positions and full quaternions where this task gives planar poses):

    | key | size | meaning |
    |---|---|---|
    | ``tip_pos`` | 3 | measured rod tip x, y, z (m) |
    | ``tip_target`` | 3 | the controller's desired tip x, y, z (m) |
    | ``box`` | 4 | box centre x, y (m), sin 2θ, cos 2θ (yaw θ; 2θ: half-turn symmetry) |
    | ``target`` | 4 | target centre x, y (m), sin 2θ, cos 2θ of the target yaw |

    **Success** (``info["success"]``, terminates the episode): the box's centre is within
    2 cm of the target's, its yaw within 10° of the target's modulo 180° (the box is
    symmetric under a half turn) and it stands upright (tilt below ~11°).
    **Reward**: 1 on the success step, else 0; ``info`` carries ``position_error`` (m),
    ``yaw_error`` (rad), and the ``inside_push``/``outside_push`` motion counts below.

    **Behaviours** (``AlignEnv.behaviours``): ``inside`` and ``outside``, decided from the
    simulated motion. Only the rod touches the box (besides the table), and it can push
    only while its capsule reaches below the walls' top (tip below 7 cm). After every
    control step the rod's side is read (``AlignEnv.rod_side``): *inside* when the tip
    lies inside the cavity's footprint (box frame ``|x| < 6 cm`` and ``|y| < 4 cm``),
    *outside* otherwise, not updated while the rod is above the walls. The box's motion
    over the step, ``|Δxy| + 0.05 m * |Δyaw|`` (ignored below 0.2 mm, a resting box's
    solver jitter), is credited to the side the rod was last on below the walls' top:
    ``info["inside_push"]`` or ``info["outside_push"]``. (Contacts sampled at step ends
    would miss about half of a push: a pushed box hops ahead of the rod.) A successful
    episode is labelled ``inside`` when the inside share of the credited motion is at
    least 80%, ``outside`` when it is at most 20%; a mixed episode and every failed
    episode are ``other``. ``info["behaviour"]`` is present every step and final at
    episode end.
    """

    task_id: ClassVar[str] = "polymimic/Align-v1"
    behaviours: ClassVar[tuple[str, ...]] = BEHAVIOURS
    max_episode_steps: ClassVar[int] = 700
    num_contexts: ClassVar[int] = CELLS**3
    # inside push, outside push, previous box x, y, yaw, rod's last side (-1: none), success
    task_state_size: ClassVar[int] = 7

    def __init__(self, **kwargs: Any) -> None:
        self._progress = np.zeros(self.task_state_size)
        super().__init__(**kwargs)
        joint = self.model.joint("box")
        self._box_qpos = int(joint.qposadr[0])
        self._target_mocap = int(self.model.body("target").mocapid[0])
        self._cache_target()

    # ----------------------------------------------------------------- model
    def _task_xml(self) -> tuple[str, str]:
        return rod_xml(), _target_xml() + _box_xml()

    def _home_tip_pos(self) -> np.ndarray:
        return HOME_TIP

    def _observation_space(self) -> gym.spaces.Dict:
        return vector_spaces({"tip_pos": 3, "tip_target": 3, "box": 4, "target": 4})

    def _action_space(self) -> gym.spaces.Box:
        return unit_action_space(3)

    # ----------------------------------------------------------------- episode
    def _reset_task(self, options: dict[str, Any]) -> None:
        x, y, yaw, tx, ty, target_yaw = self._draw_poses(self.context)
        adr = self._box_qpos
        self.data.qpos[adr : adr + 3] = (x, y, 0.0)
        self.data.qpos[adr + 3 : adr + 7] = yaw_quat(yaw)
        self.data.mocap_pos[self._target_mocap] = (tx, ty, 0.0)
        self.data.mocap_quat[self._target_mocap] = yaw_quat(target_yaw)
        self._progress[:] = (0.0, 0.0, x, y, yaw, -1.0, 0.0)
        self._cache_target()

    def _draw_poses(self, context: int) -> tuple[float, ...]:
        """Box start (x, y, yaw) then target (x, y, yaw) in context ``context``, redrawn
        while the centres are too close; a deterministic function of the seeded
        ``np_random`` and the context."""
        lows, highs = context_bounds(context)
        for _ in range(MAX_DRAWS):
            x, y, tx, ty, yaw, turn = self.np_random.uniform(lows, highs)
            sign = 1.0 if self.np_random.random() < 0.5 else -1.0
            if math.hypot(tx - x, ty - y) >= MIN_TARGET_DISTANCE:
                target_yaw = wrap_angle(yaw + sign * turn, BOX_SYMMETRY)
                return float(x), float(y), float(yaw), float(tx), float(ty), target_yaw
        raise RuntimeError(f"no accepted initial state in context {context}")  # never seen

    def _apply_action(self, action: list[float]) -> None:
        # Scalar math: np.clip on a 3-vector costs more than the rest of this step's task code.
        (x0, y0, z0), (ax, ay, az) = self.target_pos.tolist(), action
        x = min(max(x0 + MAX_STEP * ax, _X_RANGE[0]), _X_RANGE[1])
        y = min(max(y0 + MAX_STEP * ay, _Y_RANGE[0]), _Y_RANGE[1])
        z = min(max(z0 + MAX_STEP * az, TIP_LOW), TIP_HIGH)
        radius = math.hypot(x, y)
        if radius > REACH_RADIUS:
            x, y = x * REACH_RADIUS / radius, y * REACH_RADIUS / radius
        self.target_pos = np.array((x, y, z))

    def box_pose(self) -> tuple[float, float, float]:
        """Box centre x, y (m) and yaw (rad, in (-pi, pi])."""
        q = self.data.qpos[self._box_qpos : self._box_qpos + 7]
        return float(q[0]), float(q[1]), yaw_of(q[3:7])

    def target_pose(self) -> tuple[float, float, float]:
        """Target centre x, y (m) and yaw (rad, in (-pi, pi])."""
        pos = self.data.mocap_pos[self._target_mocap]
        return float(pos[0]), float(pos[1]), yaw_of(self.data.mocap_quat[self._target_mocap])

    def pose_errors(self) -> tuple[float, float]:
        """(distance box-target centre in m, |yaw difference| modulo the half turn in rad)."""
        x, y, yaw = self.box_pose()
        tx, ty, target_yaw = self._target
        return math.hypot(x - tx, y - ty), abs(wrap_angle(yaw - target_yaw, BOX_SYMMETRY))

    def rod_side(self) -> int:
        """Which side of the walls the rod is on: 0 inside, 1 outside, -1 above them.

        Above: the capsule's bottom (``ROD_RADIUS`` below the tip) is higher than the
        walls' top, so the rod cannot push. Inside: the tip lies inside the cavity's
        footprint, in the box's frame.
        """
        return self._rod_side_of(*self.box_pose())

    def _rod_side_of(self, x: float, y: float, yaw: float) -> int:
        """``rod_side`` for a box at x, y, yaw (the pose already read this step)."""
        tip = self.measured_tip
        if float(tip[2]) - ROD_RADIUS >= WALL_HEIGHT:
            return -1
        dx, dy = float(tip[0]) - x, float(tip[1]) - y
        c, s = math.cos(yaw), math.sin(yaw)
        inside = abs(c * dx + s * dy) < INNER_HALF[0] and abs(c * dy - s * dx) < INNER_HALF[1]
        return 0 if inside else 1

    def _update_task(self) -> tuple[float, bool, dict[str, Any]]:
        progress = self._progress
        x, y, yaw = self.box_pose()
        side = self._rod_side_of(x, y, yaw)
        if side >= 0:
            progress[5] = side
        # Only the rod touches the box, and only from below the walls' top: the box's
        # motion is credited to the side the rod was last on down there (a pushed box
        # hops ahead of the rod, so contacts sampled at step ends would miss half of it).
        moved = math.hypot(x - progress[2], y - progress[3])
        moved += LEVER * abs(wrap_angle(yaw - progress[4]))
        if moved > RESTING_MOTION and progress[5] >= 0:
            progress[int(progress[5])] += moved
        progress[2:5] = (x, y, yaw)
        tx, ty, target_yaw = self._target
        position_error = math.hypot(x - tx, y - ty)
        yaw_error = abs(wrap_angle(yaw - target_yaw, BOX_SYMMETRY))
        tilt = self.data.qpos[self._box_qpos + 4 : self._box_qpos + 6]  # quaternion x, y
        upright = float(tilt[0]) ** 2 + float(tilt[1]) ** 2 < UPRIGHT_LIMIT
        success = position_error <= POSITION_TOLERANCE and yaw_error <= YAW_TOLERANCE and upright
        progress[6] = float(success)
        extras = {
            "position_error": position_error,
            "yaw_error": yaw_error,
            "inside_push": float(progress[0]),
            "outside_push": float(progress[1]),
        }
        return float(success), success, extras

    def behaviour(self) -> str:
        inside, outside, success = self._progress[0], self._progress[1], self._progress[6]
        if not success or inside + outside <= 0.0:
            return OTHER_BEHAVIOUR
        share = inside / (inside + outside)
        if share >= DOMINANCE:
            return "inside"
        if share <= 1.0 - DOMINANCE:
            return "outside"
        return OTHER_BEHAVIOUR

    # ----------------------------------------------------------------- observations
    def _get_obs(self) -> dict[str, np.ndarray]:
        x, y, yaw = self.box_pose()
        return {
            "tip_pos": self.measured_tip.astype(np.float32),
            "tip_target": self.target_pos.astype(np.float32),
            "box": np.array([x, y, math.sin(2 * yaw), math.cos(2 * yaw)], dtype=np.float32),
            "target": self._target_obs.copy(),
        }

    def _cache_target(self) -> None:
        """The target is fixed within an episode: read it once per reset / reset_to."""
        self._target = self.target_pose()
        tx, ty, target_yaw = self._target
        self._target_obs = np.array(
            [tx, ty, math.sin(2 * target_yaw), math.cos(2 * target_yaw)], dtype=np.float32
        )

    def _task_state(self) -> np.ndarray:
        return self._progress.copy()

    def _set_task_state(self, task_state: np.ndarray) -> None:
        self._progress[:] = task_state
        self._cache_target()  # reset_to has already restored the mocap target


def context_bounds(context: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of (box x, box y, target x, target y, box yaw, |turn|) in
    context ``context`` (yaws in rad)."""
    box_cell, target_cell, turn_cell = (context >> 2) & 1, (context >> 1) & 1, context & 1
    half = 0.5 * (REGION_X[1] - REGION_X[0])
    box_x, target_x = REGION_X[0] + box_cell * half, REGION_X[0] + target_cell * half
    yaw = 0.5 * BOX_SYMMETRY
    lows = (box_x, START_Y[0], target_x, TARGET_Y[0], -yaw, turn_cell * TURN_SPLIT)
    highs = (box_x + half, START_Y[1], target_x + half, TARGET_Y[1], yaw, (turn_cell + 1) * TURN_SPLIT)
    return np.array(lows), np.array(highs)
