"""Scripted operators for ``polymimic/Align-v0``.

The script is closed-loop and re-plans every step from the observation alone. It drives
the box with a sequence of straight pushes, each along one of the box's four face normals:
a *turn* push presses a long wall near one end (the lever turns the box), a *slide* push
presses a wall near its middle, offset a little against the remaining yaw error so the
box keeps its heading. For ``inside`` the rod is lifted over a wall into the cavity and
presses the walls' inner faces; for ``outside`` it stays out and presses outer faces,
going round the box (or over it) to change sides. Styles change *how* (speed, turning
before or after sliding, lifting over or walking round, pauses), strategies *which*
behaviour, skill adds time-correlated aim errors.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from polymimic.envs.align import (
    BOX_HALF,
    BOX_SYMMETRY,
    INNER_HALF,
    MAX_STEP,
    REACH_RADIUS,
    TIP_HIGH,
    TIP_LOW,
    WALL_HEIGHT,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
)
from polymimic.envs.objects import ROD_RADIUS, wrap_angle
from polymimic.operators.base import Operator, Skill, Strategy

CLEAR_Z = WALL_HEIGHT + ROD_RADIUS + 0.012  # tip height at which the rod passes over a wall
TRAVEL_Z = TIP_HIGH - 0.005  # tip height aimed at when travelling over the box
GAP = 0.02  # m: the pre-push point lies this far behind the contact point
SKIRT = 0.012  # m: clearance from the outer faces a path must keep (plus the rod radius)
CORNER = 0.03  # m: the detour corners' clearance from the outer faces (plus the rod radius)
# Largest lateral contact offsets along each wall (index = the push axis), keeping the rod
# on the face: outside, short of the wall's end; inside, clear of the side walls.
OUTSIDE_LEVER = (BOX_HALF[1] - 0.015, BOX_HALF[0] - 0.015)
INSIDE_LEVER = (INNER_HALF[1] - ROD_RADIUS - 0.01, INNER_HALF[0] - ROD_RADIUS - 0.01)
# Where the rod's centre may stand inside the cavity (its safe descent region).
CAVITY_SAFE = np.array(INNER_HALF) - ROD_RADIUS - 0.005
YAW_START, YAW_DONE = math.radians(4.0), math.radians(1.5)  # turn pushes start / end
SLIDE_START, SLIDE_DONE = 0.008, 0.003  # m: slide pushes start / end (per box axis)
COARSE = 0.04  # m: a slide-first operator slides until the box is this close, then turns
# Contact and pre-push points must lie this far inside the workspace's clip region.
REACH_MARGIN = 0.005  # m
# A turn push carries the box along the push by roughly this much per radian turned.
TURN_DRIFT = 0.08  # m/rad
HOLD_GAIN, HOLD_LIMIT = 0.4, 0.02  # slide offset per rad of yaw error (m/rad), its limit
STEER_LIMIT = math.radians(12.0)  # largest heading tilt while sliding
STEER_LOOKAHEAD = 0.06  # m: shortest distance the steering aims over


@dataclasses.dataclass(frozen=True)
class AlignStyle:
    """How an operator executes the pushes.

    Attributes:
        name: label stored with each demo.
        speed: tip travel per step while moving freely (m).
        push_speed: tip travel per step while pushing (m).
        route: outside only: "over" lifts the rod over the box to change sides,
            "around" walks round it at table height.
        turn_first: turn the box to the target yaw before sliding it; else a box whose
            yaw is off by less than ``slide_yaw`` is first slid close, then turned.
        slide_yaw: see ``turn_first`` (rad).
        lever: fraction of the largest lateral offset used for turn pushes.
        pause_steps: steps of stillness after each push.
    """

    name: str
    speed: float = 0.012
    push_speed: float = 0.008
    route: str = "over"
    turn_first: bool = True
    slide_yaw: float = math.radians(40.0)
    lever: float = 1.0
    pause_steps: int = 0


@dataclasses.dataclass(frozen=True)
class Push:
    """One straight push: along ``sign`` times box axis ``axis`` (0: long, 1: short)."""

    kind: str  # "turn" or "slide"
    axis: int
    sign: int


@dataclasses.dataclass(frozen=True)
class BoxFrame:
    """The box's pose and the target error, as read from one observation."""

    centre: np.ndarray
    axes: np.ndarray  # rows: the box's long (x) and short (y) axes in the world
    error: np.ndarray  # target centre - box centre, in box coordinates
    yaw_error: float  # target yaw - box yaw, wrapped modulo the half turn

    @classmethod
    def from_obs(cls, obs: dict[str, np.ndarray]) -> BoxFrame:
        box, target = obs["box"].astype(np.float64), obs["target"].astype(np.float64)
        target_yaw = 0.5 * math.atan2(target[2], target[3])
        # Of the two yaws (a half turn apart) the box looks the same at, take the one
        # nearer the target's, so the frame does not flip while the box turns past 90 deg.
        yaw_error = wrap_angle(target_yaw - 0.5 * math.atan2(box[2], box[3]), BOX_SYMMETRY)
        yaw = target_yaw - yaw_error
        c, s = math.cos(yaw), math.sin(yaw)
        axes = np.array([[c, s], [-s, c]])
        return cls(box[:2], axes, axes @ (target[:2] - box[:2]), yaw_error)

    def local(self, point: np.ndarray) -> np.ndarray:
        return self.axes @ (point - self.centre)

    def world(self, local: np.ndarray) -> np.ndarray:
        return self.centre + self.axes.T @ local


