"""Scripted operators for ``polymimic/Sort{2,4,6}-v0``.

The behaviour label is the colour order to realise (e.g. ``"RBBR"``). The script is
closed-loop and re-plans every step from the observation alone: for the next colour of
the order it picks one not-yet-sorted block of that colour (which one is the style's
choice), routes the rod around every other block to the point behind it, and pushes it
straight sideways along its row into its zone. The start slots never share a row, so that
straight push meets no other block, whatever the order. Styles change the block choice,
speed, clearance and pauses; skill adds time-correlated aim errors.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from polymimic.envs.objects import ROD_RADIUS
from polymimic.envs.sort import (
    BLOCK_HALF,
    MAX_STEP,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    ZONE_SIDE,
    ZONE_Y,
)
from polymimic.operators.base import Operator, Skill, SkillNoise, Strategy
from polymimic.operators.pushing import (
    BlockPush,
    move_towards,
    route_waypoint,
    steer_direction,
)

# The push follows the block's start row sideways: its direction is the zone's side plus
# ROW_GAIN x (row x - block x), so a block drifting off its row is steered back long
# before it could reach the next row or the workspace's far edge. It stops once the
# centre is 4.5 cm inside the zone strip (|y| in [0.18, 0.34]).
ROW_GAIN = 8.0  # 1/m: 1 cm off the row turns the wanted travel by 4.6 degrees
STEER_GAIN = 1.5  # push overshoot per unit of face-normal error (see steer_direction)
DONE_DEPTH = 0.225  # m
# Centre distance below which the rod touches a cube at any yaw (half-diagonal + radius).
CONTACT_DISTANCE = BLOCK_HALF * np.sqrt(2) + ROD_RADIUS
TARGET_KEEP_OUT = CONTACT_DISTANCE + 0.008  # the block about to be pushed: skirt it tightly
BACK_OFF = 0.03  # m the rod backs away from a delivered block before moving on
PICKS = ("nearest", "near_first", "far_first")


@dataclasses.dataclass(frozen=True)
class SortStyle:
    """How an operator executes a sorting order.

    Attributes:
        name: label stored with each demo.
        speed: tip travel per step while moving freely (m).
        push_speed: tip travel per step while pushing (m).
        clearance: keep-out radius around blocks other than the one being pushed (m).
        pick: which block of the requested colour goes next: ``"nearest"`` to the rod,
            ``"near_first"`` (closest to the robot, smallest x) or ``"far_first"``.
        pause_steps: steps of stillness after each block is delivered.
    """

    name: str
    speed: float = 0.012
    push_speed: float = 0.008
    clearance: float = 0.065
    pick: str = "nearest"
    pause_steps: int = 0

    def __post_init__(self) -> None:
        if self.pick not in PICKS:
            raise ValueError(f"pick={self.pick!r} is not one of {PICKS}")


def _blocks(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """Blocks (n, 4: x, y, sin 4θ, cos 4θ) in env index order (reds, blues); their colours."""
    red = obs["red_blocks"].reshape(-1, 4)
    blue = obs["blue_blocks"].reshape(-1, 4)
    return np.vstack([red, blue]).astype(np.float64), "R" * len(red) + "B" * len(blue)


class SortScript:
    """One episode of sorting blocks in the colour order ``behaviour``."""

    def __init__(self, operator: Operator, behaviour: str, rng: np.random.Generator) -> None:
        if set(behaviour) - {"R", "B"}:
            raise ValueError(f"{behaviour!r} is not a colour order of 'R' and 'B'")
        self.order = behaviour
        self.style: SortStyle = operator.style
        self.noise = SkillNoise(operator.skill, rng)
        self.stage = 0  # index into the order of the block being delivered
        self.current = -1  # env index of that block; -1: not chosen yet
        self.row_x = 0.0  # x of that block's row, fixed when it is chosen
        self.push = BlockPush(BLOCK_HALF, ROD_RADIUS, WORKSPACE_LOW, WORKSPACE_HIGH)
        self.pause = 0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        target = obs["tip_target"].astype(np.float64)
        tip = obs["tip_pos"].astype(np.float64)
        drift = self.noise.step_drift()
        if self.pause > 0:
            self.pause -= 1
            return np.zeros(2, dtype=np.float32)
        if self.stage >= len(self.order):
            return np.zeros(2, dtype=np.float32)
        poses, colours = _blocks(obs)
        blocks = poses[:, :2]
        if self.current < 0:
            self._choose(tip, blocks, colours)
        block = blocks[self.current]
        side = ZONE_SIDE[colours[self.current]]
        if side * block[1] >= DONE_DEPTH:  # delivered: back off, then the next colour
            self.stage, self.current = self.stage + 1, -1
            self.push = BlockPush(BLOCK_HALF, ROD_RADIUS, WORKSPACE_LOW, WORKSPACE_HIGH)
            self.pause = self.noise.pause_length(self.style.pause_steps)
            back = target - np.array([0.0, side * BACK_OFF])
            return move_towards(target, back, self.style.speed, MAX_STEP)
        travel = np.array([ROW_GAIN * (self.row_x - block[0]), side])
        direction = steer_direction(travel, *poses[self.current, 2:], gain=STEER_GAIN)
        aim, pushing = self.push.aim(tip, block, block + direction, self.style.push_speed)
        if pushing:
            return move_towards(target, aim + drift, 1.5 * self.style.push_speed, MAX_STEP)
        waypoint = self._route(tip, aim, blocks)
        return move_towards(target, waypoint + drift, self.style.speed, MAX_STEP)

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
        self.row_x = float(blocks[self.current, 0])

    def _route(self, tip: np.ndarray, goal: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        radii = np.full(len(blocks), max(self.style.clearance, TARGET_KEEP_OUT))
        radii[self.current] = TARGET_KEEP_OUT
        return route_waypoint(tip, goal, blocks, radii, WORKSPACE_LOW, WORKSPACE_HIGH)


def make_sort_script(operator: Operator, behaviour: str, rng: np.random.Generator) -> SortScript:
    return SortScript(operator, behaviour, rng)


def sort_strategies(behaviours: tuple[str, ...]) -> dict[str, Strategy]:
    """Order preferences over a variant's labels: uniform, reds first, blues first,
    alternating colours (the labels with no two equal neighbours)."""

    def prefer(labels: list[str]) -> dict[str, float]:
        return {label: 1.0 for label in labels}

    alternating = [b for b in behaviours if "RR" not in b and "BB" not in b]
    return {
        "uniform": Strategy("uniform", prefer(list(behaviours))),
        "reds_first": Strategy("reds_first", prefer([b for b in behaviours if b[0] == "R"])),
        "blues_first": Strategy("blues_first", prefer([b for b in behaviours if b[0] == "B"])),
        "alternating": Strategy("alternating", prefer(alternating)),
    }


SORT_STYLES = {
    "direct_fast": SortStyle("direct_fast", speed=0.013, push_speed=0.009, clearance=0.06),
    "near_first_slow": SortStyle(
        "near_first_slow",
        speed=0.009,
        push_speed=0.007,
        clearance=0.075,
        pick="near_first",
        pause_steps=4,
    ),
    "far_first": SortStyle("far_first", speed=0.011, push_speed=0.008, pick="far_first"),
}
SORT_SKILLS = {
    # One table for Sort2/4/6, calibrated on 30 episodes per quality and variant (uniform
    # strategy, direct_fast). Every block is a chance to missort or to run late, so success
    # falls with the number of blocks; a reaction delay costs Sort too much (okay with one
    # step of delay: ~70% on Sort2/4), so these operators differ by drift, gain and noise.
    "better": Skill("better", drift=0.001, gain_noise=0.05, action_noise=0.05),
    "okay": Skill(
        "okay", drift=0.004, hesitation=0.3, gain_noise=0.1, action_noise=0.15,
        noise_time=5.0, fumble=0.1,
    ),
    "worse": Skill(
        "worse", drift=0.0075, drift_time=25.0, hesitation=0.6, overshoot=0.15,
        gain_noise=0.2, gain_time=10.0, action_noise=0.35, noise_time=4.0, fumble=0.4,
    ),
}
