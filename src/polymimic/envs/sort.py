"""``polymimic/Sort{2,4,6}-v1``: push red and blue blocks into their colour's zone (D3IL)."""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from polymimic.envs.base import ArmTaskEnv, step_target, unit_action_space, vector_spaces
from polymimic.envs.labels import OTHER_BEHAVIOUR  # one definition, shared with eval.metrics
from polymimic.envs.objects import cube_xml, floor_patch_xml, rod_xml, yaw_quat

COLOURS = ("R", "B")  # the letters of a behaviour label: red, blue
COLOUR_NAMES = {"R": "red", "B": "blue"}
BLOCK_HALF = 0.02  # m, half the cube's edge (4 cm cubes: room to pass between rows)
BLOCK_MASS = 0.2  # kg
BLOCK_RGBA = {"R": "0.85 0.15 0.15 1", "B": "0.15 0.3 0.85 1"}
# Start slots: six positions in two staggered columns (y = +-7 cm), 7.8 cm apart in x, so
# a block pushed sideways along its own row passes between the other column's blocks.
# Slots 0 and 5 keep 5-6 cm from the workspace's x edges, so the rod can get to the outer
# side of a block that drifts off its row and steer it back (v1; v0: 0.33 + 0.078 k with
# the edge at 0.76, where a drifting end block was lost beyond the rod's reach).
SLOT_X = tuple(round(0.35 + 0.078 * k, 3) for k in range(6))
SLOT_Y = tuple(0.07 if k % 2 == 0 else -0.07 for k in range(6))
# The slots each variant uses: windows of consecutive slots (Sort2 has two windows).
SLOT_WINDOWS = {2: ((1, 2), (3, 4)), 4: ((1, 2, 3, 4),), 6: ((0, 1, 2, 3, 4, 5),)}
# Zones: the red zone is the strip y in [0.18, 0.42] (the robot's left), the blue zone its
# mirror y in [-0.42, -0.18]; both span x in [0.24, 0.84], every row and 4-6 cm beyond the
# rod's reach at either end (v1; v0: [0.28, 0.78]): a block that a person's push lets
# drift along x still counts once it is on its colour's side.
ZONE_X = (0.24, 0.84)  # m
# The outer bound is beyond the rod's reach (|y| <= 0.33): a block pushed a little past the
# strip's painted edge is still on its colour's side (v1; v0: 0.34).
ZONE_Y = (0.18, 0.42)  # m, |y| range; the sign is the colour's side
ZONE_SIDE = {"R": 1.0, "B": -1.0}
ZONE_RGBA = {"R": "0.9 0.45 0.45 0.5", "B": "0.45 0.55 0.95 0.5"}
BLOCK_JITTER = 0.01  # m, uniform per axis around the slot
YAW_JITTER = 0.15  # rad, uniform around 0
TIP_HEIGHT = 0.02  # m, rod axis end above the table (capsule bottom 1 cm above it)
MAX_STEP = 0.015  # m of target motion per control step at |action| = 1
# The desired tip is clipped to this box. The arm reaches all of it except the far corners:
# at x = 0.80 it reaches |y| <= 0.2 (measured: 0.785 at |y| = 0.2, 0.76 at |y| = 0.3), which
# no push needs (blocks are delivered 22.5 cm from the centre line). x < 0.30 is out of
# reach near y = 0 (the arm's base).
WORKSPACE_LOW = np.array([0.30, -0.33])
WORKSPACE_HIGH = np.array([0.80, 0.33])
_LOW, _HIGH = tuple(WORKSPACE_LOW.tolist()), tuple(WORKSPACE_HIGH.tolist())
HOME_TIP = np.array([0.30, 0.0, TIP_HEIGHT])


def colour_sequences(num_blocks: int) -> tuple[str, ...]:
    """All distinct orders of ``num_blocks / 2`` ``R`` and as many ``B``, sorted.

    These are both the behaviour labels (arrival orders) and the colour patterns of the
    start slots: 2 for two blocks, 6 for four, 20 for six.
    """
    half = num_blocks // 2
    return tuple(sorted({"".join(p) for p in itertools.permutations("R" * half + "B" * half)}))


def sort_contexts(num_blocks: int) -> tuple[tuple[tuple[int, ...], str], ...]:
    """The context table: ``(slots, pattern)``; slot ``slots[j]`` holds colour ``pattern[j]``.

    Every slot window of the variant (``SLOT_WINDOWS``) combined with every colour pattern.
    """
    return tuple(
        (window, pattern)
        for window in SLOT_WINDOWS[num_blocks]
        for pattern in colour_sequences(num_blocks)
    )