def _point_reachable(point: np.ndarray, margin: float = REACH_MARGIN) -> bool:
    """Whether the tip can be put at ``point`` (world x, y) with ``margin`` to spare."""
    inside_box = np.all(point >= WORKSPACE_LOW[:2] + margin) and np.all(
        point <= WORKSPACE_HIGH[:2] - margin
    )
    return bool(inside_box) and math.hypot(point[0], point[1]) <= REACH_RADIUS - margin


def _centre_reachable(centre: np.ndarray) -> bool:
    """Whether every face of a box centred here can be pushed from outside."""
    return _point_reachable(centre, REACH_MARGIN + BOX_HALF[0] + ROD_RADIUS + GAP)


def _segment_hits_rect(p: np.ndarray, q: np.ndarray, half: np.ndarray) -> bool:
    """Whether segment pq (box coordinates) meets the centred rectangle ``|x| <= half``."""
    t0, t1 = 0.0, 1.0
    d = q - p
    for k in range(2):  # Liang-Barsky clipping against the slab |x_k| <= half_k
        if abs(d[k]) < 1e-12:
            if abs(p[k]) > half[k]:
                return False
            continue
        a, b = (-half[k] - p[k]) / d[k], (half[k] - p[k]) / d[k]
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
        if t0 > t1:
            return False
    return True


