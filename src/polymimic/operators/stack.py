"""Scripted operators for ``polymimic/Stack-v0``.

The behaviour label is the bottom-to-top colour order to build (e.g. ``"red-green-blue"``).
The script is closed-loop and re-plans every step from the observation alone: the next
cube to handle is the first one of the order that is not yet correctly stacked (so a
stack that was knocked over is rebuilt), and each cube goes through the phases
approach -> descend -> close -> transport -> lower -> release, every goal recomputed
from the observed cube and stack positions. Styles change the route (``"vertical"``:
up to a cruise height, across, straight down; ``"direct"``: across at the lowest height
that clears the other cubes, then down -- the incompatible pair of the compatibility
paper), speeds and pauses; skill adds time-correlated aim errors.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np

from polymimic.envs.gripper import PAD_HALF
from polymimic.envs.stack import (
    BLOCK_HALF,
    BLOCKS,
    MAX_STEP,
    STACK_XY_TOL,
    STACK_Z_TOL,
    TARGET_CENTRE,
    TARGET_HALF,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
)
from polymimic.operators.base import Operator, Skill, SkillNoise, Strategy

ROUTES = ("vertical", "direct")
PHASES = ("approach", "descend", "close", "transport", "lower", "release", "done")
REACHED = 0.006  # m: a goal this close counts as reached
PLACE_GAP = 0.003  # m between the carried cube and the one below when it is let go
GRASP_MIN_Z = 0.018  # m, lowest grasp centre (pads stay 6 mm above the table)
PHASE_TIMEOUT = 120  # steps in one phase before the script starts the cube over
# Half extents (x, y) of the gripper's footprint around the tip: open fingers reach 5 cm
# to either side in y; pads are 1 cm either side in x.
OPEN_FOOTPRINT = (PAD_HALF[0] + 0.002, 0.052)
OBSTACLE_MARGIN = 0.008  # m added around obstacles' footprints
LOOKAHEAD = 0.06  # m of the path ahead checked for obstacles
# The vertical route goes straight down once this close horizontally (m); aim corrections
# below it happen on the way down instead of climbing back to the cruise height.
DOWN_RADIUS = 0.03


@dataclasses.dataclass(frozen=True)
class StackStyle:
    """How an operator executes a stacking order.

    Attributes:
        name: label stored with each demo.
        route: ``"vertical"`` (rise to ``cruise_height``, move across, go straight down)
            or ``"direct"`` (move across and down together, only as high as the other
            cubes require).
        speed: tip travel per step with an empty gripper (m).
        carry_speed: tip travel per step while carrying a cube (m).
        fine_speed: tip travel per step in the final descents to grasp and to place (m).
        cruise_height: tip height of the vertical route's crossings (m).
        clearance: vertical gap kept above other cubes while crossing them (m).
        pre_gap: gap between the pads' bottom and the cube's top from which the grasp
            descent starts (m).
        grip_steps: steps the fingers are given to close before lifting.
        pause_steps: steps of stillness after each release.
    """

    name: str
    route: str = "direct"
    speed: float = 0.013
    carry_speed: float = 0.011
    fine_speed: float = 0.006
    cruise_height: float = 0.20
    clearance: float = 0.015
    pre_gap: float = 0.012
    grip_steps: int = 6
    pause_steps: int = 0

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route={self.route!r} is not one of {ROUTES}")


def _cubes(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Cube centres (3, 3) in ``BLOCKS`` order."""
    return np.stack([obs[f"{b}_block"][:3] for b in BLOCKS]).astype(np.float64)


def stacked_prefix(cubes: np.ndarray, plan: list[int]) -> int:
    """How many cubes of ``plan`` (bottom first) already stand correctly on the target.

    The env's success geometry (target square, 2 cm offsets, resting heights).
    """
    for level, index in enumerate(plan):
        x, y, z = cubes[index]
        half = BLOCK_HALF[BLOCKS[index]]
        if level == 0:
            ok = (
                np.all(np.abs(cubes[index, :2] - TARGET_CENTRE) <= TARGET_HALF)
                and abs(z - half) <= STACK_Z_TOL
            )
        else:
            below = plan[level - 1]
            top = cubes[below, 2] + BLOCK_HALF[BLOCKS[below]]
            ok = (
                np.hypot(x - cubes[below, 0], y - cubes[below, 1]) <= STACK_XY_TOL
                and abs(z - top - half) <= STACK_Z_TOL
            )
        if not ok:
            return level
    return len(plan)