def block_names(num_blocks: int) -> tuple[str, ...]:
    """Body names in index order: ``red_0 .. red_{k-1}``, then ``blue_0 .. blue_{k-1}``."""
    half = num_blocks // 2
    return tuple(f"{COLOUR_NAMES[c]}_{i}" for c in COLOURS for i in range(half))


class SortEnv(ArmTaskEnv):
    """Push red and blue blocks, one at a time, into the zone of their colour.

    The reference is D3IL's Sorting task (2, 4 or 6 blocks, behaviour = the colour order in
    which blocks reach their boxes). The variants differ only in the class attributes
    ``num_blocks``, ``max_episode_steps`` and the derived contexts and labels:
    ``Sort2Env`` (1 red + 1 blue), ``Sort4Env`` (2 + 2), ``Sort6Env`` (3 + 3).

    **Scene.** The arm and the vertical rod of ``PushEnv`` (capsule radius 1 cm, tip held
    2 cm above the table, slippery friction 0.05 with geom priority). Blocks are 4 cm cubes
    (0.2 kg, friction 0.5). Six start slots lie in two staggered columns: slot ``k`` is at
    ``x = 0.35 + 0.078 k``, ``y = +0.07`` for even and ``-0.07`` for odd ``k`` (``SLOT_X``,
    ``SLOT_Y``); no two slots share a row, so a block pushed straight sideways passes
    between the other column's blocks. The **red zone** is the strip ``y in [0.18, 0.42]``
    (the robot's left), the **blue zone** its mirror ``y in [-0.42, -0.18]``; both span
    ``x in [0.24, 0.84]``, beyond the rod's reach at either end (v1: a block a person's
    push lets drift still counts once it is on its colour's side; v0's strips were
    ``[0.18, 0.34] x [0.28, 0.78]``). The rod starts at (0.30, 0). D3IL instead puts both boxes
    (about 20 x 19 cm) on the robot's left, red near and blue far, with the blocks in a
    2 x 3 grid; here the zones face each other across the slots, so every block's straight
    sideways push into its zone is collision-free whatever the order, and every colour
    order can be demonstrated from every context.

    **Contexts** (``sort_contexts(num_blocks)``, ``reset(options={"context": k})``; drawn
    from the seed when not given): a context is a window of start slots and a colour
    pattern over it (the ``j``-th red block takes the ``j``-th ``R`` slot). Sort2: windows
    (1, 2) and (3, 4) x patterns ``BR``, ``RB`` = 4 contexts; Sort4: slots 1-4 x the 6
    patterns; Sort6: slots 0-5 x the 20 patterns. The seed adds uniform +-1 cm per axis and
    +-0.15 rad yaw per block.

    **Timing.** Physics timestep 2 ms (implicitfast), 25 substeps per control step
    (50 ms, 20 Hz). D3IL uses 1 ms x 35 substeps; 2 ms keeps the position servos stable at
    half the cost. ``max_episode_steps``: Sort2 500 (25 s), Sort4 1000 (50 s), Sort6
    1500 (75 s): 250 steps per pair of blocks, about 1.4x what the slowest ("worse")
    human-like operators of the named datasets need (about 360 steps per pair; the better
    ones about 200). v0's one-step moves allowed 250 / 500 / 750.

    **Actions** ``Box(-1, 1, (2,))``: the change of the desired tip x, y, scaled by 1.5 cm
    per step (D3IL: "delta desired xy"); the desired position is clipped to x in
    [0.30, 0.80], y in [-0.33, 0.33] (v0: x up to 0.76). The arm falls short of the box's
    far corners (x > 0.77 with |y| > 0.25, where no push goes); there the measured tip
    stops short of the desired one.

    **Observations** (``Dict``, float32; ``k = num_blocks / 2``):

    | key | size | meaning |
    |---|---|---|
    | ``tip_pos`` | 2 | measured rod tip x, y (m) |
    | ``tip_target`` | 2 | the controller's desired tip x, y (m) |
    | ``red_blocks`` | 4k | per red block, in index order: x, y (m), sin 4θ, cos 4θ (yaw θ) |
    | ``blue_blocks`` | 4k | as ``red_blocks`` for the blue blocks |

    Block ``red_i`` (body name) is entry ``i`` of ``red_blocks``; its start slot depends
    on the context. sin/cos of 4θ are continuous across the cube's 90° symmetry.

    **Success** (``info["success"]``, terminates the episode): every block's centre lies
    inside its own colour's zone (the closed rectangle above) at the same step, and no
    block's centre has ever been inside the other colour's zone. A block that entered the
    wrong zone makes the episode a failure even if it is pushed out again (the episode then
    runs to the time limit). **Reward**: 1 on the success step, else 0;
    ``info["blocks_sorted"]`` counts blocks inside their own zone, ``info["blocks_missorted"]``
    those inside the other zone now.

    **Behaviours** (``behaviours``, ``colour_sequences(num_blocks)``): the colours of the
    blocks in the order they *arrived* in their own zone, e.g. ``RB``/``BR`` for Sort2, the
    6 orders of ``RRBB`` for Sort4, the 20 of ``RRRBBB`` for Sort6. A block arrives at the
    first step its centre is inside its own zone (blocks arriving at the same step are
    ordered by index); the order is kept in the task state, so replay is exact. A successful
    episode gets its arrival sequence; every other episode is ``other``.
    ``info["behaviour"]`` is present every step and final at episode end.
    """

    num_blocks: ClassVar[int] = 2  # set by each registered variant below

    def __init__(self, **kwargs: Any) -> None:
        n = self.num_blocks
        self._contexts = sort_contexts(n)
        self._names = block_names(n)
        self._colours = "".join(c * (n // 2) for c in COLOURS)  # colour letter per index
        self._sides = [ZONE_SIDE[c] for c in self._colours]  # +1: zone at +y (red)
        self._order = np.full(n, -1.0)  # block indices in arrival order, -1 = not yet
        self._arrived = [False] * n
        self._missorted = False
        self._success = False
        super().__init__(**kwargs)
        adr = np.array([self.model.jnt_qposadr[self.model.joint(b).id] for b in self._names])
        # qpos indices of every block's (x, y, z, qw, qx, qy, qz), one fancy index per step.
        self._pose_index = adr[:, None] + np.arange(7)[None, :]
        self._xy_index = self._pose_index[:, :2]

    # ------------------------------------------------------------------ model
    def _task_xml(self) -> tuple[str, str]:
        zones = "".join(
            floor_patch_xml(
                f"{COLOUR_NAMES[c]}_zone",
                (0.5 * sum(ZONE_X), ZONE_SIDE[c] * 0.5 * sum(ZONE_Y)),
                (0.5 * (ZONE_X[1] - ZONE_X[0]), 0.5 * (ZONE_Y[1] - ZONE_Y[0])),
                ZONE_RGBA[c],
            )
            for c in COLOURS
        )
        blocks = "".join(
            cube_xml(name, BLOCK_HALF, BLOCK_MASS, BLOCK_RGBA[colour])
            for name, colour in zip(self._names, self._colours, strict=True)
        )
        return rod_xml(), zones + blocks

    def _home_tip_pos(self) -> np.ndarray:
        return HOME_TIP

    def _observation_space(self) -> gym.spaces.Dict:
        per_colour = 4 * (self.num_blocks // 2)
        return vector_spaces(
            {"tip_pos": 2, "tip_target": 2, "red_blocks": per_colour, "blue_blocks": per_colour}
        )

    def _action_space(self) -> gym.spaces.Box:
        return unit_action_space(2)

    # ------------------------------------------------------------------ episode
    def _reset_task(self, options: dict[str, Any]) -> None:
        slots, pattern = self._contexts[self.context]
        next_of_colour = {c: 0 for c in COLOURS}
        half = self.num_blocks // 2
        for slot, colour in zip(slots, pattern, strict=True):
            index = COLOURS.index(colour) * half + next_of_colour[colour]
            next_of_colour[colour] += 1
            jitter = self.np_random.uniform(-BLOCK_JITTER, BLOCK_JITTER, 2)
            yaw = self.np_random.uniform(-YAW_JITTER, YAW_JITTER)
            pose = (SLOT_X[slot] + jitter[0], SLOT_Y[slot] + jitter[1], BLOCK_HALF, *yaw_quat(yaw))
            self.data.qpos[self._pose_index[index]] = pose
        self._order[:] = -1.0
        self._arrived = [False] * self.num_blocks
        self._missorted = False
        self._success = False

    def _apply_action(self, action: list[float]) -> None:
        step_target(self.target_pos, action, MAX_STEP, _LOW, _HIGH)

    def zone_membership(self) -> tuple[list[bool], list[bool]]:
        """(inside own zone, inside the other colour's zone), one bool per block index."""
        # Plain floats: for at most six blocks this beats a dozen small numpy calls.
        x_low, x_high = ZONE_X
        y_low, y_high = ZONE_Y
        own, wrong = [], []
        for (x, y), side in zip(self.data.qpos[self._xy_index].tolist(), self._sides, strict=True):
            in_x = x_low <= x <= x_high
            own.append(in_x and y_low <= side * y <= y_high)
            wrong.append(in_x and y_low <= -side * y <= y_high)
        return own, wrong

    def _update_task(self) -> tuple[float, bool, dict[str, Any]]:
        own, wrong = self.zone_membership()
        for index, inside in enumerate(own):  # same-step arrivals: lower index first
            if inside and not self._arrived[index]:
                self._order[sum(self._arrived)] = index
                self._arrived[index] = True
        self._missorted = self._missorted or any(wrong)
        self._success = all(own) and not self._missorted
        extras = {"blocks_sorted": sum(own), "blocks_missorted": sum(wrong)}
        return float(self._success), self._success, extras

    def arrival_order(self) -> str:
        """Colours of the blocks that have arrived in their own zone, in arrival order."""
        return "".join(self._colours[int(i)] for i in self._order if i >= 0)

    def behaviour(self) -> str:
        if not self._success:
            return OTHER_BEHAVIOUR
        return self.arrival_order()

    # ------------------------------------------------------------------ observation
    def _get_obs(self) -> dict[str, np.ndarray]:
        # Plain floats and math per block, then one array: cheaper than a chain of small
        # numpy calls for at most six blocks. yaw = 2 atan2(qz, qw), so 4 yaw = 8 atan2.
        rows = []
        for x, y, _, qw, _, _, qz in self.data.qpos[self._pose_index].tolist():
            four_yaw = 8.0 * math.atan2(qz, qw)
            rows.append((x, y, math.sin(four_yaw), math.cos(four_yaw)))
        blocks = np.array(rows, dtype=np.float32)
        half = self.num_blocks // 2
        return {
            "tip_pos": self.measured_tip[:2].astype(np.float32),
            "tip_target": self.target_pos[:2].astype(np.float32),
            "red_blocks": blocks[:half].reshape(-1),
            "blue_blocks": blocks[half:].reshape(-1),
        }

    # ------------------------------------------------------------------ replay
    def _task_state(self) -> np.ndarray:
        return np.concatenate([self._order, [float(self._missorted), float(self._success)]])

    def _set_task_state(self, task_state: np.ndarray) -> None:
        n = self.num_blocks
        self._order[:] = task_state[:n]
        self._arrived = [index in self._order for index in range(n)]
        self._missorted = bool(task_state[n])
        self._success = bool(task_state[n + 1])


class Sort2Env(SortEnv):
    """Sorting with one red and one blue block: 2 behaviours, 4 contexts (see ``SortEnv``)."""

    task_id: ClassVar[str] = "polymimic/Sort2-v1"
    num_blocks: ClassVar[int] = 2
    behaviours: ClassVar[tuple[str, ...]] = colour_sequences(2)
    num_contexts: ClassVar[int] = len(sort_contexts(2))
    max_episode_steps: ClassVar[int] = 500
    task_state_size: ClassVar[int] = 2 + 2  # arrival order, missorted, success


class Sort4Env(SortEnv):
    """Sorting with two red and two blue blocks: 6 behaviours, 6 contexts (see ``SortEnv``)."""

    task_id: ClassVar[str] = "polymimic/Sort4-v1"
    num_blocks: ClassVar[int] = 4
    behaviours: ClassVar[tuple[str, ...]] = colour_sequences(4)
    num_contexts: ClassVar[int] = len(sort_contexts(4))
    max_episode_steps: ClassVar[int] = 1000
    task_state_size: ClassVar[int] = 4 + 2


class Sort6Env(SortEnv):
    """Sorting with three red and three blue blocks: 20 behaviours and contexts (``SortEnv``)."""

    task_id: ClassVar[str] = "polymimic/Sort6-v1"
    num_blocks: ClassVar[int] = 6
    behaviours: ClassVar[tuple[str, ...]] = colour_sequences(6)
    num_contexts: ClassVar[int] = len(sort_contexts(6))
    max_episode_steps: ClassVar[int] = 1500
    task_state_size: ClassVar[int] = 6 + 2
