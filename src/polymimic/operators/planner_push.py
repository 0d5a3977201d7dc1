"""The planner family's operators for ``polymimic/Push-v1`` (a second, independent family).

**What differs from the scripted family** (``operators.push``): the scripted operator
pushes each block along the straight line from the block to its zone's centre, reaching
the pre-push point by the shortest route through octagon nodes around keep-out discs
(``pushing.route_waypoint``, a visibility graph). This one plans with CHOMP
(``operators.planner``; Ratliff et al., 2009) twice over:

* the **block's path**: a smooth curve from the block to a point drawn inside the zone,
  kept away from the other block(s) and, for the first block, from the other zone. Its
  initial path bows sideways by a per-episode draw, so blocks travel along curves of
  varying shape; the push direction (hence the *approach*: where the rod lines up) is the
  direction to a point ``CARROT`` ahead on that curve (pure pursuit), not to the zone;
* the **rod's free-space path** to the pre-push point: a CHOMP path around the blocks,
  whose side round a blocking block is drawn per episode (the shorter side more often).

**What is shared**: the motor model (``operators.motor.Hand``; the same skills,
``push.PUSH_SKILLS``); the contact itself, ``pushing.BlockPush`` (lining up behind a block
and pushing through its centre is physics, not planning) with the hand's continuous
guidance in contact (``Hand.track``); ``pushing.ReachWatch`` (give a hopeless demo up);
the strategies and scene utilities.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from polymimic.envs.objects import ROD_RADIUS
from polymimic.envs.push import (
    BLOCK_HALF,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    ZONE_CENTRES,
    ZONE_HALF,
    ZONES,
)
from polymimic.operators.base import Operator
from polymimic.operators.motor import Hand
from polymimic.operators.planner import (
    FreeSpace,
    PathFollower,
    optimise_path,
    path_length,
    polyline,
)
from polymimic.operators.push import TARGET_KEEP_OUT, ZONE_DONE
from polymimic.operators.pushing import (
    PRE_PUSH_TOLERANCE,
    PUSH_LEAD,
    BlockPush,
    ReachWatch,
    unit,
)

BLOCK_KEEP_OUT = 0.085  # m: a block's path keeps its centre this far from another block's
ZONE_KEEP_OUT = 0.09  # m: the first block's path keeps this far from the other zone's centre
# Block centres stay where the rod can still get behind them (x) and off the table's edge.
BLOCK_LOW = np.array([WORKSPACE_LOW[0] + 0.07, WORKSPACE_LOW[1] + 0.04])
BLOCK_HIGH = np.array([WORKSPACE_HIGH[0] - 0.03, WORKSPACE_HIGH[1] - 0.04])
ROD_LOW, ROD_HIGH = WORKSPACE_LOW + 0.005, WORKSPACE_HIGH - 0.005
STRAIGHT_IN = 0.10  # m: a block this near its target is pushed straight at it
INSIDE = ZONE_HALF - 0.025  # m: a block this deep in its zone (per axis) is delivered
BACK_OFF = 0.03  # m: the rod backs off this far from a delivered block
CARROT = 0.06  # m: the push aims at the block path's point this far ahead of the block
OFF_PATH = 0.03  # m: a block farther than this from its path gets a new path
MOVED = 0.015  # m: a pre-push point that moved farther than this gets a new approach
TARGET_SPREAD = 0.015  # m: the point aimed for in a zone lies within this of its centre
POINT_SPACING = 0.01  # m between the optimised paths' points
SIDE_SCALE = 0.05  # m: extra length that makes the longer way round e times less likely
FREE_TOLERANCE = 0.02


@dataclasses.dataclass(frozen=True)
class PlannedPushStyle:
    """How a planner-family operator pushes.

    Attributes:
        name: label stored with each demo (the scripted family's names: same population).
        speed: peak hand speed while moving freely (m per step).
        push_speed: peak hand speed while pushing (m per step).
        bow: largest sideways bow (m) of a block path's initial curve (drawn per block).
        clearance: rod keep-out radius (m) around blocks other than the one pushed.
        margin: CHOMP's ``ε`` (m) for the rod's paths.
        spacing: via-points handed to the hand lie this far apart along a path (m).
        lookahead: the aim moves on when the hand is this close to its via-point (m).
        pause: seconds of stillness after each block is delivered.
        variation: per-episode relative jitter of clearance and margin.
    """

    name: str
    speed: float = 0.012
    push_speed: float = 0.008
    bow: float = 0.03
    clearance: float = 0.07
    margin: float = 0.02
    spacing: float = 0.03
    lookahead: float = 0.02
    pause: float = 0.0
    variation: float = 0.35


def shrunk(space: FreeSpace, *points: np.ndarray) -> FreeSpace:
    """``space`` with each disc holding one of ``points`` shrunk to leave it just outside."""
    radii = np.array(space.radii, dtype=np.float64)
    for point in points:
        if len(radii):
            distance = np.linalg.norm(space.centres - point, axis=1)
            radii = np.where(distance < radii, np.maximum(distance - 0.005, 0.0), radii)
    return dataclasses.replace(space, radii=radii)


def plan_path(
    start: np.ndarray, goal: np.ndarray, space: FreeSpace, margin: float,
    bow: float, rng: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    """A CHOMP path from ``start`` to ``goal`` in ``space``.

    The initial path bows sideways by ``bow`` (m, signed) at its middle; where the straight
    line is blocked it instead rounds the first blocking disc on a side drawn with odds
    ``exp(-extra length / SIDE_SCALE)``.
    """
    start, goal = np.asarray(start, dtype=np.float64), np.asarray(goal, dtype=np.float64)
    space = shrunk(space, start, goal)
    count = max(int(np.linalg.norm(goal - start) / POINT_SPACING), 8)
    normal = unit(np.array([-(goal - start)[1], (goal - start)[0]]))
    seeds = [start, 0.5 * (start + goal) + bow * normal, goal]
    straight = polyline(np.array([start, goal]), count)
    if space.clearance(straight) < 0:
        seeds = _round_first_block(start, goal, straight, space, normal, rng)
    initial = polyline(np.array(seeds), max(int(path_length(np.array(seeds)) / POINT_SPACING), 8))
    return optimise_path(initial, space, margin)


def _round_first_block(
    start: np.ndarray, goal: np.ndarray, straight: np.ndarray, space: FreeSpace,
    normal: np.ndarray, rng: np.random.Generator,
) -> list[np.ndarray]:  # fmt: skip
    """Seed points passing the first disc the straight line cuts, on a drawn side."""
    inside = np.linalg.norm(straight[:, None] - space.centres[None], axis=2) < space.radii[None]
    entered = np.where(inside.any(axis=0), inside.argmax(axis=0), len(straight))
    first = int(np.argmin(entered))  # the disc the straight line enters first
    centre, radius = space.centres[first], space.radii[first]
    options = [centre + side * 1.3 * radius * normal for side in (1.0, -1.0)]
    lengths = np.array([np.linalg.norm(p - start) + np.linalg.norm(goal - p) for p in options])
    odds = np.exp(-(lengths - lengths.min()) / SIDE_SCALE)
    via = options[int(rng.choice(2, p=odds / odds.sum()))]
    return [start, np.clip(via, space.low, space.high), goal]


class PlannedPushScript:
    """One episode: ``first`` block to ``first_zone`` along a planned curve, then the other.

    Per block: plan the block's path (once, again if the block strays from it), then
    each step let ``BlockPush`` say whether to line up or push towards the point
    ``CARROT`` ahead on it. Lining up follows a CHOMP path to the pre-push point (planned
    again when that point moves); pushing is continuous guidance (``Hand.track``).
    """

    def __init__(
        self, operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
    ) -> None:
        first, zone = behaviour.split("-")
        other = "green" if first == "red" else "red"
        self.plan = [(first, zone), (other, ZONES[1 - ZONES.index(zone)])]
        self.style: PlannedPushStyle = operator.style
        self.hand, self.rng = hand, rng
        jitter = lambda: 1.0 + self.style.variation * rng.uniform(-1.0, 1.0)  # noqa: E731
        self.clearance = self.style.clearance * jitter()
        self.margin = self.style.margin * jitter()
        self.stage = 0
        self._new_block()
        self.abandoned = False
        self.touched = False

    def _new_block(self) -> None:
        zone = self.plan[self.stage][1] if self.stage < len(self.plan) else ZONES[0]
        spread = TARGET_SPREAD * self.style.variation / 0.35
        self.target = ZONE_CENTRES[zone] + spread * self.rng.uniform(-1.0, 1.0, 2)
        self.block_path: np.ndarray | None = None
        self.approach: PathFollower | None = None
        self.push = BlockPush(BLOCK_HALF, ROD_RADIUS, WORKSPACE_LOW, WORKSPACE_HIGH)
        self.reach = ReachWatch(WORKSPACE_LOW, WORKSPACE_HIGH)

    @property
    def revisable(self) -> bool:
        """A change of mind is possible until the rod first pushes a block."""
        return not self.touched

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.stage >= len(self.plan) or self.abandoned:
            return self.hand.hold()
        name = self.plan[self.stage][0]
        blocks = {b: obs[f"{b}_block"][:2].astype(np.float64) for b in ("red", "green")}
        block, tip = blocks[name], obs["tip_pos"].astype(np.float64)
        zone = ZONE_CENTRES[self.plan[self.stage][1]]
        if np.linalg.norm(block - self.target) < ZONE_DONE or np.all(np.abs(block - zone) < INSIDE):
            # Delivered: let go (back off against the last push) before the next block.
            back = tip - BACK_OFF * unit(self.target - block)
            self.stage += 1
            self._new_block()
            if self.style.pause > 0:
                self.hand.pause(self.style.pause)
            return self.hand.move(back, self.style.speed, FREE_TOLERANCE)
        # The last stretch is pushed straight at the target: a block arriving along a curve
        # would pass beside it.
        near = np.linalg.norm(self.target - block) < STRAIGHT_IN
        carrot = self.target if near else self._carrot(block, blocks)
        lead = min(PUSH_LEAD, float(np.linalg.norm(self.target - block)))
        aim, pushing = self.push.aim(tip, block, carrot, lead, not self.hand.moving)
        if not pushing and self.reach.unreachable(self.push.wanted):
            self.abandoned = True
            return self.hand.hold()
        if pushing:
            self.touched, self.approach = True, None
            return self.hand.track(aim, self.style.push_speed, along=unit(carrot - block))
        return self._line_up(aim, blocks, name)

    # ------------------------------------------------------------------ planning
    def _carrot(self, block: np.ndarray, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """The block path's point ``CARROT`` ahead of the block (planned here if need be)."""
        path = self.block_path
        if path is None or np.min(np.linalg.norm(path - block, axis=1)) > OFF_PATH:
            path = self.block_path = self._plan_block(block, blocks)
        nearest = int(np.argmin(np.linalg.norm(path - block, axis=1)))
        ahead = np.cumsum(np.linalg.norm(np.diff(path[nearest:], axis=0), axis=1))
        index = nearest + int(np.searchsorted(ahead, CARROT)) + 1
        return path[min(index, len(path) - 1)]

    def _plan_block(self, block: np.ndarray, blocks: dict[str, np.ndarray]) -> np.ndarray:
        name = self.plan[self.stage][0]
        centres = [xy for b, xy in blocks.items() if b != name]
        radii = [BLOCK_KEEP_OUT] * len(centres)
        if self.stage == 0:  # the first block must not enter the other zone on its way
            centres.append(ZONE_CENTRES[self.plan[1][1]])
            radii.append(ZONE_KEEP_OUT)
        space = FreeSpace(np.array(centres), np.array(radii), BLOCK_LOW, BLOCK_HIGH)
        bow = self.style.bow * self.rng.uniform(-1.0, 1.0)
        start = np.clip(block, BLOCK_LOW, BLOCK_HIGH)
        path = plan_path(start, self.target, space, 0.02, bow, self.rng)
        return np.vstack([block, path[1:]])

    def _line_up(
        self, pre_push: np.ndarray, blocks: dict[str, np.ndarray], name: str
    ) -> np.ndarray:
        """Follow (planning first if need be) a CHOMP path to the pre-push point."""
        hand = self.hand
        if self.approach is None or np.linalg.norm(self.approach.goal - pre_push) > MOVED:
            start = hand.believed_end()
            if np.linalg.norm(pre_push - start) < 1.5 * self.style.spacing:
                path = np.array([start, pre_push])
            else:
                names = list(blocks)
                space = FreeSpace(
                    np.array([blocks[b] for b in names]),
                    np.array([TARGET_KEEP_OUT if b == name else self.clearance for b in names]),
                    ROD_LOW, ROD_HIGH,
                )  # fmt: skip
                path = plan_path(start, pre_push, space, self.margin, 0.0, self.rng)
            self.approach = PathFollower(path, self.style.spacing, self.style.lookahead)
        aim = self.approach.aim(hand.position)
        if self.approach.last:
            aim = pre_push  # the pre-push point as seen now, with the care it needs
            return hand.move(aim, self.style.speed, PRE_PUSH_TOLERANCE)
        return hand.move(aim, self.style.speed, FREE_TOLERANCE)


def make_planned_push_script(
    operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
) -> PlannedPushScript:
    return PlannedPushScript(operator, behaviour, rng, hand)


#: The scripted family's style names, realised as planner parameters: "direct_fast" is
#: fast with gently bowed block paths, "retreat_slow" slow with a wide berth and a pause
#: after each delivery, "curved" bows the block paths most.
PLANNED_PUSH_STYLES = {
    "direct_fast": PlannedPushStyle("direct_fast", speed=0.014, push_speed=0.012, bow=0.02),
    "retreat_slow": PlannedPushStyle(
        "retreat_slow", speed=0.011, push_speed=0.009, bow=0.03, clearance=0.09, pause=0.3
    ),
    "curved": PlannedPushStyle("curved", speed=0.013, push_speed=0.011, bow=0.06, clearance=0.08),
}
