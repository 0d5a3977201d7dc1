"""Scripted operators for ``polymimic/Sort{2,4,6}-v1``.

The behaviour label is the colour order to realise (e.g. ``"RBBR"``). The script is
closed-loop and re-plans every step from the observation alone: for the next colour of
the order it picks one not-yet-sorted block of that colour (which one is the style's
choice), routes the rod around every other block to the point behind it, and pushes it
straight sideways along its row into its zone. The start slots never share a row, so that
straight push meets no other block, whatever the order. Styles change the block choice,
speed, clearance and pauses; the hand (``polymimic.operators.motor``) moves between the
script's aim points the way a person's would.

Pushing a cube with a slippery rod is steered through its yaw (an off-centre contact turns
it), and the operator sees the cube a reaction time late. Three things keep the push on its
row, as they would for a person: the block's drift and turning are extrapolated over part
of the delay (``MotorSkill.prediction``, falling with skill), the row runs through the
middle of the gap the block must pass (not along its jittered start x), and a cube turned
near 45° keeps being pushed on the same face (``steer_direction``'s hysteresis). With the
slots moved 2 cm from the near edge of the rod's reach (``envs.sort.SLOT_X``), Sort6's
better tier (expert style, uniform order) succeeded in 94 of 100 episodes (seeds
1000-1099); without these it succeeded in 29 of 40 (seeds 1000-1039).

The route's corners blend only once the hand itself can see the next leg
(``next_via_point``'s ``hand_at``): blended from the planned end alone, a route round a
block near the rod's start cut straight through it. With that, the same 100 episodes
succeed 96 times, and each of the three styles 39 times in 40 (better tier, seeds
1000-1039; before: 37, 31 and 34).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from polymimic.envs.objects import ROD_RADIUS
from polymimic.envs.sort import (
    BLOCK_HALF,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    ZONE_SIDE,
    ZONE_X,
    ZONE_Y,
    colour_sequences,
)
from polymimic.operators.base import TIERS, Operator, Skill, Strategy
from polymimic.operators.motor import Hand
from polymimic.operators.pushing import (
    FREE_TOLERANCE,
    PRE_PUSH_GAP,
    PRE_PUSH_TOLERANCE,
    PUSH_LEAD,
    BlockPush,
    ReachWatch,
    next_via_point,
    steer_direction,
    via_tolerance,
)

# The push follows the block's start row sideways: its direction is the zone's side plus
# ROW_GAIN x (row x - block x), so a block drifting off its row is steered back long
# before it could reach the next row or the workspace's far edge. It stops once the
# centre is 4.5 cm inside the zone strip (|y| >= DONE_DEPTH).
ROW_GAIN = 8.0  # 1/m: 1 cm off the row turns the wanted travel by 4.6 degrees
ROW_STEER_MAX = 1.5  # largest x-component of the wanted travel (per unit sideways): 14 deg
# Rows are followed at x within this range (m): 6 cm inside the rod's reachable x range.
ROW_X_RANGE = (float(WORKSPACE_LOW[0]) + 0.04, float(WORKSPACE_HIGH[0]) - 0.04)
STEER_GAIN = 0.5  # push overshoot per unit of face-normal error (see steer_direction)
DONE_DEPTH = 0.225  # m
# Centre distance below which the rod touches a cube at any yaw (half-diagonal + radius).
CONTACT_DISTANCE = BLOCK_HALF * np.sqrt(2) + ROD_RADIUS
TARGET_KEEP_OUT = CONTACT_DISTANCE + 0.022  # the block about to be pushed: skirt it (blended corners cut in)
BACK_OFF = 0.03  # m the rod backs away from a delivered block before moving on
MAX_BLOCK_STEP = 0.02  # m per step: a larger jump is a knock, not a push
GAP_SEARCH = 0.12  # m: blocks this close in x to the pushed one's path bound its gap
PICKS = ("nearest", "near_first", "far_first")


@dataclasses.dataclass(frozen=True)
class SortStyle:
    """How an operator executes a sorting order.

    Attributes:
        name: label stored with each demo.
        speed: peak hand speed while moving freely (m per step).
        push_speed: peak hand speed while pushing (m per step).
        clearance: keep-out radius around blocks other than the one being pushed (m).
        pick: which block of the requested colour goes next: ``"nearest"`` to the rod,
            ``"near_first"`` (closest to the robot, smallest x) or ``"far_first"``.
        pause: seconds of stillness after each block is delivered (a look at the scene).
        variation: per-episode relative jitter of the clearance and the back-off,
            uniform in ``[1 - variation, 1 + variation]``.
    """

    name: str
    speed: float = 0.012
    push_speed: float = 0.008
    clearance: float = 0.065
    pick: str = "nearest"
    pause: float = 0.0
    variation: float = 0.35

    def __post_init__(self) -> None:
        if self.pick not in PICKS:
            raise ValueError(f"pick={self.pick!r} is not one of {PICKS}")


def _blocks(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """Blocks (n, 4: x, y, sin 4θ, cos 4θ) in env index order (reds, blues); their colours."""
    red = obs["red_blocks"].reshape(-1, 4)
    blue = obs["blue_blocks"].reshape(-1, 4)
    return np.vstack([red, blue]).astype(np.float64), "R" * len(red) + "B" * len(blue)


def _any_missorted(blocks: np.ndarray, colours: str) -> bool:
    """Whether a block is inside the other colour's zone (the task then fails for good)."""
    for (x, y), colour in zip(blocks, colours, strict=True):
        if ZONE_X[0] <= x <= ZONE_X[1] and ZONE_Y[0] <= -ZONE_SIDE[colour] * y <= ZONE_Y[1]:
            return True
    return False