class AlignScript:
    """One episode of aligning the box, pushing from ``inside`` or ``outside``."""

    def __init__(self, operator: Operator, behaviour: str, rng: np.random.Generator) -> None:
        if behaviour not in ("inside", "outside"):
            raise ValueError(f"unknown Align behaviour {behaviour!r}")
        self.inside = behaviour == "inside"
        self.style: AlignStyle = operator.style
        self.skill: Skill = operator.skill
        self.rng = rng
        self.push: Push | None = None
        self.pushing = False
        self.around_direction = 0  # +1 / -1: way round the box for this push, 0: not chosen
        self.pause = 0
        self.drift = np.zeros(2)

    # ------------------------------------------------------------------ skill
    def _update_drift(self) -> np.ndarray:
        """Ornstein-Uhlenbeck aim offset with stationary std ``skill.drift``."""
        if self.skill.drift <= 0:
            return self.drift
        decay = math.exp(-1.0 / self.skill.drift_time)
        self.drift = decay * self.drift + self.skill.drift * math.sqrt(1 - decay**2) * (
            self.rng.standard_normal(2)
        )
        return self.drift

    def _start_pause(self) -> None:
        steps = self.style.pause_steps
        if self.skill.hesitation > 0 and self.rng.random() < self.skill.hesitation:
            steps += int(self.rng.integers(3, 12))
        self.pause = steps

    # ------------------------------------------------------------------ planning
    def _push_done(self, push: Push, frame: BoxFrame) -> bool:
        if push.kind == "turn":
            return abs(frame.yaw_error) < YAW_DONE
        return push.sign * frame.error[push.axis] < SLIDE_DONE

    def _choose_push(self, frame: BoxFrame, tip_local: np.ndarray) -> Push | None:
        """The next push: a turn while the yaw is off, else a slide along a box axis.

        A turn-first operator turns whenever the yaw is off; a slide-first one first
        slides a roughly aligned box (yaw off by less than ``slide_yaw``) close to the
        target. A slide must not carry the box where a face is out of the rod's reach.
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
            if self.inside or _centre_reachable(frame.centre + travel):
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
                if not self.inside and not _centre_reachable(
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
        return _point_reachable(frame.world(self._contact(push, frame)))

    def _pre_push(self, contact: np.ndarray, normal: np.ndarray, frame: BoxFrame) -> np.ndarray:
        """The point GAP behind ``contact`` (box coordinates), nearer where out of reach."""
        for gap in (GAP, 0.75 * GAP, 0.5 * GAP, 0.25 * GAP):
            point = contact - gap * normal
            if _point_reachable(frame.world(point)):
                return point
        return contact - 0.25 * GAP * normal

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
            offset = -math.copysign(self.style.lever * lever, frame.yaw_error)
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
        target = obs["tip_target"].astype(np.float64)
        tip = obs["tip_pos"].astype(np.float64)
        drift = self._update_drift()
        if self.pause > 0:
            self.pause -= 1
            return np.zeros(3, dtype=np.float32)
        frame = BoxFrame.from_obs(obs)
        tip_local = frame.local(tip[:2])
        if self.push is not None and self._push_done(self.push, frame):
            self.push, self.pushing = None, False
            self._start_pause()
        if self.push is None:
            self.push = self._choose_push(frame, tip_local)
            self.around_direction = 0
            if self.push is None:  # aligned (success ends the episode): hold still
                return np.zeros(3, dtype=np.float32)
        push = self.push
        normal = np.zeros(2)
        normal[push.axis] = push.sign
        contact = self._contact(push, frame)
        # The skill's aim error shifts where the operator believes the points are.
        aim_error = frame.axes @ drift
        pre_push = self._pre_push(contact, normal, frame) + aim_error
        if self.pushing and not self._still_pushing(tip, tip_local, contact, normal):
            self.pushing = False
        if self.pushing:
            lead = self._push_step(push, frame)
            aim = frame.world(contact + aim_error + lead * normal)
            return self._move(target, aim, TIP_LOW, 1.5 * lead)
        if np.linalg.norm(tip_local - pre_push) < 0.006 and tip[2] < TIP_LOW + 0.008:
            self.pushing = True
        xy, z = self._approach(tip, tip_local, pre_push, frame)
        return self._move(target, xy, z, self.style.speed)

    def _still_pushing(
        self, tip: np.ndarray, tip_local: np.ndarray, contact: np.ndarray, normal: np.ndarray
    ) -> bool:
        """Whether the rod is still low, behind the contact point and on the face."""
        rel = tip_local - contact
        along = float(rel @ normal)
        lateral = abs(float(rel[0] * -normal[1] + rel[1] * normal[0]))
        return tip[2] < TIP_LOW + 0.015 and -GAP - 0.015 < along < 0.01 and lateral < 0.015

    def _push_step(self, push: Push, frame: BoxFrame) -> float:
        """Push speed, slowed near the end so the box does not slide past the goal."""
        if push.kind == "turn":
            remaining = 0.08 * abs(frame.yaw_error)
        else:
            remaining = abs(frame.error[push.axis])
        return float(np.clip(0.5 * remaining, 0.003, self.style.push_speed))

    def _move(self, target: np.ndarray, xy: np.ndarray, z: float, speed: float) -> np.ndarray:
        """Action moving the desired tip towards (xy, z), at most ``speed`` in xy."""
        step = np.zeros(3)
        step[:2] = xy - target[:2]
        norm = float(np.linalg.norm(step[:2]))
        if norm > speed:
            step[:2] *= speed / norm
        step[2] = z - target[2]
        return np.clip(step / MAX_STEP, -1.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ routing
    def _approach(
        self, tip: np.ndarray, tip_local: np.ndarray, goal: np.ndarray, frame: BoxFrame
    ) -> tuple[np.ndarray, float]:
        """Next (world xy, tip z) towards the pre-push point ``goal`` (box coordinates)."""
        # In the cavity: anywhere a rod can stand inside the walls (pressing one included).
        in_cavity = bool(np.all(np.abs(tip_local) < CAVITY_SAFE + 0.008)) and tip[2] < CLEAR_Z
        if self.inside:
            if in_cavity:
                return frame.world(np.clip(goal, -CAVITY_SAFE, CAVITY_SAFE)), TIP_LOW
            return self._over(tip, tip_local, goal, frame, descend_at_goal=True)
        if in_cavity:  # the wrong side of the walls: climb out
            return tip[:2], TRAVEL_Z
        if self.style.route == "over":
            return self._over(tip, tip_local, goal, frame, descend_at_goal=False)
        return frame.world(self._around(tip_local, goal)), TIP_LOW

    def _over(
        self,
        tip: np.ndarray,
        tip_local: np.ndarray,
        goal: np.ndarray,
        frame: BoxFrame,
        descend_at_goal: bool,
    ) -> tuple[np.ndarray, float]:
        """Lift over the walls when the straight way to ``goal`` crosses the box."""
        skirt = np.array(BOX_HALF) + ROD_RADIUS + SKIRT
        blocked = descend_at_goal or _segment_hits_rect(tip_local, goal, skirt)
        if not blocked:
            return frame.world(goal), TIP_LOW
        if tip[2] < CLEAR_Z:  # rise in place first: moving low would hit a wall
            near = bool(np.all(np.abs(tip_local) < skirt + 0.06))
            return (tip[:2] if near else frame.world(goal)), TRAVEL_Z
        if descend_at_goal and np.linalg.norm(tip_local - goal) < 0.006:
            return frame.world(goal), TIP_LOW
        return frame.world(goal), TRAVEL_Z

    def _around(self, tip_local: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Next waypoint (box coordinates) of a path round the box at table height."""
        skirt = np.array(BOX_HALF) + ROD_RADIUS + SKIRT
        if not _segment_hits_rect(tip_local, goal, skirt):
            return goal
        if np.all(np.abs(tip_local) < skirt):  # pressed against a face: back off first
            k = int(np.argmax(np.abs(tip_local) / skirt))
            out = tip_local.copy()
            out[k] = math.copysign(skirt[k] + 0.01, tip_local[k])
            return out
        # Walk the detour corners in one rotational direction (the shorter way round,
        # kept for the whole push so the walk cannot dither between two corners).
        angle = math.atan2(tip_local[1], tip_local[0])
        if self.around_direction == 0:
            turn = wrap_angle(math.atan2(goal[1], goal[0]) - angle)
            self.around_direction = 1 if turn >= 0 else -1
        corner = np.array(BOX_HALF) + ROD_RADIUS + CORNER
        best, best_ahead = goal, math.inf
        for c in (corner * (1, 1), corner * (-1, 1), corner * (-1, -1), corner * (1, -1)):
            ahead = (self.around_direction * (math.atan2(c[1], c[0]) - angle)) % (2 * math.pi)
            if 0.05 < ahead < best_ahead:  # the next corner round, not the one just reached
                best, best_ahead = c, ahead
        return best


def make_align_script(
    operator: Operator, behaviour: str, rng: np.random.Generator
) -> AlignScript:
    return AlignScript(operator, behaviour, rng)


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
        "careful_slow", speed=0.008, push_speed=0.006, route="around", turn_first=False,
        lever=0.8, pause_steps=4,
    ),
}
ALIGN_SKILLS = {
    # Calibrated on 30 episodes per quality (uniform strategy, direct_fast). Align is the
    # most latency-sensitive task (one step of delay alone: ~55% success), so its operators
    # differ by aim drift, gain and noise only.
    "better": Skill("better", drift=0.002, gain_noise=0.05, action_noise=0.05),
    "okay": Skill(
        "okay", drift=0.007, hesitation=0.3, overshoot=0.05, gain_noise=0.15,
        action_noise=0.3, noise_time=5.0, fumble=0.2,
    ),
    "worse": Skill(
        "worse", drift=0.010, drift_time=25.0, hesitation=0.6, overshoot=0.1,
        gain_noise=0.3, gain_time=10.0, action_noise=0.4, noise_time=4.0, fumble=0.3,
    ),
}
