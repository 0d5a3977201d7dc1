"""Scripted operators for ``polymimic/Stack-v1``.

The behaviour label is the bottom-to-top colour order (e.g. ``"red-green-blue"``). The
script re-plans from every observation: the next cube is the first one of the order not
yet correctly stacked (a knocked stack is rebuilt), and each cube goes through approach ->
descend -> close -> transport -> lower -> release. The script decides *where* the hand
goes (via-points planned once per leg, then the goal); the hand
(``polymimic.operators.motor``) decides how it moves there, noise included. Routes:
``"vertical"`` (up to a cruise height, across, straight down) or ``"direct"`` (across and
down together over an arc, raised only over cubes in the way).

**Wrist.** Cubes start at any yaw, so on the way to a cube the operator turns the gripper
to the cube's nearest face (its yaw modulo 90°, the candidate nearest the wrist's present
yaw) and descends only once the wrist is at rest there; the turn is driven by a second
hand of the same motor model (``Hand.wrist``: minimum-jerk, Fitts-timed, delayed, with
signal-dependent endpoint and velocity noise and corrections), so it is as smooth and as
noisy as the hand's translation. A carried cube keeps the yaw it was grasped at.

**Mistakes.** An operator starts a contact movement (grasp descent, placing descent) and
closes or opens the fingers once its hand is *at rest where it believes* the point is
(``Hand.believed_end``): an endpoint error it has not noticed yet (``reaction_time`` after
the movement ends) is carried into the contact, where a late correction can push the cube
away. Mistakes the operator sees: an open finger landing on the cube's top or bumping it
away during the descent, a failed grasp or a dropped cube, a cube that does not stand
where it was put, a stack found lower than it was built. It lifts and tries again, and
abandons the demo at its ``PATIENCE``-th mistake (or at once when a cube was pushed out
of the arm's reach): failures come from mistakes, not from the time limit. Nothing waits
for ever: a phase in which the hand rests ``STUCK_TIME`` without progress starts over.
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
    TARGET_CENTRE,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
)
from polymimic.operators.base import Operator, Skill, Strategy
from polymimic.operators.motor import Hand, MotorSkill
from polymimic.operators.stack_geometry import (  # noqa: F401  (stack_scene_utilities: re-exported)
    AIM_MARGIN,
    Body,
    cube_centres,
    cube_yaws,
    face_yaw,
    inside_workspace,
    needed_heights,
    stack_scene_utilities,
    stacked_prefix,
    turned_extents,
)

ROUTES = ("vertical", "direct")
PHASES = ("approach", "descend", "close", "transport", "lower", "release", "done", "abandoned")
PLACE_GAP = 0.003  # m between the carried cube and the one below when it is let go
GRASP_MIN_Z = 0.018  # m, lowest grasp centre (pads stay 6 mm above the table)
STUCK_TIME = 3.0  # s at rest (not moving, not pausing) before a phase starts over
# Half extents (x, y) of the gripper's footprint around the tip: open fingers reach 5 cm
# to either side in y; pads are 1 cm either side in x.
OPEN_FOOTPRINT = (PAD_HALF[0] + 0.002, 0.052)
# The vertical route goes straight down once this close horizontally (m).
DOWN_RADIUS = 0.03
# Fitts' tolerances W (m): the pre-grasp, grasp and place points need care, via-points
# little (a via-point closer than VIA_TOLERANCE to where the hand is heading is passed).
PRE_GRASP_TOLERANCE = 0.005
GRASP_TOLERANCE = 0.004
PLACE_TOLERANCE = 0.004
ABOVE_TOLERANCE = 0.006
VIA_TOLERANCE = 0.01
FREE_TOLERANCE = 0.02
WRIST_TOLERANCE = 0.05  # rad (2.9 deg): the pads square a cube turned this much when closing
BLOCKED = 0.012  # m: a hand resting on something this far above its aim hit an obstacle
# The tip this far above the controller's target is resting on something: the env holds the
# target 2 mm below a resting tip (envs.stack.TARGET_PRESS); a tip at rest in free space
# sits within 0.3 mm of it.
PRESSING = 0.0005  # m
BUMPED = 0.012  # m: a cube moved this far during the grasp descent was bumped by a finger
# The operator abandons the demo at its PATIENCE-th mistake; a stack counts as knocked
# once it has stood lower than built for KNOCK_CONFIRM s (not a wobble); a cube lying
# UNREACHABLE (m) beyond the workspace box cannot be reached by the arm.
PATIENCE = 2
KNOCK_CONFIRM = 0.5
UNREACHABLE = 0.005
REPLAN = 0.02  # m: a leg's goal that moved this far since planning gets a new route
ARC_MIN_ACROSS = 0.12  # m: the direct route arcs only over legs at least this long
MAX_PAUSE = 2.5  # s: the longest hesitation before a contact (MotorSkill.max_pause)


@dataclasses.dataclass(frozen=True)
class StackStyle:
    """How an operator executes a stacking order.

    Attributes:
        name: label stored with each demo.
        route: ``"vertical"`` or ``"direct"`` (see the module docstring).
        speed: peak hand speed with an empty gripper (m per step).
        carry_speed: peak hand speed while carrying a cube (m per step).
        fine_speed: peak hand speed of the descents to grasp and to place (m per step).
        cruise_height: tip height of the vertical route's crossings (m).
        clearance: vertical gap kept above other cubes while crossing them (m).
        pre_gap: gap between the pads' bottom and the cube's top from which the grasp
            descent starts (m).
        arc: mean height of the direct route's arc over long legs (m), per episode
            uniform in ``[0, 2 arc]`` (how high people lift varies much more from trial
            to trial than the geometry demands).
        lift: straight-up lift of a grasped cube before it is carried (m).
        blend: distance (m) before a via-point at which the next movement starts, so the
            route's corners are rounded (the submovements superpose).
        grip: seconds the fingers are given to close before lifting.
        pause: seconds of stillness after each release (a look at the stack).
        turn_speed: peak speed of the wrist's turns (rad per step).
        variation: per-episode relative jitter of the route's distances (cruise
            height, clearance, pre-gap, lift, blend), uniform in ``[1 - v, 1 + v]``; the
            pre-grasp point is also offset from above the cube by up to ``variation * 3
            cm`` horizontally (a slanted final approach).
    """

    name: str
    route: str = "direct"
    speed: float = 0.014
    carry_speed: float = 0.012
    fine_speed: float = 0.006
    cruise_height: float = 0.20
    clearance: float = 0.015
    pre_gap: float = 0.012
    arc: float = 0.06
    lift: float = 0.03
    blend: float = 0.03
    grip: float = 0.3
    pause: float = 0.0
    turn_speed: float = 0.06
    variation: float = 0.3

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route={self.route!r} is not one of {ROUTES}")


class _View(NamedTuple):
    """What a phase handler sees this step (the observation from ``reaction_time`` ago)."""

    tip: np.ndarray  # measured grasp centre (3,)
    target: np.ndarray  # the controller's target (3,)
    cubes: np.ndarray  # cube centres (3, 3)
    yaws: np.ndarray  # cube yaws modulo 90 deg (3,), in [-45, 45] deg
    opening: float  # between the pads (m)


class StackScript:
    """One episode of stacking the cubes in the bottom-to-top order ``behaviour``."""

    def __init__(
        self, operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
    ) -> None:
        names = behaviour.split("-")
        if sorted(names) != sorted(BLOCKS):
            raise ValueError(f"{behaviour!r} is not a stacking order of {BLOCKS}")
        self.plan = [BLOCKS.index(n) for n in names]
        self.style: StackStyle = operator.style
        self.hand = hand
        if hand.wrist is None:
            raise ValueError("the Stack script turns the wrist: its hand needs a wrist hand "
                             "(OperatorEpisode makes one from MotionSpec.wrist_step)")
        self.wrist: Hand = hand.wrist
        self.phase, self.phase_steps = "approach", 0
        self.current = self.plan[0]
        self.grasped = False
        self.mistakes = 0  # failed grasps, dropped cubes, knocked stacks
        self.built, self.lower_steps = 0, 0  # highest stack seen; steps it has been lower
        self.grip_offset = np.zeros(3)  # carried cube's centre minus the grasp centre
        self.descent_cube = np.zeros(3)  # where the cube was when the grasp descent began
        self.route: list[np.ndarray] = []  # via-points of the current leg
        self.leg_goal: np.ndarray | None = None
        style = self.style
        jitter = lambda: 1.0 + style.variation * rng.uniform(-1.0, 1.0)  # noqa: E731
        self.cruise = style.cruise_height * jitter()
        self.clearance = style.clearance * jitter()
        self.pre_gap = style.pre_gap * jitter()
        self.arc = style.arc * rng.uniform(0.0, 2.0)
        self.lift = style.lift * jitter()
        self.blend = style.blend * jitter()
        self.approach_offset = style.variation * 0.03 * rng.uniform(-1.0, 1.0, 2)
        self.stuck_limit = int(round(STUCK_TIME / hand.dt))
        self.stuck = 0  # steps the hand has rested in this phase

    @property
    def revisable(self) -> bool:
        """A change of mind is possible until the fingers first close on a cube."""
        return not self.grasped

    # ------------------------------------------------------------------ acting
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        view = _View(
            tip=obs["tip_pos"].astype(np.float64),
            target=obs["tip_target"].astype(np.float64),
            cubes=cube_centres(obs),
            yaws=cube_yaws(obs),
            opening=float(obs["gripper"][0]),
        )
        self.phase_steps += 1
        resting = not self.hand.moving and not self.hand.paused and not self.wrist.moving
        self.stuck = self.stuck + 1 if resting else 0
        if self.phase == "abandoned" or self._give_up(view):
            return self._finish(view, "abandoned")
        if self.phase in ("approach", "done"):
            level = self._stack_level(view)
            if level == len(self.plan):
                return self._finish(view, "done")
            self._set_phase("approach")
            self.current = self.plan[level]
        elif self.stuck > self.stuck_limit:
            self._set_phase("approach")  # stuck: open and start this cube over
        motion, closed = getattr(self, f"_{self.phase}")(view)
        return self._action(motion, self._turn(view), closed)

    @staticmethod
    def _action(motion: np.ndarray, turn: np.ndarray, closed: bool) -> np.ndarray:
        """The env's action: (dx, dy, dz, dyaw, gripper)."""
        return np.concatenate((motion, turn, (1.0 if closed else -1.0,))).astype(np.float32)

    def _grasp_yaw(self, view: _View) -> float:
        """The wrist yaw that puts the pads square on the current cube's faces."""
        return face_yaw(float(view.yaws[self.current]), float(self.wrist.believed_end()[0]))

    def _turn(self, view: _View) -> np.ndarray:
        """The wrist's motion this step: towards the current cube's faces while approaching
        it, held otherwise (during the descent, the grasp and the carry)."""
        if self.phase == "approach":
            aim = np.array([self._grasp_yaw(view)])
            return self.wrist.move(aim, self.style.turn_speed, WRIST_TOLERANCE)
        return self.wrist.hold()

    def _wrist_ready(self, view: _View) -> bool:
        """The wrist has stopped where the operator believes the cube's faces are."""
        if self.wrist.moving:
            return False
        return abs(float(self.wrist.believed_end()[0]) - self._grasp_yaw(view)) <= (
            WRIST_TOLERANCE + 1e-4
        )

    def _stack_level(self, view: _View) -> int:
        """How many cubes stand as planned; a stack lower than the operator has built or
        seen it for ``KNOCK_CONFIRM`` s (not a wobble) counts as a mistake."""
        level = stacked_prefix(view.cubes, self.plan)
        self.lower_steps = self.lower_steps + 1 if level < self.built else 0
        if self.lower_steps * self.hand.dt >= KNOCK_CONFIRM:
            self.mistakes, self.built, self.lower_steps = self.mistakes + 1, level, 0
        self.built = max(self.built, level)
        return level

    @property
    def abandoned(self) -> bool:
        """The operator gave up (too many mistakes, or a cube out of reach)."""
        return self.phase == "abandoned"

    def _give_up(self, view: _View) -> bool:
        """Too many mistakes, or a cube pushed beyond the arm's reach: abandon the demo."""
        reach = (view.cubes[:, :2] < WORKSPACE_LOW[:2] - UNREACHABLE) | (
            view.cubes[:, :2] > WORKSPACE_HIGH[:2] + UNREACHABLE
        )
        return self.mistakes >= PATIENCE or bool(reach.any())

    def _dropped(self) -> tuple[np.ndarray, bool]:
        """The cube is not between the pads: a failed grasp or a dropped cube (a
        mistake); open and pick it up again."""
        self.mistakes += 1
        self._set_phase("approach")
        return self.hand.hold(), False

    def _set_phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase, self.phase_steps, self.stuck = phase, 0, 0
            self.route, self.leg_goal = [], None

    def _resting(self, view: _View) -> bool:
        """The hand has stopped on something: the controller's target stays below the tip."""
        return not self.hand.moving and view.tip[2] - view.target[2] > PRESSING

    def _at_rest_at(self, point: np.ndarray, tolerance: float) -> bool:
        """The hand has stopped where the operator believes ``point`` is."""
        if self.hand.moving or self.route:
            return False
        return bool(np.linalg.norm(self.hand.believed_end() - point) <= tolerance + 1e-4)

    # ------------------------------------------------------------------ phases
    def _approach(self, view: _View) -> tuple[np.ndarray, bool]:
        """Open gripper to the pre-grasp point above the cube (clear of the others)."""
        cube = view.cubes[self.current]
        lift = BLOCK_HALF[BLOCKS[self.current]] + PAD_HALF[2] + self.pre_gap
        goal = inside_workspace(cube + (*self.approach_offset, lift))
        if self._at_rest_at(goal, PRE_GRASP_TOLERANCE) and self._wrist_ready(view):
            self._set_phase("descend")
            self.descent_cube = cube.copy()
            return self._descend(view)
        # The cube itself is crossed no lower than the pre-grasp height (after a failed
        # attempt the hand may start low beside it). The open fingers' footprint turns with
        # the wrist (its bounding box at the yaw it is turning to).
        footprint = turned_extents(*OPEN_FOOTPRINT, self._grasp_yaw(view))
        open_hand = Body(*footprint, PAD_HALF[2], np.zeros(3))
        self._plan_leg(goal, view.cubes, open_hand, own_height=goal[2])
        return self._follow(goal, self.style.speed, PRE_GRASP_TOLERANCE), False

    def _grasp_point(self, view: _View) -> np.ndarray:
        cube = view.cubes[self.current]
        return inside_workspace(np.array([cube[0], cube[1], max(cube[2], GRASP_MIN_Z)]))

    def _descend(self, view: _View) -> tuple[np.ndarray, bool]:
        """Down around the cube. A finger resting on the cube's top, or a cube bumped away
        by a finger, is a mistake: the operator lifts and lines up again."""
        goal = self._grasp_point(view)
        resting = self._resting(view)
        blocked = resting and view.tip[2] - goal[2] > BLOCKED
        bumped = np.linalg.norm(view.cubes[self.current] - self.descent_cube) > BUMPED
        if blocked or bumped:
            self.mistakes += 1
            self._set_phase("approach")
            return self.hand.hold(), False
        if self._at_rest_at(goal, GRASP_TOLERANCE) or resting:  # resting a little high: grasp
            self._set_phase("close")
            self.grasped = True
        return self.hand.move(goal, self.style.fine_speed, GRASP_TOLERANCE, contact=True), False

    def _close(self, view: _View) -> tuple[np.ndarray, bool]:
        if self.phase_steps * self.hand.dt >= self.style.grip:
            self._set_phase("transport")
            self.grip_offset = view.cubes[self.current] - view.tip
        return self.hand.hold(), True

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
        """Where the carried cube's centre goes: just above its support."""
        level = self.plan.index(self.current)
        half = BLOCK_HALF[BLOCKS[self.current]]
        if level == 0:
            centre, z = TARGET_CENTRE, half + PLACE_GAP
        else:
            below = view.cubes[self.plan[level - 1]]
            centre = below[:2]
            z = below[2] + BLOCK_HALF[BLOCKS[self.plan[level - 1]]] + half + PLACE_GAP
        return np.array([*centre, z])

    def _transport(self, view: _View) -> tuple[np.ndarray, bool]:
        """Lift the cube, then carry it to just above its place (aims in cube coordinates:
        the cube sits a few mm off the grasp centre; the hand aims that much beside)."""
        if not self._holding(view):
            return self._dropped()
        above = self._place_point(view) + (0.0, 0.0, self.clearance)
        goal = inside_workspace(above - self.grip_offset)
        if self._at_rest_at(goal, ABOVE_TOLERANCE):
            self._set_phase("lower")
            return self._lower(view)
        half = BLOCK_HALF[BLOCKS[self.current]]
        yaw = float(self.wrist.believed_end()[0])
        carried = turned_extents(half + 0.004, half + 2 * PAD_HALF[1] + 0.002, yaw)
        cube = Body(*carried, half, self.grip_offset)
        lift = None  # the first leg starts with a lift, straight up
        if self.leg_goal is None:
            lift = inside_workspace(self.hand.believed_end() + (0.0, 0.0, self.lift))
        self._plan_leg(goal, view.cubes, cube, start=lift)
        return self._follow(goal, self.style.carry_speed, ABOVE_TOLERANCE), True

    def _lower(self, view: _View) -> tuple[np.ndarray, bool]:
        """Put the cube down; it is let go when the hand stops or the cube rests early."""
        if not self._holding(view):
            return self._dropped()
        goal = inside_workspace(self._place_point(view) - self.grip_offset)
        if self._at_rest_at(goal, PLACE_TOLERANCE) or self._resting(view):
            self._set_phase("release")
        return self.hand.move(goal, self.style.fine_speed, PLACE_TOLERANCE, contact=True), True

    def _release(self, view: _View) -> tuple[np.ndarray, bool]:
        half = BLOCK_HALF[BLOCKS[self.current]]
        if view.opening > 2 * half + 0.015 and self.phase_steps * self.hand.dt >= 0.15:
            # The operator believes the stack is one cube higher now: a cube that does not
            # stand there (put down beside the stack, fell off) is a mistake.
            self.built = max(self.built, self.plan.index(self.current) + 1)
            self._set_phase("approach")
            if self.style.pause > 0:
                self.hand.pause(self.style.pause)
        return self.hand.hold(), False

    def _finish(self, view: _View, phase: str) -> np.ndarray:
        """All stacked (or abandoned): lift the open gripper clear of the cubes and wait."""
        self._set_phase(phase)
        end = self.hand.believed_end()
        clear = max(float(np.max(view.cubes[:, 2])) + 0.06, end[2])
        motion = self.hand.move(inside_workspace(np.array([end[0], end[1], clear])), self.style.speed,
                                FREE_TOLERANCE)  # fmt: skip
        return self._action(motion, self.wrist.hold(), False)

    # ------------------------------------------------------------------ routing
    def _follow(self, goal: np.ndarray, speed: float, tolerance: float) -> np.ndarray:
        """Move along the leg's via-points, then to ``goal``.

        A via-point is left for the next one once the hand is heading there and has less
        than ``blend`` to go: the next submovement superposes on the current one, so the
        corner is rounded rather than stopped at.
        """
        end = self.hand.believed_end()
        while self.route:
            via = self.route[0]
            if np.linalg.norm(end - via) > VIA_TOLERANCE:
                return self.hand.move(via, speed, VIA_TOLERANCE)
            if np.linalg.norm(end - self.hand.position) > self.blend:
                return self.hand.move(via, speed, VIA_TOLERANCE)
            self.route.pop(0)
        return self.hand.move(goal, speed, tolerance)

    def _plan_leg(
        self, goal: np.ndarray, cubes: np.ndarray, body: Body, start: np.ndarray | None = None,
        own_height: float | None = None,
    ) -> None:  # fmt: skip
        """Plan the via-points to ``goal`` (hand coordinates) once per leg, and again when
        the goal has moved (a cube was pushed). ``start`` (default: where the hand is
        heading) is itself a via-point (the lift of a grasped cube). With ``own_height``
        the current cube is an obstacle too, crossed at that tip height.
        """
        if self.leg_goal is not None and np.linalg.norm(goal - self.leg_goal) < REPLAN:
            return
        self.leg_goal = goal
        first = self.hand.believed_end() if start is None else start
        vias = self._route_points(first + body.offset, goal + body.offset, cubes, body, own_height)
        self.route = ([] if start is None else [start]) + [inside_workspace(v - body.offset) for v in vias]

    def _route_points(
        self, start: np.ndarray, goal: np.ndarray, cubes: np.ndarray, body: Body,
        own_height: float | None,
    ) -> list[np.ndarray]:  # fmt: skip
        """Via-points (not including ``goal``) of the style's route from ``start``: the
        vertical route's corners at the cruise height, or the direct route's arc, raised
        over the other cubes where the straight path would meet one."""
        across = float(np.hypot(*(goal - start)[:2]))
        top = float(WORKSPACE_HIGH[2]) - AIM_MARGIN
        if self.style.route == "vertical" and across > DOWN_RADIUS:
            cruise = min(max(self.cruise, goal[2]), top)
            vias = [] if start[2] >= cruise - VIA_TOLERANCE else [np.array([*start[:2], cruise])]
            return vias + [np.array([*goal[:2], cruise])]
        arc = self.arc if self.style.route == "direct" and across > ARC_MIN_ACROSS else 0.0
        n = max(int(np.ceil(across / 0.005)), 2) + 1
        samples = start + np.linspace(0.0, 1.0, n)[:, None] * (goal - start)
        others = [i for i in range(len(BLOCKS)) if i != self.current]
        needed = needed_heights(samples, cubes, others, body, self.clearance)
        if own_height is not None:
            own = needed_heights(samples, cubes, [self.current], body, self.clearance)
            needed = np.maximum(needed, np.where(own > WORKSPACE_LOW[2], own_height, 0.0))
        low = samples[:, 2] < needed - 1e-3
        if not low.any():
            return [0.5 * (start + goal) + (0.0, 0.0, arc)] if arc > 0 else []
        height = min(float(needed.max()) + arc, top)
        first, last = np.flatnonzero(low)[[0, -1]]
        vias = []
        if start[2] < height - VIA_TOLERANCE:  # rise on the way, before the first obstacle
            vias.append(np.array([*samples[max(first - 1, 0), :2], height]))
        vias.append(np.array([*samples[min(last + 1, n - 1), :2], height]))
        return vias