class SortScript:
    """One episode of sorting blocks in the colour order ``behaviour``."""

    def __init__(
        self, operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
    ) -> None:
        if set(behaviour) - {"R", "B"}:
            raise ValueError(f"{behaviour!r} is not a colour order of 'R' and 'B'")
        self.order = behaviour
        self.style: SortStyle = operator.style
        self.hand = hand
        self.stage = 0  # index into the order of the block being delivered
        self.current = -1  # env index of that block; -1: not chosen yet
        self.row_x = 0.0  # x of that block's row, fixed when it is chosen
        self.push = BlockPush(BLOCK_HALF, ROD_RADIUS, WORKSPACE_LOW, WORKSPACE_HIGH)
        self.touched = False
        self._seen: np.ndarray | None = None  # pushed block as last seen: x, y, 4 yaw
        self._rate = np.zeros(3)  # its smoothed rate of change per step
        self._face: float | None = None  # normal angle of the face it is pushed on
        self.reach = ReachWatch(WORKSPACE_LOW, WORKSPACE_HIGH)
        self.abandoned = False  # a block pushed out of the rod's reach: the demo is given up
        jitter = lambda: 1.0 + self.style.variation * rng.uniform(-1.0, 1.0)  # noqa: E731
        self.clearance = self.style.clearance * jitter()
        self.back_off = BACK_OFF * jitter()

    @property
    def revisable(self) -> bool:
        """A change of mind is possible until the rod first pushes a block."""
        return not self.touched

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.stage >= len(self.order) or self.abandoned:
            return self.hand.hold()
        tip = obs["tip_pos"].astype(np.float64)
        poses, colours = _blocks(obs)
        blocks = poses[:, :2]
        if _any_missorted(blocks, colours):  # the demo is spoiled, and the operator sees it
            self.abandoned = True
            return self.hand.hold()
        if self.current < 0:
            self._choose(tip, blocks, colours)
        block = blocks[self.current]
        side = ZONE_SIDE[colours[self.current]]
        # Delivered: deep enough in its zone, or in it and pushed beyond the rod's reach.
        in_zone = side * block[1] >= ZONE_Y[0] and self.reach.steps > 0
        if side * block[1] >= DONE_DEPTH or in_zone:  # back off, then the next colour
            self.stage, self.current, self._seen, self._face = self.stage + 1, -1, None, None
            self.push = BlockPush(BLOCK_HALF, ROD_RADIUS, WORKSPACE_LOW, WORKSPACE_HIGH)
            self.reach = ReachWatch(WORKSPACE_LOW, WORKSPACE_HIGH)
            if self.style.pause > 0:
                self.hand.pause(self.style.pause)
            back = tip - np.array([0.0, side * self.back_off])
            return self.hand.move(back, self.style.speed, FREE_TOLERANCE)
        # Steering back to the row is bounded: a hand that reacts late overshoots a steep
        # correction and sends the block across the row towards the workspace edge.
        pose = self._predicted(poses[self.current])
        block = pose[:2]
        direction = self._push_direction(pose, side)
        lead = min(PUSH_LEAD, max(DONE_DEPTH + 0.01 - side * block[1], 0.0))
        aim, pushing = self.push.aim(tip, block, block + direction, lead, not self.hand.moving)
        if not pushing and self.reach.unreachable(self.push.wanted):
            self.abandoned = True
            return self.hand.hold()
        if pushing:
            self.touched = True
            return self.hand.track(aim, self.style.push_speed, along=direction)
        waypoint = self._route(self.hand.believed_end(), aim, blocks)
        tolerance = (
            PRE_PUSH_TOLERANCE if np.array_equal(waypoint, aim)
            else via_tolerance(waypoint, self.hand.believed_end())
        )
        return self.hand.move(waypoint, self.style.speed, tolerance)

    def _predicted(self, pose: np.ndarray) -> np.ndarray:
        """The pushed block's pose now, from its pose seen a reaction time ago.

        People offset their sensory delay by extrapolating a moving object's motion
        (Nijhawan 1994; Wolpert & Flanagan 2001). The block's sideways drift and turning
        rate, estimated from the delayed views, carry its x and yaw forward over the
        skill's ``prediction`` share of the reaction time: a cube pushed at a point turns
        fast, and a hand steering from where it *was* overshoots and sends it off its row
        (better tier, Sort2, 30 episodes: x drift per block median 4.3 cm without, 1.7 cm
        with half the reaction time).
        """
        angle = math.atan2(pose[2], pose[3])  # 4 yaw
        if self._seen is not None and np.linalg.norm(pose[:2] - self._seen[:2]) < MAX_BLOCK_STEP:
            rate = np.array([*(pose[:2] - self._seen[:2]),
                             (angle - self._seen[2] + math.pi) % (2 * math.pi) - math.pi])
            self._rate = 0.5 * self._rate + 0.5 * rate
        else:
            self._rate = np.zeros(3)
        self._seen = np.array([pose[0], pose[1], angle])
        ahead = self._rate * self.hand.reveal_delay * self.hand.skill.prediction
        turned = angle + ahead[2]
        return np.array([pose[0] + ahead[0], pose[1], math.sin(turned), math.cos(turned)])

    def _push_direction(self, pose: np.ndarray, side: float) -> np.ndarray:
        """Sideways into the zone, steered back towards the row where the rod can do it.

        The steer needs the rod on the far side of the block's drift: a block that drifted
        to the edge of the rod's reach is pushed straight sideways instead (a person pushes
        it the way they can rather than not at all).
        """
        block = pose[:2]
        back = float(np.clip(ROW_GAIN * (self.row_x - block[0]), -ROW_STEER_MAX, ROW_STEER_MAX))
        for steer in (back, 0.0):
            direction, face = steer_direction(
                np.array([steer, side]), *pose[2:], gain=STEER_GAIN, face=self._face
            )
            behind = block[0] - (self.push.offset + PRE_PUSH_GAP) * direction[0]
            if WORKSPACE_LOW[0] <= behind <= WORKSPACE_HIGH[0]:
                break
        self._face = face
        return direction

    def _choose(self, tip: np.ndarray, blocks: np.ndarray, colours: str) -> None:
        """Lock the block of the next colour in the order that the style picks."""
        colour = self.order[self.stage]
        side = ZONE_SIDE[colour]
        candidates = [
            i
            for i, c in enumerate(colours)
            if c == colour and side * blocks[i, 1] < ZONE_Y[0]  # not in its zone yet
        ]
        if not candidates:  # all of this colour already sorted (bumped in): any of them
            candidates = [i for i, c in enumerate(colours) if c == colour]
        if self.style.pick == "nearest":
            key = [float(np.linalg.norm(blocks[i] - tip)) for i in candidates]
        elif self.style.pick == "near_first":
            key = [float(blocks[i, 0]) for i in candidates]
        else:
            key = [-float(blocks[i, 0]) for i in candidates]
        self.current = candidates[int(np.argmin(key))]
        # Straight sideways along the block's own row: that row holds no other start slot.
        # A block next to the workspace's x edges is steered a little inward: a hand
        # that reacts late lets it drift, and past the edge the rod cannot get behind it.
        self.row_x = float(np.clip(self._gap_centre(blocks, side), *ROW_X_RANGE))

    def _gap_centre(self, blocks: np.ndarray, side: float) -> float:
        """x of the middle of the gap the chosen block must pass through on its way.

        The blocks between it and its zone that are nearest on either side in x bound the
        gap; a person steers through its middle, not along the block's own start x (the
        start jitter leaves as little as 1.5 cm on one side).
        """
        x, y = blocks[self.current]
        ahead = [
            b for i, b in enumerate(blocks)
            if i != self.current and side * y < side * b[1] < ZONE_Y[0]
            and abs(b[0] - x) < GAP_SEARCH
        ]  # fmt: skip
        lower = [b[0] for b in ahead if b[0] <= x]
        upper = [b[0] for b in ahead if b[0] > x]
        if lower and upper:
            return 0.5 * (max(lower) + min(upper))
        return float(x)

    def _route(self, tip: np.ndarray, goal: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        radii = np.full(len(blocks), max(self.clearance, TARGET_KEEP_OUT))
        radii[self.current] = TARGET_KEEP_OUT
        return next_via_point(tip, goal, blocks, radii, WORKSPACE_LOW, WORKSPACE_HIGH,
                              FREE_TOLERANCE, hand_at=self.hand.position[:2])  # fmt: skip


def make_sort_script(
    operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
) -> SortScript:
    return SortScript(operator, behaviour, rng, hand)


#: Distance (m) by which the nearest red and nearest blue block's distances from the hand
#: must differ to move a utility by 1 (about a block's width: a clear difference).
NEAREST_SCALE = 0.05


def sort_scene_utilities(obs: dict[str, np.ndarray]) -> dict[str, float]:
    """How the scene pulls on the choice of colour order: start with the nearer colour.

    ``u(order) = clip((d_other - d_first) / NEAREST_SCALE, -1, 1)`` with ``d_first`` the
    distance from the hand to the nearest block of the order's first colour that is not in
    its zone yet and ``d_other`` that of the other colour: people tend to start with the
    block nearest their hand. Only the first colour is scored; the rest of the order is
    left to the strategy's preferences. ``Strategy.probabilities`` turns these into
    choice probabilities (bounded utilities: never a certain choice).
    """
    hand = obs["tip_pos"][:2].astype(np.float64)
    poses, colours = _blocks(obs)
    nearest = {}
    for colour in ("R", "B"):
        index = [i for i, c in enumerate(colours) if c == colour]
        waiting = [i for i in index if ZONE_SIDE[colour] * poses[i, 1] < ZONE_Y[0]] or index
        nearest[colour] = min(float(np.linalg.norm(poses[i, :2] - hand)) for i in waiting)
    labels = colour_sequences(len(colours))
    return {
        label: float(np.clip(
            (nearest["B" if label[0] == "R" else "R"] - nearest[label[0]]) / NEAREST_SCALE,
            -1.0, 1.0,
        ))
        for label in labels
    }  # fmt: skip


# Soft preferences (as Push's): the preferred orders weigh 1, the others OTHERS; the scene
# (``sort_scene_utilities``) moves them by up to exp(+-SCENE_WEIGHT), so an operator who
# prefers reds first still starts with blue fairly often when a blue block is much nearer.
OTHERS = 0.25
SCENE_WEIGHT = 1.0


def sort_strategies(behaviours: tuple[str, ...]) -> dict[str, Strategy]:
    """Order preferences over a variant's labels: uniform, reds first, blues first,
    alternating colours (the labels with no two equal neighbours), each soft."""

    def strategy(name: str, labels: list[str]) -> Strategy:
        weights = {b: 1.0 if b in labels else OTHERS for b in behaviours}
        return Strategy(name, weights, scene_weight=SCENE_WEIGHT)

    alternating = [b for b in behaviours if "RR" not in b and "BB" not in b]
    return {
        "uniform": strategy("uniform", list(behaviours)),
        "reds_first": strategy("reds_first", [b for b in behaviours if b[0] == "R"]),
        "blues_first": strategy("blues_first", [b for b in behaviours if b[0] == "B"]),
        "alternating": strategy("alternating", alternating),
    }


SORT_STYLES = {
    "direct_fast": SortStyle("direct_fast", speed=0.014, push_speed=0.012, clearance=0.06),
    "near_first_slow": SortStyle(
        "near_first_slow",
        speed=0.011,
        push_speed=0.009,
        clearance=0.075,
        pick="near_first",
        pause=0.25,
    ),
    "far_first": SortStyle("far_first", speed=0.013, push_speed=0.011, pick="far_first"),
}
# The shared tiers, with steadier hands: with four to six blocks close together a curved or
# noisy approach knocks a neighbour, and a block knocked against the near edge of the
# workspace cannot be pushed back (the rod cannot get behind it). The worse tier's pauses
# before a push are shorter than the shared 0.8 s (mean): it pauses before every one of the
# many pushes and re-pushes of a sort, and the time limit should end only stuck episodes.
SORT_SKILLS = {
    quality: dataclasses.replace(
        skill, motor=dataclasses.replace(
            skill.motor, curvature=0.03, operator_curvature=0.03,
            endpoint_noise=skill.motor.endpoint_noise * 0.7,
            pause_time=min(skill.motor.pause_time, 0.5),
        )
    )
    for quality, skill in TIERS.items()
}  # fmt: skip
# The better tier steadier still: with four or six 4 cm cubes a few centimetres apart, the
# shared tiers' better hand knocked a neighbour in about 1 demo in 8 (Sort4).
SORT_SKILLS["better"] = dataclasses.replace(
    SORT_SKILLS["better"],
    motor=dataclasses.replace(SORT_SKILLS["better"].motor, curvature=0.02,
                              operator_curvature=0.02, endpoint_noise=0.015,
                              velocity_noise=0.02),
)  # fmt: skip

# The worse tier per number of blocks (issue 12's 60-85 % success and >= 1.5x the better
# tier's length, on the named datasets' 100 / 100 / 200 worse demos). One worse hand did not
# fit all three: two blocks far apart forgive what six close together do not.
# - Sort2: with the shared worse hand 93 of 100 demos succeeded (noisier endpoints or
#   velocity alone: 91-94). A later, noisier hand (reaction 0.4 s, endpoint noise 0.16,
#   velocity noise 0.2) loses the pushed block off its row more often: 76 of 100. The
#   reaction time is above the 0.3 s of the shared worse tier: with 0.3 s and the same
#   noise 88 of 100 succeeded.
# - Sort4: 86 of 100 with the shared worse hand; reacting at 0.35 s: 82 of 100.
# - Sort6: 59 of 200 failed too often (59 %) and was 1.495x the better tier's length.
#   Slower (speed 0.5: 0.65 before) with a little prediction of the pushed block's drift
#   (0.2 of the delay; the okay tier's is 0.25): the first 30 demos of each worse operator
#   succeed 48 times in 60, at 933 steps (1.58x better's 592). Slower alone (0.58): 0.62,
#   932 steps; prediction alone shortens the demos (0.58 and 0.2: 859 steps, 1.45x).
# On the regenerated named datasets (scripts/operator_stats.py): Sort2 worse 76 of 100 at
# 349 steps (2.2x better's 159), Sort4 82 of 100 at 621 (1.66x 374), Sort6 158 of 200 at
# 924 (1.56x 592); tip power above 3 Hz 0.024 / 0.021 / 0.020.
SORT_WORSE_BY_BLOCKS = {
    2: dict(reaction_time=0.4, endpoint_noise=0.16, velocity_noise=0.2),
    4: dict(reaction_time=0.35),
    6: dict(speed=0.5, prediction=0.2),
}


def sort_skills(blocks: int) -> dict[str, Skill]:
    """``SORT_SKILLS`` with the worse tier of a Sort variant with ``blocks`` blocks."""
    worse = SORT_SKILLS["worse"]
    return {
        **SORT_SKILLS,
        "worse": dataclasses.replace(
            worse, motor=dataclasses.replace(worse.motor, **SORT_WORSE_BY_BLOCKS[blocks])
        ),
    }
