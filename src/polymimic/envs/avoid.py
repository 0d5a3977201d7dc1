"""``polymimic/Avoid-v1``: reach a finish line through rows of obstacles (D3IL's Avoiding)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from polymimic.envs.base import TOOL_DOWN, ArmTaskEnv, step_target, unit_action_space, vector_spaces
from polymimic.envs.labels import OTHER_BEHAVIOUR  # one definition, shared with eval.metrics
from polymimic.envs.objects import ROD_RADIUS, rod_xml

TIP_HEIGHT = 0.02  # m, rod tip above the table (as in Push: capsule bottom 1 cm above it)
# The obstacle field: D3IL's pyramid (rows of 1, 2, 3 cylinders, lateral pitch 7.5 cm per
# level, radii 3 / 2.5 cm), turned to run away from the robot along +x with the rows 12 cm
# apart (D3IL: 18 cm) so that the whole field fits the arm's well-conditioned reach.
ROW_X = (0.43, 0.55, 0.67)  # m, x of each row's obstacle axes
ROW_Y = ((0.0,), (0.075, -0.075), (0.15, 0.0, -0.15))  # m, obstacle y per row, left (+y) first
ROW_RADIUS = (0.03, 0.025, 0.025)  # m, obstacle radius per row
OBSTACLE_HALF_HEIGHT = 0.05  # m: 10 cm tall, they touch the rod only (the arm is above)
FINISH_X = 0.73  # m: success once the tip's x reaches this line
# Contexts: the nominal start of the tip, a 2 (x) x 3 (y) grid; context k = 3 i + j.
START_X = (0.31, 0.33)
START_Y = (-0.06, 0.0, 0.06)
CONTEXTS = tuple((x, y) for x in START_X for y in START_Y)
START_JITTER = 0.01  # m, uniform per axis around the context's start
HOME_TIP = np.array([0.32, 0.0, TIP_HEIGHT])  # the arm's cached home; starts are solved from it
START_IK_ITERATIONS = 12  # IK iterations from home to a start (error < 1e-6 m, checked in tests)
MAX_STEP = 0.015  # m of target motion per control step at |action| = 1 (as in Push)
WORKSPACE_LOW = np.array([0.30, -0.28])
WORKSPACE_HIGH = np.array([0.76, 0.28])
_LOW, _HIGH = tuple(WORKSPACE_LOW.tolist()), tuple(WORKSPACE_HIGH.tolist())
# Flat obstacle table: (x, y, touch distance = obstacle radius + rod radius).
OBSTACLES = tuple(
    (x, y, r + ROD_RADIUS) for x, ys, r in zip(ROW_X, ROW_Y, ROW_RADIUS, strict=True) for y in ys
)


def gap_index(row: int, y: float) -> int:
    """Index of the gap of ``row`` at lateral position ``y``: 0 is leftmost (+y side).

    A row of n obstacles has n + 1 gaps; the index counts the row's obstacles whose axis
    lies to the left of (at larger y than) ``y``.
    """
    return sum(1 for obstacle_y in ROW_Y[row] if obstacle_y > y)


def behaviour_label(gaps: tuple[int, ...]) -> str:
    """The label of a path through gaps ``(g1, g2, g3)``, e.g. ``"0-2-3"``."""
    return "-".join(str(g) for g in gaps)


def _segment_point_distance(
    ax: float, ay: float, bx: float, by: float, px: float, py: float
) -> float:
    """Distance from point p to segment ab (scalars: cheaper than numpy for one pair)."""
    dx, dy = bx - ax, by - ay
    length_sq = dx * dx + dy * dy
    t = (
        0.0
        if length_sq < 1e-18
        else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / length_sq))
    )
    return math.hypot(ax + t * dx - px, ay + t * dy - py)


class AvoidEnv(ArmTaskEnv):
    """Move the rod tip past a field of fixed obstacles to a finish line without touching any.

    The reference is D3IL's Avoiding task: six cylinders in a pyramid of rows of 1, 2 and 3,
    24 distinct paths; the behaviour is the gap taken in each row.

    **Scene.** A 7-DOF Panda (base at the world origin, on the table top ``z = 0``) holds a
    vertical rod (capsule, radius 1 cm, 20 cm) whose tip is kept 2 cm above the table.
    Six fixed red cylinders, 10 cm tall, stand in three rows across the direction of travel
    (+x, away from the robot); "left" is +y, as seen from the robot base:

    | row | x (m) | obstacle y (m), left to right | radius (m) | gaps |
    |---|---|---|---|---|
    | 1 | 0.43 | 0 | 0.030 | 2 |
    | 2 | 0.55 | +0.075, -0.075 | 0.025 | 3 |
    | 3 | 0.67 | +0.15, 0, -0.15 | 0.025 | 4 |

    A green finish line is drawn at x = 0.73. The tip starts near x = 0.32, before row 1.
    Layout and radii are D3IL's (its rows are 18 cm apart; here 12 cm, so the field stays
    inside the region where the arm tracks within a few mm). Between rows a free band of
    4.5-5 cm (rod centre) lets the tip change gap, so every gap sequence is reachable.

    **Contexts** (``num_contexts = 6``, ``reset(options={"context": k})``; drawn from the
    seed when not given): context ``k = 3 i + j`` starts the tip at
    ``(START_X[i], START_Y[j])`` with ``START_X = (0.31, 0.33)``, ``START_Y = (-0.06, 0,
    0.06)`` (``CONTEXTS``). The seed adds uniform +-1 cm per axis; the arm is placed there
    at rest by inverse kinematics. Obstacles never move, so they are not observed.

    **Timing.** Physics timestep 2 ms (implicitfast), 25 substeps per control step, i.e.
    50 ms / 20 Hz control; ``max_episode_steps = 300`` (15 s). D3IL uses 1 ms x 35 substeps
    and 250 steps (8.75 s); 2 ms keeps the stiff position servos stable at half the cost.
    The limit leaves room for the slowest simulated operators (``operators/avoid.py``:
    the worse tier's successful demos take 170-180 steps on average, 1 in 10 over 230,
    with minimum-jerk movements, pauses before rows and corrections).

    **Actions** ``Box(-1, 1, (2,))``: the change of the desired tip position in x and y,
    scaled by 1.5 cm per step (D3IL: "delta desired xy"). The desired position is clipped
    to the workspace x in [0.30, 0.76], y in [-0.28, 0.28]; height and orientation are held
    by the damped least-squares IK controller.

    **Observations** (``Dict``, float32; 4 numbers, as D3IL's Avoiding):

    | key | size | meaning |
    |---|---|---|
    | ``tip_pos`` | 2 | measured rod tip x, y (m) |
    | ``tip_target`` | 2 | the controller's desired tip x, y (m) |

    **Touching an obstacle** is failure, as in D3IL. The obstacles are solid: the rod is
    stopped by them. An obstacle counts as touched when, during a control step, the straight
    path of the tip between its positions at the start and end of the step comes within
    ``obstacle radius + rod radius`` (the contact distance of two vertical axes) of the
    obstacle's axis, or when MuJoCo reports a rod-obstacle contact at the end of the step
    (which also catches a tilted rod). The flag latches (``info["collided"]``): the episode
    can no longer succeed. It is not ended early, because in this suite only success
    terminates; it runs to the time limit (a constant-zero-reward tail).

    **Success** (``info["success"]``, terminates the episode): the measured tip x reaches
    the finish line (x >= 0.73) and no obstacle was touched. **Reward**: 1 on the success
    step, else 0; ``info["rows_crossed"]`` counts the rows whose line the tip has crossed.

    **Behaviours** (``AvoidEnv.behaviours``, 24): ``"g1-g2-g3"``, the gap taken in rows 1,
    2 and 3, each counted from the left starting at 0 (row 1: 0..1, row 2: 0..2, row 3:
    0..3), e.g. ``"0-1-3"``: left of the first obstacle, between the two of row 2, right of
    all of row 3. Every one of the 2 x 3 x 4 sequences is physically possible. The label
    is decided from the tip's path: whenever the tip crosses a row's x (in either
    direction) the gap at the crossing point (y linearly interpolated between the step's
    start and end positions) is recorded for that row, overwriting an earlier crossing, so
    the label holds the *last* crossing of each row, the one the tip went through on its
    way to the finish. A successful episode gets ``"g1-g2-g3"``; any failure is ``other``.
    ``info["behaviour"]`` is present every step and final at episode end.
    """

    task_id: ClassVar[str] = "polymimic/Avoid-v1"
    behaviours: ClassVar[tuple[str, ...]] = tuple(
        behaviour_label((g1, g2, g3)) for g1 in range(2) for g2 in range(3) for g3 in range(4)
    )
    max_episode_steps: ClassVar[int] = 300
    num_contexts: ClassVar[int] = len(CONTEXTS)
    # previous tip x, y (for crossings), gap per row (-1: not crossed), collided, success
    task_state_size: ClassVar[int] = 2 + len(ROW_X) + 2

    def __init__(self, **kwargs: Any) -> None:
        self._prev_tip = [0.0, 0.0]
        self._gaps = [-1] * len(ROW_X)
        self._collided = False
        self._success = False
        super().__init__(**kwargs)
        self._rod_geom = self.model.geom("rod").id
        self._obstacle_geoms = frozenset(
            self.model.geom(f"obstacle_{row}_{k}").id
            for row, ys in enumerate(ROW_Y)
            for k in range(len(ys))
        )

    # ----------------------------------------------------------------- model
    def _task_xml(self) -> tuple[str, str]:
        obstacles = "".join(
            f'<geom name="obstacle_{row}_{k}" type="cylinder" '
            f'pos="{ROW_X[row]} {y} {OBSTACLE_HALF_HEIGHT}" '
            f'size="{ROW_RADIUS[row]} {OBSTACLE_HALF_HEIGHT}" rgba="0.85 0.15 0.15 1"/>'
            for row, ys in enumerate(ROW_Y)
            for k, y in enumerate(ys)
        )
        finish = (
            f'<geom name="finish_line" type="box" pos="{FINISH_X} 0 0.0005" '
            f'size="0.005 {WORKSPACE_HIGH[1]} 0.0005" rgba="0.1 0.8 0.2 0.7" '
            f'contype="0" conaffinity="0"/>'
        )
        return rod_xml(), obstacles + finish

    def _home_tip_pos(self) -> np.ndarray:
        return HOME_TIP

    def _observation_space(self) -> gym.spaces.Dict:
        return vector_spaces({"tip_pos": 2, "tip_target": 2})

    def _action_space(self) -> gym.spaces.Box:
        return unit_action_space(2)

    # ----------------------------------------------------------------- episode
    def _reset_task(self, options: dict[str, Any]) -> None:
        jitter = self.np_random.uniform(-START_JITTER, START_JITTER, 2)
        start = np.array([*(np.array(CONTEXTS[self.context]) + jitter), TIP_HEIGHT])
        self._place_tip(start)
        self._prev_tip = list(self.tip_xy())
        self._gaps = [-1] * len(ROW_X)
        self._collided = False
        self._success = False

    def _place_tip(self, tip: np.ndarray) -> None:
        """Put the arm at rest with its tip at ``tip`` (IK from home), and aim there."""
        data, qpos = self.data, self.arm.qpos
        for _ in range(START_IK_ITERATIONS):
            mujoco.mj_kinematics(self.model, data)
            data.qpos[qpos] = self.controller.joint_targets(data, tip, TOOL_DOWN)
        mujoco.mj_kinematics(self.model, data)
        data.ctrl[:7] = data.qpos[qpos]
        self.target_pos = tip.copy()

    def _apply_action(self, action: list[float]) -> None:
        step_target(self.target_pos, action, MAX_STEP, _LOW, _HIGH)

    def tip_xy(self) -> tuple[float, float]:
        """The measured tip x, y."""
        x, y, _ = self.measured_tip.tolist()
        return x, y

    def _update_task(self) -> tuple[float, bool, dict[str, Any]]:
        (x0, y0), (x1, y1, _) = self._prev_tip, self.measured_tip.tolist()
        for row, row_x in enumerate(ROW_X):
            if (x0 < row_x) != (x1 < row_x):  # crossed the row's line this step
                y = y0 + (row_x - x0) / (x1 - x0) * (y1 - y0)
                self._gaps[row] = gap_index(row, y)
        if not self._collided:
            self._collided = self._touched(x0, y0, x1, y1)
        self._prev_tip = [x1, y1]
        self._success = x1 >= FINISH_X and not self._collided
        info = {"collided": self._collided, "rows_crossed": len(ROW_X) - self._gaps.count(-1)}
        return float(self._success), self._success, info

    def _touched(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Whether the rod touched an obstacle during the step (see the class docstring)."""
        low_x, high_x = (x0, x1) if x0 < x1 else (x1, x0)
        for ox, oy, reach in OBSTACLES:
            # Cheap reject first: most steps are far from every obstacle.
            if low_x - reach < ox < high_x + reach:
                if _segment_point_distance(x0, y0, x1, y1, ox, oy) < reach:
                    return True
        if self.data.ncon:  # rare: the rod touches nothing else (the arm does not collide)
            contacts = self.data.contact
            for g1, g2 in zip(contacts.geom1.tolist(), contacts.geom2.tolist(), strict=True):
                other = g2 if g1 == self._rod_geom else g1 if g2 == self._rod_geom else -1
                if other in self._obstacle_geoms:
                    return True
        return False

    def behaviour(self) -> str:
        if not self._success or min(self._gaps) < 0:
            return OTHER_BEHAVIOUR
        return behaviour_label(tuple(self._gaps))

    def _get_obs(self) -> dict[str, np.ndarray]:
        # One float32 array from Python floats, sliced into the keys: cheaper than a
        # slice and a cast per key.
        x, y, _ = self.measured_tip.tolist()
        target_x, target_y, _ = self.target_pos.tolist()
        values = np.array((x, y, target_x, target_y), dtype=np.float32)
        return {"tip_pos": values[:2], "tip_target": values[2:]}

    # ----------------------------------------------------------------- replay
    def _task_state(self) -> np.ndarray:
        return np.array([*self._prev_tip, *self._gaps, float(self._collided), float(self._success)])

    def _set_task_state(self, task_state: np.ndarray) -> None:
        rows = len(ROW_X)
        self._prev_tip = [float(task_state[0]), float(task_state[1])]
        self._gaps = [int(g) for g in task_state[2 : 2 + rows]]
        self._collided = bool(task_state[2 + rows])
        self._success = bool(task_state[3 + rows])