def make_stack_script(
    operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
) -> StackScript:
    return StackScript(operator, behaviour, rng, hand)


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
    "direct_fast": StackStyle("direct_fast", route="direct"),
    "vertical_slow": StackStyle(
        "vertical_slow", route="vertical", speed=0.012, carry_speed=0.010, fine_speed=0.005,
        cruise_height=0.18, pre_gap=0.04, grip=0.4, pause=0.3,
    ),
    "vertical_fast": StackStyle("vertical_fast", route="vertical", pre_gap=0.03),
    "direct_slow": StackStyle(
        "direct_slow", route="direct", speed=0.011, carry_speed=0.010, fine_speed=0.005,
        clearance=0.025, grip=0.4, pause=0.4,
    ),
}
STACK_SKILLS = {
    # ``TIERS`` (operators/base.py) adjusted for stacking, calibrated on 30 episodes per
    # tier and style (scripts/quality_table.py):
    # * rarer pauses before contact for the lower tiers (0.2 instead of 0.4 and 0.7): a
    #   stop before a grasp or placing descent outlasts the reaction time, so the endpoint
    #   error of the movement before it is seen and corrected first. Stopping at 70% of
    #   contacts made a worse operator as careful as a better one (0.7 mistakes per
    #   episode, 97% success), only slower.
    # * worse: endpoint noise 0.17 (0.12) and lateral ratio 0.7 (0.5): the error across
    #   the final approach decides whether an open finger lands on the cube (the
    #   fingers close along y with 1.5-2 cm to spare); okay: lateral ratio 0.6. With 0.14
    #   the worse tier still succeeded in 91% of the named dataset's demos (robomimic's
    #   worse operators: 60-85%); 0.17 gave 47/60 (seeds 1000-1059, expert style).
    # * hesitations before contact last at most MAX_PAUSE: an exponential pause (mean
    #   0.6-0.8 s) is longer than 5 s (100 steps without progress, the deadlock bound
    #   of scripts/contact_depth.py) once in a few hundred.
    "better": Skill("better", MotorSkill(
        reaction_time=0.2, fitts_b=0.10, speed=1.0, endpoint_noise=0.03,
        velocity_noise=0.03, pause_chance=0.1, max_pause=MAX_PAUSE,
    )),
    "okay": Skill("okay", MotorSkill(
        reaction_time=0.25, fitts_b=0.16, speed=0.8, endpoint_noise=0.07, lateral_ratio=0.6,
        velocity_noise=0.06, pause_chance=0.2, max_pause=MAX_PAUSE,
    )),
    "worse": Skill("worse", MotorSkill(
        reaction_time=0.3, fitts_b=0.22, speed=0.65, endpoint_noise=0.17, lateral_ratio=0.7,
        velocity_noise=0.10, pause_chance=0.2, pause_time=0.8, max_pause=MAX_PAUSE,
    )),
}  # fmt: skip
