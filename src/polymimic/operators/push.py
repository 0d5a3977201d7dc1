"""Scripted operators for ``polymimic/Push-v0``.

The script is closed-loop and re-plans every step from the observation alone: it pushes
the chosen first block to the chosen zone, then the other block to the other zone. Styles
change *how* (approach route, speed, pauses), strategies change *which* behaviour, skill
adds time-correlated aim errors.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from polymimic.envs.objects import ROD_RADIUS
from polymimic.envs.push import BLOCK_HALF, MAX_STEP, ZONE_CENTRES, ZONES
from polymimic.operators.base import Operator, Skill, SkillNoise, Strategy
from polymimic.operators.pushing import move_towards, unit

# Centre distance below which the rod touches a cube at any yaw (half-diagonal + radius),
# plus a margin: the approach routes keep at least this far from blocks.
CONTACT_DISTANCE = BLOCK_HALF * np.sqrt(2) + ROD_RADIUS
PUSH_OFFSET = BLOCK_HALF + ROD_RADIUS  # tip-to-centre distance when pushing a face
ZONE_DONE = 0.025  # m: a block this close to its zone centre is finished


@dataclasses.dataclass(frozen=True)
class PushStyle:
    """How an operator executes a push.

    Attributes:
        name: label stored with each demo.
        speed: tip travel per step while moving freely (m).
        push_speed: tip travel per step while pushing (m).
        route: "direct" (straight to the pre-push point, skirting blocks) or "retreat"
            (first back away from the table's far side, then across, then in).
        bulge: sideways offset (m) of the approach's midpoint: 0 is straight, >0 curved.
        clearance: distance kept from blocks' centres while approaching (m).
        pause_steps: steps of stillness after each block is delivered.
    """

    name: str
    speed: float = 0.012
    push_speed: float = 0.008
    route: str = "direct"
    bulge: float = 0.0
    clearance: float = 0.07
    pause_steps: int = 0


def _segment_distance(
    a: np.ndarray, b: np.ndarray, p: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """Distance from p to segment ab, the closest point's fraction along ab, the point."""
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0.0, 1.0))
    closest = a + t * ab
    return float(np.linalg.norm(p - closest)), t, closest


