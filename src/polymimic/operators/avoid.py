"""Scripted operators for ``polymimic/Avoid-v0``.

The script turns the requested behaviour ``"g1-g2-g3"`` into a route: a lateral position
inside the chosen gap of each row, joined by lateral transfers in the free bands between
rows. It is closed-loop: every step it aims from the observed controller target at the
next waypoint of the route (advancing once the target is close), so drift and lag are
corrected. Styles change *how* (speed, corner rounding, smooth acceleration, berth given
to the outer obstacles, pauses), strategies change *which* path, skill adds
time-correlated aim errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from polymimic.envs.avoid import (
    FINISH_X,
    MAX_STEP,
    ROW_RADIUS,
    ROW_X,
    ROW_Y,
    WORKSPACE_HIGH,
    AvoidEnv,
)
from polymimic.envs.objects import ROD_RADIUS
from polymimic.operators.base import Operator, Skill, SkillNoise, Strategy

# Rod-centre x interval each row blocks (obstacle radius + rod radius around its axis).
_ROW_REACH = tuple(r + ROD_RADIUS for r in ROW_RADIUS)


@dataclasses.dataclass(frozen=True)
class AvoidStyle:
    """How an operator threads the obstacle field.

    Attributes:
        name: label stored with each demo.
        speed: tip-target travel per step at cruise (m).
        accel: largest change of the commanded step between steps (m); ``inf``: none.
        lookahead: distance (m) from a waypoint at which the aim moves on to the next one:
            small values turn sharp corners, larger ones cut them.
        outer_berth: clearance (m) between the rod and the outermost obstacle of a row when
            passing it on the outside.
        approach_margin: clearance (m) in x kept from row 1 while still changing lane at
            the start.
        pause_steps: steps of stillness before entering each row.
        variation: per-episode uniform jitter (m) of the lane positions inside a gap.
    """

    name: str
    speed: float = 0.012
    accel: float = float("inf")
    lookahead: float = 0.01
    outer_berth: float = 0.035
    approach_margin: float = 0.02
    pause_steps: int = 0
    variation: float = 0.005


def gap_lane(row: int, gap: int, outer_berth: float) -> float:
    """The y the rod centre follows through gap ``gap`` (0 = leftmost) of ``row``."""
    ys = ROW_Y[row]  # left (+y) first
    reach = _ROW_REACH[row]
    if gap == 0:
        return ys[0] + reach + outer_berth
    if gap == len(ys):
        return ys[-1] - reach - outer_berth
    return 0.5 * (ys[gap - 1] + ys[gap])


def band_centres() -> tuple[float, ...]:
    """x of the middle of the obstacle-free band after each row but the last (rod centre)."""
    return tuple(
        0.5 * ((ROW_X[r] + _ROW_REACH[r]) + (ROW_X[r + 1] - _ROW_REACH[r + 1]))
        for r in range(len(ROW_X) - 1)
    )


def parse_behaviour(behaviour: str) -> tuple[int, ...]:
    """``"g1-g2-g3"`` -> gap per row, validated against the field."""
    gaps = tuple(int(g) for g in behaviour.split("-"))
    if len(gaps) != len(ROW_X) or any(not 0 <= g <= len(ROW_Y[r]) for r, g in enumerate(gaps)):
        raise ValueError(f"{behaviour!r} is not an Avoid-v0 behaviour")
    return gaps


def route(
    start: np.ndarray, gaps: tuple[int, ...], style: AvoidStyle, rng: np.random.Generator
) -> list[np.ndarray]:
    """Waypoints from ``start`` through ``gaps`` to beyond the finish line.

    The lane of row r is held from before the row until the middle of the band after it,
    where a purely lateral move switches to the next row's lane: every lateral move happens
    where no obstacle can be hit, every pass through a row is straight along +x.
    """
    lanes = [
        gap_lane(r, g, style.outer_berth) + rng.uniform(-style.variation, style.variation)
        for r, g in enumerate(gaps)
    ]
    lanes = [float(np.clip(y, -WORKSPACE_HIGH[1] + 0.01, WORKSPACE_HIGH[1] - 0.01)) for y in lanes]
    bands = [b + rng.uniform(-style.variation, style.variation) for b in band_centres()]
    pre_row = ROW_X[0] - _ROW_REACH[0] - style.approach_margin
    points = [np.array([max(pre_row, float(start[0])), lanes[0]])]
    for r, band_x in enumerate(bands):
        points.append(np.array([band_x, lanes[r]]))
        points.append(np.array([band_x, lanes[r + 1]]))
    points.append(np.array([FINISH_X + 0.03, lanes[-1]]))
    return points


class AvoidScript:
    """One episode: follow the route of the requested gap sequence to the finish line."""

    def __init__(self, operator: Operator, behaviour: str, rng: np.random.Generator) -> None:
        self.gaps = parse_behaviour(behaviour)
        self.style: AvoidStyle = operator.style
        self.skill: Skill = operator.skill
        self.rng = rng
        self.points: list[np.ndarray] = []
        self.index = 0
        self.pause = 0
        self.velocity = np.zeros(2)
        self.noise = SkillNoise(operator.skill, rng)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        target = obs["tip_target"].astype(np.float64)
        if not self.points:  # the route starts where the episode does
            self.points = route(target, self.gaps, self.style, self.rng)
        drift = self.noise.step_drift()
        if self.pause > 0:
            self.pause -= 1
            self.velocity[:] = 0.0
            return np.zeros(2, dtype=np.float32)
        # Advance past waypoints the target has reached (within the style's lookahead).
        while self.index < len(self.points) - 1 and (
            np.linalg.norm(self.points[self.index] - target) < max(0.004, self.style.lookahead)
        ):
            self.index += 1
            if self._entering_row():
                self.pause = self.noise.pause_length(self.style.pause_steps)
        return self._step_towards(target, self.points[self.index] + drift)

    def _entering_row(self) -> bool:
        """Whether the next leg runs along +x through a row (after a lane change)."""
        if self.index == 0 or self.index >= len(self.points):
            return False
        leg = self.points[self.index] - self.points[self.index - 1]
        return abs(leg[0]) > abs(leg[1])

    def _step_towards(self, target: np.ndarray, aim: np.ndarray) -> np.ndarray:
        desired = aim - target
        norm = float(np.linalg.norm(desired))
        if norm > self.style.speed:
            desired *= self.style.speed / norm
        change = desired - self.velocity
        change_norm = float(np.linalg.norm(change))
        if change_norm > self.style.accel:
            change *= self.style.accel / change_norm
        self.velocity = self.velocity + change
        return np.clip(self.velocity / MAX_STEP, -1.0, 1.0).astype(np.float32)


def make_avoid_script(operator: Operator, behaviour: str, rng: np.random.Generator) -> AvoidScript:
    return AvoidScript(operator, behaviour, rng)


def _paths_where(predicate: Callable[[tuple[int, ...]], bool]) -> dict[str, float]:
    return {b: 1.0 for b in AvoidEnv.behaviours if predicate(parse_behaviour(b))}


AVOID_STRATEGIES = {
    "uniform": Strategy("uniform", _paths_where(lambda g: True)),
    "left_first": Strategy("left_first", _paths_where(lambda g: g[0] == 0)),
    "right_first": Strategy("right_first", _paths_where(lambda g: g[0] == 1)),
    # Paths that never pass an outermost obstacle on the outside: the "short" routes.
    "inner": Strategy(
        "inner", _paths_where(lambda g: all(0 < x < len(ROW_Y[r]) for r, x in enumerate(g[1:], 1)))
    ),
}
AVOID_STYLES = {
    "direct": AvoidStyle("direct", speed=0.012, lookahead=0.01),
    "smooth": AvoidStyle("smooth", speed=0.008, accel=0.0015, lookahead=0.03),
    "wide": AvoidStyle(
        "wide", speed=0.010, accel=0.003, lookahead=0.02, outer_berth=0.06, pause_steps=4
    ),
}
AVOID_SKILLS = {
    # Calibrated on 30-120 episodes per quality (uniform strategy, direct): a collision
    # fails an Avoid episode, so small changes of drift or noise move success by several
    # points (okay with drift 0.005 / noise 0.15: 99%; 0.0055 / 0.2: 93%).
    "better": Skill("better", drift=0.002, gain_noise=0.05, action_noise=0.05),
    "okay": Skill(
        "okay", drift=0.0055, hesitation=0.3, overshoot=0.1, gain_noise=0.1,
        action_noise=0.2, fumble=0.15,
    ),
    "worse": Skill(
        "worse", drift=0.008, drift_time=25.0, hesitation=0.6, reaction_delay=1,
        overshoot=0.2, gain_noise=0.2, action_noise=0.2, noise_time=8.0, fumble=0.3,
    ),
}
