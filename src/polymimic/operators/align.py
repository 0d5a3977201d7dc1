"""Scripted operators for ``polymimic/Align-v1``.

The script is closed-loop and re-plans every step from the observation alone. It drives
the box with a sequence of straight pushes, each along one of the box's four face normals:
a *turn* push presses a long wall near one end (the lever turns the box), a *slide* push
presses a wall near its middle, offset a little against the remaining yaw error so the
box keeps its heading. For ``inside`` the rod is lifted over a wall into the cavity and
presses the walls' inner faces; for ``outside`` it stays out and presses outer faces,
going round the box (or over it) to change sides. Styles change *how* (speed, turning
before or after sliding, lifting over or walking round, pauses), strategies *which*
behaviour (softly pulled by the scene, ``align_scene_utilities``), and the skill is the
human motor model's (``polymimic.operators.motor``): the script only chooses aim points,
the ``Hand`` moves there with minimum-jerk submovements, endpoint errors and corrections.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from polymimic.envs.align import (
    BOX_HALF,
    INNER_HALF,
    TIP_HIGH,
    TIP_LOW,
    WALL_HEIGHT,
)
from polymimic.envs.objects import ROD_RADIUS, wrap_angle
from polymimic.operators.align_geometry import (  # noqa: F401  (align_scene_utilities: re-exported)
    GAP,
    BoxFrame,
    Push,
    align_scene_utilities,
    back_off,
    centre_reachable,
    point_reachable,
    room_to_push,
    segment_hits_rect,
)
from polymimic.operators.base import TIERS, Operator, Skill, Strategy
from polymimic.operators.motor import Hand

CLEAR_Z = WALL_HEIGHT + ROD_RADIUS + 0.012  # tip height at which the rod passes over a wall
TRAVEL_Z = TIP_HIGH - 0.005  # highest tip height aimed at when travelling over the box
SKIRT = 0.012  # m: clearance from the outer faces a path must keep (plus the rod radius)
CORNER = 0.03  # m: the detour corners' clearance from the outer faces (plus the rod radius)
# Largest lateral contact offsets along each wall (index = the push axis), keeping the rod
# on the face: outside, short of the wall's end; inside, clear of the side walls.
OUTSIDE_LEVER = (BOX_HALF[1] - 0.015, BOX_HALF[0] - 0.015)
INSIDE_LEVER = (INNER_HALF[1] - ROD_RADIUS - 0.01, INNER_HALF[0] - ROD_RADIUS - 0.01)
# Where the rod's centre may stand inside the cavity (its safe descent region).
CAVITY_SAFE = np.array(INNER_HALF) - ROD_RADIUS - 0.005
# Turn and slide pushes start / end at these errors (yaw; m per box axis). A push ends
# before what is left of it is smaller than the hand's push tolerance (PUSH_TOLERANCE):
# a smaller movement would never start.
YAW_START, YAW_DONE = math.radians(5.0), math.radians(3.5)
SLIDE_START, SLIDE_DONE = 0.009, 0.005
COARSE = 0.04  # m: a slide-first operator slides until the box is this close, then turns
# A turn push carries the box along the push by roughly this much per radian turned.
TURN_DRIFT = 0.08  # m/rad
# Pushing: the hand aims at most PUSH_LEAD past the contact point, never past the point
# where the box would sit on the target (a turn's rod travel: TURN_TRAVEL per radian).
PUSH_LEAD = 0.02  # m
TURN_TRAVEL = 0.08  # m/rad
PRE_PUSH_REACHED = 0.01  # m: the rod this close to the pre-push point (xy), at rest, pushes
# Fitts' tolerances W (m) of the aims: the pre-push point and the pushes need care (a
# push must be able to ask for the last few millimetres), a via-point little.
PRE_PUSH_TOLERANCE = 0.006
PUSH_TOLERANCE = 0.004
FREE_TOLERANCE = 0.02
BACK_OFF_TOLERANCE = 0.01
# A rise ends within this of the travel height, which stays this far above CLEAR_Z: a
# rise that falls short is corrected before the rod moves sideways over a wall.
RISE_TOLERANCE = 0.006
DESCENT_START = 0.03  # m: the seen tip this close to the goal, the descent into the box may start
HOLD_GAIN, HOLD_LIMIT = 0.4, 0.02  # slide offset per rad of yaw error (m/rad), its limit
STEER_LIMIT = math.radians(12.0)  # largest heading tilt while sliding
STEER_LOOKAHEAD = 0.06  # m: shortest distance the steering aims over


@dataclasses.dataclass(frozen=True)
class AlignStyle:
    """How an operator executes the pushes.

    Attributes:
        name: label stored with each demo.
        speed: peak hand speed while moving freely (m per step).
        push_speed: peak hand speed while pushing (m per step).
        route: outside only: "over" lifts the rod over the box to change sides,
            "around" walks round it at table height.
        turn_first: turn the box to the target yaw before sliding it; else a box whose
            yaw is off by less than ``slide_yaw`` is first slid close, then turned.
        slide_yaw: see ``turn_first`` (rad).
        lever: fraction of the largest lateral offset used for turn pushes.
        pause: seconds of stillness after each push (a look at the box).
        bulge: sideways offset (m) of the first approach's midpoint, flown above the walls.
        variation: per-episode relative jitter of the route (pre-push gap, turn lever,
            detour clearance, travel height, approach bulge, push lead), uniform in
            ``[1 - variation, 1 + variation]`` (the lever and the travel height only
            downwards: they are at their limits).
    """

    name: str
    speed: float = 0.012
    push_speed: float = 0.008
    route: str = "over"
    turn_first: bool = True
    slide_yaw: float = math.radians(40.0)
    lever: float = 1.0
    pause: float = 0.0
    bulge: float = 0.04
    variation: float = 0.35


class AlignScript:
    """One episode of aligning the box, pushing from ``inside`` or ``outside``.

    Every step the script reads the (delayed) observation, picks the current push (see
    ``_choose_push``) and gives the hand one aim point: a via-point of the route to the
    push's pre-push point, or, in contact, a point ahead of the contact point along the
    push. Routes are planned from where the hand believes it will come to rest
    (``Hand.believed_end``), so via-points blend into one movement; safety checks (is the
    rod above the walls, past the box) use the observed tip, so the rod never descends
    or moves sideways over a wall on a plan alone. Route distances vary per episode
    (``AlignStyle.variation``).
    """

    def __init__(
        self, operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
    ) -> None:
        if behaviour not in ("inside", "outside"):
            raise ValueError(f"unknown Align behaviour {behaviour!r}")
        self.inside = behaviour == "inside"
        self.style: AlignStyle = operator.style
        self.hand = hand
        self.push: Push | None = None
        self.pushing = False
        self.touched = False
        self.around_direction = 0  # +1 / -1: way round the box for this push, 0: not chosen
        self.rise: np.ndarray | None = None  # where a rise in place started (world xy)
        variation = self.style.variation
        jitter = lambda: 1.0 + variation * rng.uniform(-1.0, 1.0)  # noqa: E731
        self.gap = GAP * jitter()
        self.lever = self.style.lever * (1.0 - 0.5 * variation * rng.uniform(0.0, 1.0))
        self.corner = CORNER * jitter()
        low = CLEAR_Z + RISE_TOLERANCE + 0.002
        self.travel_z = TRAVEL_Z - (TRAVEL_Z - low) * min(variation, 1.0) * rng.uniform()
        self.lead = PUSH_LEAD * jitter()
        # The first approach flies above the walls through a sideways via-point.
        self.bulge = self.style.bulge * jitter() * rng.choice((-1.0, 1.0))

    @property
    def revisable(self) -> bool:
        """A change of mind is possible until the rod first pushes the box."""
        return not self.touched

    # ------------------------------------------------------------------ planning
    def _push_done(self, push: Push, frame: BoxFrame) -> bool:
        if push.kind == "turn":
            return abs(frame.yaw_error) < YAW_DONE
        end = frame.centre + frame.axes[push.axis] * frame.error[push.axis]
        if abs(frame.yaw_error) > YAW_START and not room_to_push(end, self.inside):
            return True  # the box turned while sliding, and its end drifted out of reach
        return push.sign * frame.error[push.axis] < SLIDE_DONE

    def _choose_push(self, frame: BoxFrame, tip_local: np.ndarray) -> Push | None:
        """The next push: a turn while the yaw is off, else a slide along a box axis.

        A turn-first operator turns whenever the yaw is off; a slide-first one first
        slides a roughly aligned box (yaw off by less than ``slide_yaw``) close to the
        target. A slide must not carry the box where the rod cannot push it (``room_to_push``).
        """
        error, yaw_off = frame.error, abs(frame.yaw_error)
        slide_first = (
            not self.style.turn_first
            and float(np.linalg.norm(error)) > COARSE
            and yaw_off < self.style.slide_yaw
        )
        if yaw_off > YAW_START and not slide_first:
            turn = self._choose_turn(frame, tip_local)
            if turn is not None:
                return turn
        slides = [
            Push("slide", int(axis), 1 if error[axis] > 0 else -1)
            for axis in np.argsort(-np.abs(error))
            if abs(error[axis]) > SLIDE_START
        ]
        slides = [push for push in slides if self._reachable(push, frame)]
        for push in slides:
            travel = frame.axes[push.axis] * error[push.axis]  # where the slide ends
            if room_to_push(frame.centre + travel, self.inside):
                return push
        if yaw_off > YAW_START:
            return self._choose_turn(frame, tip_local)
        return slides[0] if slides else None

    def _choose_turn(self, frame: BoxFrame, tip_local: np.ndarray) -> Push | None:
        """The turn push whose push also carries the box furthest towards the target.

        Turns press the long walls (the longer lever); the short walls only when neither
        long wall can be reached. When the box is nearly in place, the wall on the rod's
        side is preferred to save a trip round the box.
        """
        for axis in (1, 0):
            best, best_score = None, -math.inf
            for sign in (1, -1):
                push = Push("turn", axis, sign)
                if not self._reachable(push, frame):
                    continue
                normal = frame.axes[axis] * sign
                if not self.inside and not centre_reachable(
                    frame.centre + TURN_DRIFT * abs(frame.yaw_error) * normal
                ):
                    continue  # the turn would carry the box where some face is out of reach
                side = sign if self.inside else -sign  # rod's side of the box for this push
                score = sign * frame.error[axis] + 0.01 * side * float(np.sign(tip_local[axis]))
                if score > best_score:
                    best, best_score = push, score
            if best is not None:
                return best
        return None

    def _reachable(self, push: Push, frame: BoxFrame) -> bool:
        """Whether the push's contact point lies in the workspace, with a margin."""
        return point_reachable(frame.world(self._contact(push, frame)))

    def _pre_push(self, contact: np.ndarray, normal: np.ndarray, frame: BoxFrame) -> np.ndarray:
        """The point ``gap`` behind ``contact`` (box coordinates), nearer where out of reach."""
        for gap in (self.gap, 0.75 * self.gap, 0.5 * self.gap, 0.25 * self.gap):
            point = contact - gap * normal
            if point_reachable(frame.world(point)):
                return point
        return contact - 0.25 * self.gap * normal

    def _contact(self, push: Push, frame: BoxFrame) -> np.ndarray:
        """Where the rod's centre touches the wall for ``push`` (box coordinates).

        Pressing along n at a lateral offset o (along t = n turned +90 deg) applies the
        torque o t x n = -o about z per unit force: the offset's sign is opposite to the
        turn wanted.
        """
        normal = np.zeros(2)
        normal[push.axis] = push.sign
        lateral = np.array([-normal[1], normal[0]])
        lever = (INSIDE_LEVER if self.inside else OUTSIDE_LEVER)[push.axis]
        if push.kind == "turn":
            offset = -math.copysign(self.lever * lever, frame.yaw_error)
        else:
            offset = float(np.clip(self._slide_offset(push, frame), -lever, lever))
        if self.inside:
            depth = INNER_HALF[push.axis] - ROD_RADIUS
        else:
            depth = -(BOX_HALF[push.axis] + ROD_RADIUS)
        return depth * normal + offset * lateral

    @staticmethod
    def _slide_offset(push: Push, frame: BoxFrame) -> float:
        """A slide's small lateral offset: hold a heading tilted towards the target's line.

        Pure pursuit: the box's sideways error shrinks while it slides; the last turn push
        removes the tilt.
        """
        along = push.sign * frame.error[push.axis]
        sideways = push.sign * (frame.error[1] if push.axis == 0 else -frame.error[0])
        steer = math.atan2(sideways, max(along, STEER_LOOKAHEAD))
        steer = float(np.clip(steer, -STEER_LIMIT, STEER_LIMIT))
        return float(np.clip(-HOLD_GAIN * (frame.yaw_error + steer), -HOLD_LIMIT, HOLD_LIMIT))

    # ------------------------------------------------------------------ acting
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        tip = obs["tip_pos"].astype(np.float64)
        frame = BoxFrame.from_obs(obs)
        tip_local = frame.local(tip[:2])
        if self.push is not None and self._push_done(self.push, frame):
            self.push, self.pushing = None, False
            if self.style.pause > 0:
                self.hand.pause(self.style.pause)
        if self.push is None:
            self.push = self._choose_push(frame, tip_local)
            self.around_direction = 0
            if self.push is None:  # aligned (success ends the episode): hold still
                return self.hand.hold()
        push = self.push
        normal = np.zeros(2)
        normal[push.axis] = push.sign
        contact = self._contact(push, frame)
        pre_push = self._pre_push(contact, normal, frame)
        if self.pushing and not self._still_pushing(tip, tip_local, contact, normal):
            self.pushing = False  # slipped off the wall or lifted: line up again
        if not self.pushing and self._ready(tip, tip_local, pre_push, frame):
            self.pushing = True
        if self.pushing:
            self.touched = True
            aim = frame.world(contact + self._lead(push, frame) * normal)
            return self.hand.move(
                np.array([*aim, TIP_LOW]), self.style.push_speed, PUSH_TOLERANCE, contact=True
            )
        aim, tolerance = self._approach(tip, tip_local, pre_push, frame)
        return self.hand.move(aim, self.style.speed, tolerance)

    def _ready(
        self, tip: np.ndarray, tip_local: np.ndarray, pre_push: np.ndarray, frame: BoxFrame
    ) -> bool:
        """Whether the push can start: the hand believes it is arriving at the pre-push
        point, low, and the seen rod is low and nearly there.

        The push follows on from the approach without waiting to see where the approach
        really ends: its endpoint error, unknown until ``reaction_time`` after it ends,
        misplaces the contact (a slide turns the box, a turn's lever shortens or, past
        the wall's middle, turns it the wrong way) until the hand notices and corrects.
        """
        end = self.hand.believed_end()
        return (
            float(np.linalg.norm(frame.local(end[:2]) - pre_push)) < PRE_PUSH_TOLERANCE
            and end[2] < TIP_LOW + 0.005
            and float(np.linalg.norm(tip_local - pre_push)) < DESCENT_START
            and tip[2] < TIP_LOW + 0.02
        )

    def _still_pushing(
        self, tip: np.ndarray, tip_local: np.ndarray, contact: np.ndarray, normal: np.ndarray
    ) -> bool:
        """Whether the rod is still low, at the wall's depth and on the wall.

        The contact point itself may move along the wall (a slide's steering offset, a
        turning box): the rod follows it sliding on the wall, and is lost only off its end.
        """
        along = float((tip_local - contact) @ normal)
        lateral = abs(float(tip_local[0] * -normal[1] + tip_local[1] * normal[0]))
        axis = int(np.argmax(np.abs(normal)))
        on_wall = lateral < (INSIDE_LEVER if self.inside else OUTSIDE_LEVER)[axis] + 0.012
        return tip[2] < TIP_LOW + 0.015 and -self.gap - 0.015 < along < 0.01 and on_wall

    def _lead(self, push: Push, frame: BoxFrame) -> float:
        """How far past the contact point the hand aims: never past the target pose."""
        if push.kind == "turn":
            remaining = TURN_TRAVEL * abs(frame.yaw_error)
        else:
            remaining = push.sign * frame.error[push.axis]
        return float(np.clip(remaining, 0.0, self.lead))

    # ------------------------------------------------------------------ routing
    def _approach(
        self, tip: np.ndarray, tip_local: np.ndarray, goal: np.ndarray, frame: BoxFrame
    ) -> tuple[np.ndarray, float]:
        """The next aim (world x, y, z) towards the pre-push point ``goal`` (box
        coordinates), and its Fitts tolerance."""
        # In the cavity: anywhere a rod can stand inside the walls (pressing one included).
        in_cavity = bool(np.all(np.abs(tip_local) < CAVITY_SAFE + 0.008)) and tip[2] < CLEAR_Z
        if self.inside:
            if in_cavity:
                xy = frame.world(np.clip(goal, -CAVITY_SAFE, CAVITY_SAFE))
                return np.array([*xy, TIP_LOW]), PRE_PUSH_TOLERANCE
            return self._over(tip, tip_local, goal, frame, descend_at_goal=True)
        if in_cavity:  # the wrong side of the walls: climb out
            return self._rise(tip), RISE_TOLERANCE
        if self.style.route == "over":
            return self._over(tip, tip_local, goal, frame, descend_at_goal=False)
        skirt = np.array(BOX_HALF) + ROD_RADIUS + SKIRT
        if np.all(np.abs(tip_local) < skirt):  # pressed against a face: back off first
            return np.array([*frame.world(back_off(tip_local, skirt)), TIP_LOW]), (
                BACK_OFF_TOLERANCE
            )
        waypoint = self._around(tip_local, goal)
        tolerance = PRE_PUSH_TOLERANCE if waypoint is goal else FREE_TOLERANCE
        return np.array([*frame.world(waypoint), TIP_LOW]), tolerance

    def _rise(self, tip: np.ndarray) -> np.ndarray:
        """Straight up to the travel height from where the rise began (or the hand's end)."""
        if self.rise is None:
            end = self.hand.believed_end()
            self.rise = end[:2] if end[2] < CLEAR_Z else tip[:2]
        return np.array([*self.rise, self.travel_z])

    def _over(
        self,
        tip: np.ndarray,
        tip_local: np.ndarray,
        goal: np.ndarray,
        frame: BoxFrame,
        descend_at_goal: bool,
    ) -> tuple[np.ndarray, float]:
        """Lift over the walls when the straight way to ``goal`` crosses the box.

        The rod moves sideways only once the *seen* tip is above the walls, and descends
        only once the seen tip is past the box (outside) or over the goal and the hand is
        at rest (inside): the delayed view makes these checks conservative.
        """
        skirt = np.array(BOX_HALF) + ROD_RADIUS + SKIRT
        # A rod just done pressing an outer face steps back from it first: from there the
        # way to a goal on the same side stays low.
        pressed = tip[2] < CLEAR_Z and bool(np.all(np.abs(tip_local) < skirt))
        start = back_off(tip_local, skirt) if pressed else tip_local
        over_goal = np.linalg.norm(tip_local - goal) < PRE_PUSH_REACHED
        clear = over_goal or not segment_hits_rect(start, goal, skirt)
        if not descend_at_goal and clear:
            self.rise = None
            if pressed:
                return np.array([*frame.world(start), TIP_LOW]), BACK_OFF_TOLERANCE
            return np.array([*frame.world(goal), TIP_LOW]), PRE_PUSH_TOLERANCE
        if tip[2] < CLEAR_Z:  # rise in place first: moving low would hit a wall
            return self._rise(tip), RISE_TOLERANCE
        self.rise = None
        if descend_at_goal and self._descend_into(tip_local, goal, frame):
            return np.array([*frame.world(goal), TIP_LOW]), PRE_PUSH_TOLERANCE
        via = self._via(frame.world(goal), frame, skirt)
        tolerance = PRE_PUSH_TOLERANCE if via is None else FREE_TOLERANCE
        xy = frame.world(goal) if via is None else via
        return np.array([*xy, self.travel_z]), tolerance

    def _descend_into(self, tip_local: np.ndarray, goal: np.ndarray, frame: BoxFrame) -> bool:
        """Whether to lower the rod into the cavity now.

        The descent starts as the flight ends, once the hand *believes* it is coming to
        rest over the goal and the seen tip is close: the flight's endpoint error is not
        known yet (``Hand.believed_end``), so a noisy hand may come down on a wall, which
        shoves and turns the box (a misjudged contact the script then has to undo).
        """
        end_local = frame.local(self.hand.believed_end()[:2])
        return (
            float(np.linalg.norm(end_local - goal)) < PRE_PUSH_TOLERANCE
            and float(np.linalg.norm(tip_local - goal)) < DESCENT_START
        )

    def _via(self, goal: np.ndarray, frame: BoxFrame, skirt: np.ndarray) -> np.ndarray | None:
        """The first approach's sideways via-point (world xy), None for a straight flight.

        Only before the first push, only far from the goal and never above the box.
        """
        end = self.hand.believed_end()[:2]
        if self.touched or self.bulge == 0 or np.linalg.norm(goal - end) < 0.1:
            return None
        seg = goal - end
        via = 0.5 * (end + goal) + self.bulge * np.array([-seg[1], seg[0]]) / np.linalg.norm(seg)
        if np.all(np.abs(frame.local(via)) < skirt + 0.03):
            return None
        return via

    def _around(self, tip_local: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Next waypoint (box coordinates) of a path round the box at table height."""
        skirt = np.array(BOX_HALF) + ROD_RADIUS + SKIRT
        if not segment_hits_rect(tip_local, goal, skirt):
            return goal
        # Walk the detour corners in one rotational direction (the shorter way round,
        # kept for the whole push so the walk cannot dither between two corners).
        angle = math.atan2(tip_local[1], tip_local[0])
        if self.around_direction == 0:
            turn = wrap_angle(math.atan2(goal[1], goal[0]) - angle)
            self.around_direction = 1 if turn >= 0 else -1
        corner = np.array(BOX_HALF) + ROD_RADIUS + self.corner
        best, best_ahead = goal, math.inf
        for c in (corner * (1, 1), corner * (-1, 1), corner * (-1, -1), corner * (1, -1)):
            ahead = (self.around_direction * (math.atan2(c[1], c[0]) - angle)) % (2 * math.pi)
            # The next corner round, not the one just reached (nor one the workspace's
            # clip keeps the rod from reaching: within a via-point's tolerance of it).
            reached = float(np.linalg.norm(c - tip_local)) < FREE_TOLERANCE + 0.01
            if 0.05 < ahead < best_ahead and not reached:
                best, best_ahead = c, ahead
        return best


def make_align_script(
    operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
) -> AlignScript:
    return AlignScript(operator, behaviour, rng, hand)


ALIGN_STRATEGIES = {
    "inside": Strategy("inside", {"inside": 1.0}),
    "outside": Strategy("outside", {"outside": 1.0}),
    "uniform": Strategy("uniform", {"inside": 1.0, "outside": 1.0}),
}
ALIGN_STYLES = {
    "direct_fast": AlignStyle("direct_fast", speed=0.013, push_speed=0.009, route="over"),
    "slide_first": AlignStyle(
        "slide_first", speed=0.011, push_speed=0.008, route="over", turn_first=False, lever=0.9
    ),
    "careful_slow": AlignStyle(
        "careful_slow",
        speed=0.009,
        push_speed=0.007,
        route="around",
        turn_first=False,
        lever=0.8,
        pause=0.2,
    ),
}
# Calibrated with scripts/quality_table.py (30 episodes per tier, direct_fast). Better and
# okay are the shared TIERS. Worse is slower still (speed 0.6: pushing is most of an Align
# demo, so the peak speed sets its length; 1.5x better's) and noisier (endpoint noise
# 0.15: approaches end further off the pre-push point, so contacts are misplaced and the
# box turns while sliding, which costs extra turn pushes).
ALIGN_SKILLS = {
    "better": Skill("better", TIERS["better"].motor),
    "okay": Skill("okay", TIERS["okay"].motor),
    "worse": Skill("worse", dataclasses.replace(
        TIERS["worse"].motor, speed=0.6, endpoint_noise=0.15,
    )),
}  # fmt: skip