class PushScript:
    """One episode of pushing: ``first`` block to ``first_zone``, then the other."""

    def __init__(self, operator: Operator, behaviour: str, rng: np.random.Generator) -> None:
        first, zone = behaviour.split("-")
        other_block = "green" if first == "red" else "red"
        other_zone = ZONES[1 - ZONES.index(zone)]
        self.plan = [(first, zone), (other_block, other_zone)]
        self.style: PushStyle = operator.style
        self.skill: Skill = operator.skill
        self.rng = rng
        self.stage = 0
        self.pushing = False
        self.pause = 0
        self.noise = SkillNoise(operator.skill, rng)

    # ------------------------------------------------------------------ acting
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        target = obs["tip_target"].astype(np.float64)
        drift = self.noise.step_drift()
        if self.pause > 0:
            self.pause -= 1
            return np.zeros(2, dtype=np.float32)
        if self.stage >= len(self.plan):
            return np.zeros(2, dtype=np.float32)
        block, zone = self.plan[self.stage]
        block_xy = obs[f"{block}_block"][:2].astype(np.float64)
        goal = ZONE_CENTRES[zone]
        if np.linalg.norm(block_xy - goal) < ZONE_DONE:
            self.stage, self.pushing = self.stage + 1, False
            self.pause = self.noise.pause_length(self.style.pause_steps)
            retreat = target - 0.03 * unit(goal - block_xy)
            return move_towards(target, retreat, self.style.speed, MAX_STEP)
        direction = unit(goal - block_xy)
        tip = obs["tip_pos"].astype(np.float64)
        behind = float(np.dot(tip - block_xy, direction))
        lateral = float(np.linalg.norm(tip - block_xy - behind * direction))
        if self.pushing and (behind > -0.6 * PUSH_OFFSET or lateral > BLOCK_HALF):
            self.pushing = False  # lost the block: go round and line up again
        if self.pushing:
            aim = block_xy - PUSH_OFFSET * direction + self.style.push_speed * direction
            return move_towards(target, aim + drift, self.style.push_speed * 1.5, MAX_STEP)
        pre_push = block_xy - (PUSH_OFFSET + 0.025) * direction
        if np.linalg.norm(tip - pre_push) < 0.01:
            self.pushing = True
        waypoint = self._next_waypoint(tip, pre_push, obs)
        return move_towards(target, waypoint + drift, self.style.speed, MAX_STEP)

    # ------------------------------------------------------------------ routing
    def _next_waypoint(
        self, tip: np.ndarray, goal: np.ndarray, obs: dict[str, np.ndarray]
    ) -> np.ndarray:
        blocks = {b: obs[f"{b}_block"][:2].astype(np.float64) for b in ("red", "green")}
        route = [goal]
        if self.style.route == "retreat":
            retreat_x = min(b[0] for b in blocks.values()) - 0.08
            if tip[0] > retreat_x + 0.02 and goal[0] < tip[0]:
                route = [np.array([retreat_x, tip[1]]), np.array([retreat_x, goal[1]]), goal]
        elif self.style.bulge > 0:
            mid = 0.5 * (tip + goal)
            normal = np.array([-(goal - tip)[1], (goal - tip)[0]])
            if np.linalg.norm(goal - tip) > 0.08:
                route = [mid + self.style.bulge * unit(normal), goal]
        return self._skirt_blocks(tip, route[0], blocks)

    def _skirt_blocks(
        self, tip: np.ndarray, waypoint: np.ndarray, blocks: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Replace ``waypoint`` by a detour point when the straight path touches a block.

        The block about to be pushed is skirted tightly (its pre-push point lies close to
        it); the other block is given the style's clearance.
        """
        current = self.plan[self.stage][0]
        obstacles = []
        for name, centre in blocks.items():
            clearance = CONTACT_DISTANCE + 0.008
            if name != current:
                clearance = max(self.style.clearance, clearance)
            distance, along, closest = _segment_distance(tip, waypoint, centre)
            if distance < clearance:
                obstacles.append((along, centre, closest, clearance))
        if not obstacles:
            return waypoint
        # Skirt the block the path meets first; the next one is handled once past it.
        _, centre, closest, clearance = min(obstacles, key=lambda o: o[0])
        away = closest - centre
        if np.linalg.norm(away) < 1e-6:  # straight through the centre: go round the left
            seg = waypoint - tip
            away = np.array([-seg[1], seg[0]])
        return centre + 1.3 * clearance * unit(away)


def make_push_script(operator: Operator, behaviour: str, rng: np.random.Generator) -> PushScript:
    return PushScript(operator, behaviour, rng)


def _prefer(*labels: str) -> dict[str, float]:
    return {label: 1.0 for label in labels}


PUSH_STRATEGIES = {
    "red_first": Strategy("red_first", _prefer("red-left", "red-right")),
    "green_first": Strategy("green_first", _prefer("green-left", "green-right")),
    "left_first": Strategy("left_first", _prefer("red-left", "green-left")),
    "right_first": Strategy("right_first", _prefer("red-right", "green-right")),
    "uniform": Strategy("uniform", _prefer("red-left", "red-right", "green-left", "green-right")),
}
PUSH_STYLES = {
    "direct_fast": PushStyle("direct_fast", speed=0.013, push_speed=0.009, route="direct"),
    "retreat_slow": PushStyle(
        "retreat_slow", speed=0.008, push_speed=0.006, route="retreat", pause_steps=5
    ),
    "curved": PushStyle("curved", speed=0.011, push_speed=0.008, bulge=0.06, clearance=0.08),
}
PUSH_SKILLS = {
    # Calibrated on 30 episodes per quality (uniform strategy, direct_fast): see
    # scripts/quality_table.py. Push fails only by running out of time, so "worse" needs a
    # reaction delay with a large overshoot (it oscillates about its waypoints); a delay of
    # 2 steps with any overshoot makes the deadbeat script limit-cycle (success < 55%).
    "better": Skill("better", drift=0.002, gain_noise=0.05, action_noise=0.05),
    "okay": Skill(
        "okay", drift=0.006, hesitation=0.3, reaction_delay=1, overshoot=0.35,
        gain_noise=0.2, gain_time=10.0, action_noise=0.4, noise_time=6.0, fumble=0.3,
    ),
    "worse": Skill(
        "worse", drift=0.012, drift_time=25.0, hesitation=0.6, reaction_delay=1,
        overshoot=0.4, gain_noise=0.3, gain_time=10.0, action_noise=0.6, noise_time=4.0,
        fumble=0.5,
    ),
}