class _View(NamedTuple):
    """What a phase handler sees this step."""

    tip: np.ndarray  # measured grasp centre (3,)
    target: np.ndarray  # the controller's target (3,)
    cubes: np.ndarray  # cube centres (3, 3)
    opening: float  # between the pads (m)
    drift: np.ndarray  # the skill's current aim offset in x, y (2,)


class StackScript:
    """One episode of stacking the cubes in the bottom-to-top order ``behaviour``."""

    def __init__(self, operator: Operator, behaviour: str, rng: np.random.Generator) -> None:
        names = behaviour.split("-")
        if sorted(names) != sorted(BLOCKS):
            raise ValueError(f"{behaviour!r} is not a stacking order of {BLOCKS}")
        self.plan = [BLOCKS.index(n) for n in names]
        self.style: StackStyle = operator.style
        self.noise = SkillNoise(operator.skill, rng)
        self.phase = "approach"
        self.phase_steps = 0
        self.pause = 0
        self.current = self.plan[0]

    # ------------------------------------------------------------------ acting
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        drift = self.noise.step_drift()
        self.phase_steps += 1
        if self.pause > 0:
            self.pause -= 1
            return self._action(np.zeros(3), closed=self.phase in ("close", "transport", "lower"))
        view = _View(
            tip=obs["tip_pos"].astype(np.float64),
            target=obs["tip_target"].astype(np.float64),
            cubes=_cubes(obs),
            opening=float(obs["gripper"][0]),
            drift=drift,
        )
        if self.phase in ("approach", "done"):
            level = stacked_prefix(view.cubes, self.plan)
            if level == len(self.plan):
                return self._finish(view)
            self._set_phase("approach")
            self.current = self.plan[level]
        if self.phase_steps > PHASE_TIMEOUT:
            self._set_phase("approach")  # stuck: open and start this cube over
        handler = getattr(self, f"_{self.phase}")
        return handler(view)

    def _set_phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase, self.phase_steps = phase, 0

    def _action(self, step: np.ndarray, closed: bool) -> np.ndarray:
        move = np.clip(step / MAX_STEP, -1.0, 1.0)
        return np.append(move, 1.0 if closed else -1.0).astype(np.float32)

    # ------------------------------------------------------------------ phases
    def _approach(self, view: _View) -> np.ndarray:
        """Open gripper to just above the cube (the route keeps clear of the others)."""
        cube = view.cubes[self.current]
        lift = BLOCK_HALF[BLOCKS[self.current]] + PAD_HALF[2] + self.style.pre_gap
        goal = cube + (view.drift[0], view.drift[1], lift)
        offset = view.tip - goal
        if np.hypot(offset[0], offset[1]) < REACHED and abs(offset[2]) < 2 * REACHED:
            self._set_phase("descend")
        step = self._route(view.target, goal, view.cubes, self._others(), OPEN_FOOTPRINT,
                           PAD_HALF[2], self.style.speed)
        return self._action(step, closed=False)

    def _descend(self, view: _View) -> np.ndarray:
        cube = view.cubes[self.current]
        goal = np.array([*(cube[:2] + view.drift), max(cube[2], GRASP_MIN_Z)])
        if np.linalg.norm(view.tip - goal) < 0.5 * REACHED:
            self._set_phase("close")
        return self._action(_bounded(goal - view.target, self.style.fine_speed), closed=False)

    def _close(self, view: _View) -> np.ndarray:
        if self.phase_steps >= self.style.grip_steps:
            self._set_phase("transport")
        return self._action(np.zeros(3), closed=True)

    def _holding(self, view: _View) -> bool:
        """The current cube sits between the pads, which stopped at its faces."""
        offset = view.cubes[self.current] - view.tip
        half = BLOCK_HALF[BLOCKS[self.current]]
        return (
            np.hypot(offset[0], offset[1]) < 0.02
            and abs(offset[2]) < 0.02
            and view.opening > 2 * half - 0.008
        )

    def _place_point(self, view: _View) -> np.ndarray:
        """Where the carried cube's centre goes: just above its support, plus the drift."""
        level = self.plan.index(self.current)
        half = BLOCK_HALF[BLOCKS[self.current]]
        if level == 0:
            centre, z = TARGET_CENTRE, half + PLACE_GAP
        else:
            below = view.cubes[self.plan[level - 1]]
            centre = below[:2]
            z = below[2] + BLOCK_HALF[BLOCKS[self.plan[level - 1]]] + half + PLACE_GAP
        return np.array([*(centre + view.drift), z])

    def _transport(self, view: _View) -> np.ndarray:
        """Carry the cube to just above its place (in cube coordinates: the cube may sit a
        few mm off the grasp centre; the target moves by the same displacement)."""
        if not self._holding(view):
            self._set_phase("approach")  # dropped it: pick it up again
            return self._action(np.zeros(3), closed=False)
        cube = view.cubes[self.current]
        above = self._place_point(view) + (0.0, 0.0, self.style.clearance)
        offset = cube - above
        if np.hypot(offset[0], offset[1]) < REACHED and abs(offset[2]) < 2 * REACHED:
            self._set_phase("lower")
        half = BLOCK_HALF[BLOCKS[self.current]]
        footprint = (half + 0.004, half + 2 * PAD_HALF[1] + 0.002)
        step = self._route(cube, above, view.cubes, self._others(), footprint, half,
                           self.style.carry_speed)
        return self._action(step, closed=True)

    def _lower(self, view: _View) -> np.ndarray:
        if not self._holding(view):
            self._set_phase("approach")
            return self._action(np.zeros(3), closed=False)
        error = self._place_point(view) - view.cubes[self.current]
        placed = np.hypot(error[0], error[1]) < 0.004 and abs(error[2]) < 0.002
        if placed or self.phase_steps > 40:  # > 40: resting on something, let go anyway
            self._set_phase("release")
            self.pause = self.noise.pause_length(0)
        return self._action(_bounded(error, self.style.fine_speed), closed=True)

    def _release(self, view: _View) -> np.ndarray:
        half = BLOCK_HALF[BLOCKS[self.current]]
        if view.opening > 2 * half + 0.015 and self.phase_steps >= 3:
            self._set_phase("approach")
            self.pause = self.noise.pause_length(self.style.pause_steps)
        return self._action(np.zeros(3), closed=False)

    def _finish(self, view: _View) -> np.ndarray:
        """All stacked: lift the open gripper clear of the stack and wait."""
        self._set_phase("done")
        clear = float(np.max(view.cubes[:, 2])) + 0.06
        step = np.zeros(3)
        if view.target[2] < clear:
            step[2] = min(self.style.speed, clear - view.target[2])
        return self._action(step, closed=False)

    def _others(self) -> list[int]:
        return [i for i in range(len(BLOCKS)) if i != self.current]

    # ------------------------------------------------------------------ routing
    def _route(
        self,
        start: np.ndarray,
        goal: np.ndarray,
        cubes: np.ndarray,
        obstacles: list[int],
        footprint: tuple[float, float],
        depth: float,
        speed: float,
    ) -> np.ndarray:
        """One step from ``start`` towards ``goal`` that keeps clear of other cubes.

        ``footprint`` is the half extent (x, y) of what moves, ``depth`` how far it
        reaches below the tip. The vertical route rises to the cruise height before
        moving across; the direct route moves straight, rising only where a cube in the
        way demands it.
        """
        delta = goal - start
        across = float(np.hypot(delta[0], delta[1]))
        if self.style.route == "vertical" and across > DOWN_RADIUS:
            cruise = max(self.style.cruise_height, goal[2])
            if start[2] < cruise - 0.004:
                return np.array([0.0, 0.0, min(speed, cruise - start[2])])
            delta = np.array([delta[0], delta[1], cruise - start[2]])
        step = _bounded(delta, speed)
        ahead = start[:2] + (delta[:2] / max(across, 1e-9)) * min(across, LOOKAHEAD)
        needed = self._clear_height(start[:2], ahead, cubes, obstacles, footprint, depth)
        if start[2] + step[2] < needed:
            if start[2] < needed - 0.002:  # too low to cross: rise first
                return np.array([0.0, 0.0, min(speed, needed - start[2])])
            step[2] = needed - start[2]
        return step

    def _clear_height(
        self,
        start: np.ndarray,
        end: np.ndarray,
        cubes: np.ndarray,
        obstacles: list[int],
        footprint: tuple[float, float],
        depth: float,
    ) -> float:
        """Lowest tip height that clears every obstacle cube met on the path start->end."""
        needed = float(WORKSPACE_LOW[2])
        samples = np.linspace(0.0, 1.0, 7)[:, None] * (end - start) + start
        for index in obstacles:
            centre = cubes[index]
            half = BLOCK_HALF[BLOCKS[index]] * 1.15 + OBSTACLE_MARGIN  # yawed cubes: wider
            near = (np.abs(samples[:, 0] - centre[0]) < footprint[0] + half) & (
                np.abs(samples[:, 1] - centre[1]) < footprint[1] + half
            )
            if near.any():
                top = centre[2] + BLOCK_HALF[BLOCKS[index]]
                needed = max(needed, top + depth + self.style.clearance)
        return min(needed, float(WORKSPACE_HIGH[2]))


