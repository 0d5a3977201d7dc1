"""Scripted operators for ``polymimic/Push-v1``.

The script is closed-loop and re-plans every step from the observation alone: it pushes
the chosen first block to the chosen zone, then the other block to the other zone. Styles
change *how* (approach route, speed, pauses), strategies change *which* behaviour, skill
adds time-correlated aim errors.
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
    ZONES,
    PushEnv,
)
from polymimic.operators.base import TIERS, Operator, Strategy
from polymimic.operators.motor import Hand
from polymimic.operators.pushing import (
    FREE_TOLERANCE,
    PRE_PUSH_GAP,
    PRE_PUSH_REACHED,
    PRE_PUSH_TOLERANCE,
    PUSH_LEAD,
    PUSH_TOLERANCE,
    ReachWatch,
    next_via_point,
    unit,
    via_tolerance,
)

# Centre distance below which the rod touches a cube at any yaw (half-diagonal + radius),
# plus a margin: the approach routes keep at least this far from blocks.
CONTACT_DISTANCE = BLOCK_HALF * np.sqrt(2) + ROD_RADIUS
PUSH_OFFSET = BLOCK_HALF + ROD_RADIUS  # tip-to-centre distance when pushing a face
TARGET_KEEP_OUT = CONTACT_DISTANCE + 0.008  # route radius around the block to be pushed
RETREAT_MARGIN = 0.04  # m: the "retreat" route backs away only from a goal this far behind
ZONE_DONE = 0.025  # m: a block this close to its zone centre is finished


@dataclasses.dataclass(frozen=True)
class PushStyle:
    """How an operator executes a push.

    Attributes:
        name: label stored with each demo.
        speed: peak hand speed while moving freely (m per step).
        push_speed: peak hand speed while pushing (m per step).
        route: "direct" (straight to the pre-push point, skirting blocks) or "retreat"
            (first back away from the table's far side, then across, then in).
        bulge: sideways offset (m) of the approach's midpoint: 0 is straight, >0 curved.
        clearance: distance kept from blocks' centres while approaching (m).
        pause: seconds of stillness after each block is delivered (a look at the scene).
        variation: per-episode relative jitter of the route's distances (clearance,
            bulge, retreat, pre-push gap), uniform in ``[1 - variation, 1 + variation]``.
    """

    name: str
    speed: float = 0.012
    push_speed: float = 0.008
    route: str = "direct"
    bulge: float = 0.0
    clearance: float = 0.07
    pause: float = 0.0
    variation: float = 0.35


class PushScript:
    """One episode of pushing: ``first`` block to ``first_zone``, then the other.

    The hand (``polymimic.operators.motor``) moves between the script's aim points: to the
    pre-push point behind the block (skirting the other block), then, in contact, after a
    point ``PUSH_LEAD`` ahead of the contact point on the line through the block's centre
    to its zone, never past the point where the block would sit on the zone centre. The
    script re-aims from every observation, so a block that turns or slips is lined up
    again. Route distances vary per episode (``PushStyle.variation``).
    """

    def __init__(
        self, operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
    ) -> None:
        first, zone = behaviour.split("-")
        other_block = "green" if first == "red" else "red"
        other_zone = ZONES[1 - ZONES.index(zone)]
        self.plan = [(first, zone), (other_block, other_zone)]
        self.style: PushStyle = operator.style
        self.hand = hand
        self.stage = 0
        self.pushing = False
        jitter = lambda: 1.0 + self.style.variation * rng.uniform(-1.0, 1.0)  # noqa: E731
        self.clearance = self.style.clearance * jitter()
        self.bulge = self.style.bulge * jitter() * rng.choice((-1.0, 1.0))
        self.retreat = 0.04 * jitter()
        self.detour: list[np.ndarray] = []  # the "retreat" route's remaining via-points
        self.reach = ReachWatch(WORKSPACE_LOW, WORKSPACE_HIGH)
        self.abandoned = False  # a block pushed out of the rod's reach: the demo is given up
        self.pre_push_gap = PRE_PUSH_GAP * jitter()

    @property
    def revisable(self) -> bool:
        """A change of mind is possible until the first block is delivered (a change of
        mind mid-push leaves that block where it is; it is pushed to its zone later)."""
        return self.stage == 0

    # ------------------------------------------------------------------ acting
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.stage >= len(self.plan) or self.abandoned:
            return self.hand.hold()
        block, zone = self.plan[self.stage]
        block_xy = obs[f"{block}_block"][:2].astype(np.float64)
        goal = ZONE_CENTRES[zone]
        tip = obs["tip_pos"].astype(np.float64)
        if np.linalg.norm(block_xy - goal) < ZONE_DONE:
            self.stage, self.pushing, self.detour = self.stage + 1, False, []
            if self.style.pause > 0:
                self.hand.pause(self.style.pause)
            back = tip - self.retreat * unit(goal - block_xy)
            return self.hand.move(back, self.style.speed, FREE_TOLERANCE)
        direction = unit(goal - block_xy)
        behind = float(np.dot(tip - block_xy, direction))
        lateral = float(np.linalg.norm(tip - block_xy - behind * direction))
        if self.pushing and (behind > -0.6 * PUSH_OFFSET or lateral > BLOCK_HALF):
            self.pushing = False  # lost the block: go round and line up again
        if self.pushing:
            to_go = float(np.linalg.norm(goal - block_xy))
            aim = block_xy - PUSH_OFFSET * direction + min(PUSH_LEAD, to_go) * direction
            return self.hand.move(aim, self.style.push_speed, PUSH_TOLERANCE, contact=True)
        pre_push = block_xy - (PUSH_OFFSET + self.pre_push_gap) * direction
        if not self.pushing and self.reach.unreachable(pre_push):
            self.abandoned = True
            return self.hand.hold()
        if np.linalg.norm(tip - pre_push) < PRE_PUSH_REACHED and not self.hand.moving:
            self.pushing = True
        # Route from where the hand is heading: via-points then blend into one another.
        waypoint = self._next_waypoint(self.hand.believed_end(), pre_push, obs)
        tolerance = (
            PRE_PUSH_TOLERANCE if np.array_equal(waypoint, pre_push)
            else via_tolerance(waypoint, self.hand.believed_end())
        )
        return self.hand.move(waypoint, self.style.speed, tolerance)

    # ------------------------------------------------------------------ routing
    def _next_waypoint(
        self, tip: np.ndarray, goal: np.ndarray, obs: dict[str, np.ndarray]
    ) -> np.ndarray:
        blocks = {b: obs[f"{b}_block"][:2].astype(np.float64) for b in ("red", "green")}
        route = [goal]
        if self.style.route == "retreat":
            route = self._retreat_route(tip, goal, blocks)
        elif self.bulge != 0:
            mid = 0.5 * (tip + goal)
            normal = np.array([-(goal - tip)[1], (goal - tip)[0]])
            if np.linalg.norm(goal - tip) > 0.08:
                route = [mid + self.bulge * unit(normal), goal]
        current = self.plan[self.stage][0]
        names = ("red", "green")
        centres = np.array([blocks[b] for b in names])
        # The block about to be pushed is skirted tightly (its pre-push point lies close to
        # it); the other one is given the style's clearance.
        radii = np.array([
            TARGET_KEEP_OUT if b == current else max(self.clearance, TARGET_KEEP_OUT)
            for b in names
        ])
        return next_via_point(tip, route[0], centres, radii, WORKSPACE_LOW, WORKSPACE_HIGH,
                              FREE_TOLERANCE, hand_at=self.hand.position[:2])  # fmt: skip

    def _retreat_route(
        self, start: np.ndarray, goal: np.ndarray, blocks: dict[str, np.ndarray]
    ) -> list[np.ndarray]:
        """Back away from the far side, across, then in: planned once per approach.

        The via-points are fixed when the approach starts (from where the hand is heading)
        and dropped as the hand's plan reaches them; re-deciding every step from a moving
        plan would flip between retreating and approaching.
        """
        retreat_x = min(b[0] for b in blocks.values()) - 0.08
        # Only a goal well behind the hand calls for the detour: a hand that merely
        # overshoots its goal by an endpoint error corrects straight back.
        if not self.detour and start[0] > retreat_x + 0.02 and goal[0] < start[0] - RETREAT_MARGIN:
            self.detour = [np.array([retreat_x, start[1]]), np.array([retreat_x, goal[1]])]
        while self.detour and np.linalg.norm(self.detour[0] - start) < FREE_TOLERANCE:
            self.detour.pop(0)
        return [*self.detour, goal]


#: Distances (m) over which a difference in the scene moves a utility by 1 (see below).
BLOCK_SCALE = 0.02
ZONE_SCALE = 1.0


def push_scene_utilities(obs: dict[str, np.ndarray]) -> dict[str, float]:
    """How the scene pulls on the choice of behaviour ``"<first block>-<its zone>"``.

    ``u = u_block + u_zone``, each clipped to [-1, 1]:

    * ``u_block = (d(hand, other block) - d(hand, first block)) / BLOCK_SCALE``: people tend
      to start with the block nearer their hand;
    * ``u_zone = (d(first block, other zone) - d(first block, zone)) / ZONE_SCALE``: and,
      more weakly, to push it to the nearer zone.

    ``Strategy.probabilities`` turns these into choice probabilities.
    """
    hand = obs["tip_pos"][:2].astype(np.float64)
    blocks = {b: obs[f"{b}_block"][:2].astype(np.float64) for b in ("red", "green")}
    utilities = {}
    for first, other in (("red", "green"), ("green", "red")):
        u_block = (np.linalg.norm(hand - blocks[other]) - np.linalg.norm(hand - blocks[first]))
        for zone, other_zone in (("left", "right"), ("right", "left")):
            u_zone = np.linalg.norm(blocks[first] - ZONE_CENTRES[other_zone]) - np.linalg.norm(
                blocks[first] - ZONE_CENTRES[zone]
            )
            utilities[f"{first}-{zone}"] = float(
                np.clip(u_block / BLOCK_SCALE, -1, 1) + np.clip(u_zone / ZONE_SCALE, -1, 1)
            )
    return utilities


def make_push_script(
    operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
) -> PushScript:
    return PushScript(operator, behaviour, rng, hand)


def _prefer(*labels: str, others: float = 0.25) -> dict[str, float]:
    """Weight 1 for ``labels``, ``others`` for the remaining behaviours: a soft preference."""
    return {label: 1.0 if label in labels else others for label in PushEnv.behaviours}


def _strategy(name: str, *labels: str) -> Strategy:
    return Strategy(name, _prefer(*labels), scene_weight=SCENE_WEIGHT)


# Soft preferences: an operator who prefers starting with red still starts with green
# when the green block is much nearer (``push_scene_utilities``, scene_weight 1).
SCENE_WEIGHT = 1.5  # I(B; s0) = 0.54 bits on the named population's initial states
PUSH_STRATEGIES = {
    "red_first": _strategy("red_first", "red-left", "red-right"),
    "green_first": _strategy("green_first", "green-left", "green-right"),
    "left_first": _strategy("left_first", "red-left", "green-left"),
    "right_first": _strategy("right_first", "red-right", "green-right"),
    "uniform": _strategy("uniform", *PushEnv.behaviours),
}
PUSH_STYLES = {
    "direct_fast": PushStyle("direct_fast", speed=0.014, push_speed=0.012, route="direct"),
    "retreat_slow": PushStyle(
        "retreat_slow", speed=0.011, push_speed=0.009, route="retreat", pause=0.3
    ),
    "curved": PushStyle("curved", speed=0.013, push_speed=0.011, bulge=0.06, clearance=0.08),
}
# The shared tiers; the worse one pauses before 40 % of contacts (mean 0.6 s) instead of
# 70 % (0.8 s): with the shared value most of its failures were running out of time, not
# mistakes (worse success 0.53 at 600 steps; 0.66 at 700 steps with these pauses).
PUSH_SKILLS = {
    **TIERS,
    "worse": dataclasses.replace(
        TIERS["worse"],
        motor=dataclasses.replace(TIERS["worse"].motor, pause_chance=0.4, pause_time=0.6),
    ),
}