def _bounded(step: np.ndarray, speed: float) -> np.ndarray:
    norm = float(np.linalg.norm(step))
    return step * (speed / norm) if norm > speed else step


def make_stack_script(
    operator: Operator, behaviour: str, rng: np.random.Generator
) -> StackScript:
    return StackScript(operator, behaviour, rng)


def _prefer(*labels: str) -> dict[str, float]:
    return {label: 1.0 for label in labels}


_ORDERS = tuple("-".join(order) for order in itertools.permutations(BLOCKS))
STACK_STRATEGIES = {
    "uniform": Strategy("uniform", _prefer(*_ORDERS)),
    "red_bottom": Strategy("red_bottom", _prefer(*(o for o in _ORDERS if o.startswith("red")))),
    "blue_top": Strategy("blue_top", _prefer(*(o for o in _ORDERS if o.endswith("blue")))),
    "large_first": Strategy("large_first", _prefer("red-green-blue")),
}
STACK_STYLES = {
    "direct_fast": StackStyle("direct_fast", route="direct", speed=0.013, carry_speed=0.011),
    "vertical_slow": StackStyle(
        "vertical_slow", route="vertical", speed=0.009, carry_speed=0.007, fine_speed=0.004,
        pre_gap=0.04, grip_steps=8, pause_steps=4,
    ),
    "vertical_fast": StackStyle("vertical_fast", route="vertical", pre_gap=0.03),
    "direct_slow": StackStyle(
        "direct_slow", route="direct", speed=0.008, carry_speed=0.007, fine_speed=0.004,
        clearance=0.025, grip_steps=8, pause_steps=6,
    ),
}
STACK_SKILLS = {
    # Calibrated on 30-50 episodes per quality (uniform strategy, direct_fast); the gripper
    # command is never perturbed (``TaskOperators.motion_dims``). A reaction delay makes the
    # fine grasp approach oscillate until the time limit (one step with overshoot 0.25:
    # ~62% success, and no jerkier), so "worse" is noisier and overshoots instead.
    "better": Skill("better", drift=0.001, gain_noise=0.05, action_noise=0.05),
    "okay": Skill(
        "okay", drift=0.006, hesitation=0.3, overshoot=0.1, gain_noise=0.1,
        action_noise=0.3, fumble=0.2,
    ),
    "worse": Skill(
        "worse", drift=0.009, drift_time=25.0, hesitation=0.6, overshoot=0.2,
        gain_noise=0.25, gain_time=10.0, action_noise=0.5, noise_time=3.0, fumble=0.4,
    ),
}
