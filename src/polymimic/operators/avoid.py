"""Scripted operators for ``polymimic/Avoid-v1``.

The script turns the requested behaviour ``"g1-g2-g3"`` into a route of via-points: a
lane (a lateral position) inside the chosen gap of each row, joined by lateral transfers
in the free bands between rows. The human motor model (``polymimic.operators.motor``)
moves the hand between them. The aim moves on to the next via-point when the hand is
``lookahead`` from the current one *and* the straight line from where the hand is (and
from where it believes it will stop) to the next one keeps ``clearance`` from every
obstacle: the new submovement then blends into the running one, so corners are cut into
smooth curves exactly where the operator judges it safe. Once the hand has stopped at a
via-point it moves on regardless (the route's own legs are clear by construction).

Per episode the route varies (``AvoidStyle.variation``): the lanes inside each gap, the
berth given to outer obstacles, where in a band the lane change happens, how early
corners are cut and the clearance kept. Styles change *how* (speed, corner cutting,
berth, pauses), strategies change *which* path, skill is the motor model's noise: an
endpoint or curvature error in a narrow band or gap touches an obstacle, which fails an
Avoid episode.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from polymimic.envs.avoid import (
    FINISH_X,
    OBSTACLES,
    ROW_RADIUS,
    ROW_X,
    ROW_Y,
    WORKSPACE_HIGH,
    AvoidEnv,
)
from polymimic.envs.objects import ROD_RADIUS
from polymimic.operators.base import Operator, Skill, Strategy
from polymimic.operators.motor import Hand, MotorSkill

# Rod-centre x interval each row blocks (obstacle radius + rod radius around its axis).
_ROW_REACH = tuple(r + ROD_RADIUS for r in ROW_RADIUS)
# Half the rod-centre width of an inner gap (all inner gaps are 7.5 cm pitch - 2 reaches).
_INNER_HALF = min(
    0.5 * (ys[k] - ys[k + 1]) - _ROW_REACH[r]
    for r, ys in enumerate(ROW_Y)
    for k in range(len(ys) - 1)
)
FINISH_AIM = FINISH_X + 0.025  # m: the last via-point lies past the finish line
# Fitts' tolerances W (m): band via-points need care (the bands are 4.5-5 cm wide), the
# approach point and the finish little.
BAND_TOLERANCE = 0.012
FREE_TOLERANCE = 0.02
LANE_CHANGE = 0.01  # m: smaller lane changes between rows are not worth a band via-point
# m: a lane change along a band is split into submovements at most this long. A person
# moving along a narrow corridor makes it a chain of short, overlapping movements watched
# all the way (Meyer et al., 1988): one long movement would carry an endpoint and
# curvature error proportional to its whole length into the band's 2 cm of slack.
BAND_STEP = 0.07


@dataclasses.dataclass(frozen=True)
class AvoidStyle:
    """How an operator threads the obstacle field.

    Attributes:
        name: label stored with each demo.
        speed: peak hand speed (m per step).
        lookahead: distance (m) from a via-point at which the aim may move on to the next
            one (if the line to it is clear): small values turn near-sharp corners, larger
            ones cut them into wide curves.
        clearance: margin (m) between the rod and any obstacle that a corner-cutting line
            must keep; also the least room kept inside a gap when placing a lane.
        outer_berth: mean clearance (m) between the rod and the outermost obstacle of a
            row when passing it on the outside. Per episode it is ``clearance`` plus an
            exponentially distributed extra (mean ``outer_berth - clearance``, at most 2.5
            times that): most passes are close, now and then one is wide.
        approach_margin: clearance (m) in x kept from row 1 while still changing lane at
            the start.
        pause: seconds of stillness before threading each row (a look at the gap).
        variation: per-episode relative jitter of the route: lanes move by up to this
            fraction of the room left in an inner gap, band crossing points by this
            fraction of the band's spare width, each row's extra berth and the lookahead
            are scaled by a factor uniform in ``[1 - variation, 1 + variation]`` and the
            clearance by one uniform in ``[1, 1 + variation]``.
    """

    name: str
    speed: float = 0.013
    lookahead: float = 0.03
    clearance: float = 0.015
    outer_berth: float = 0.05
    approach_margin: float = 0.02
    pause: float = 0.0
    variation: float = 0.6


def parse_behaviour(behaviour: str) -> tuple[int, ...]:
    """``"g1-g2-g3"`` -> gap per row, validated against the field."""
    gaps = tuple(int(g) for g in behaviour.split("-"))
    if len(gaps) != len(ROW_X) or any(not 0 <= g <= len(ROW_Y[r]) for r, g in enumerate(gaps)):
        raise ValueError(f"{behaviour!r} is not an Avoid-v1 behaviour")
    return gaps


def gap_lane(row: int, gap: int, outer_berth: float, offset: float = 0.0) -> float:
    """The y the rod centre follows through gap ``gap`` (0 = leftmost) of ``row``.

    ``offset`` (m) moves a lane inside an inner gap; outer lanes lie ``outer_berth`` beyond
    the outermost obstacle's reach.
    """
    ys = ROW_Y[row]  # left (+y) first
    reach = _ROW_REACH[row]
    if gap == 0:
        return ys[0] + reach + outer_berth
    if gap == len(ys):
        return ys[-1] - reach - outer_berth
    return 0.5 * (ys[gap - 1] + ys[gap]) + offset


def band_limits() -> tuple[tuple[float, float], ...]:
    """Rod-centre x interval of the obstacle-free band after each row but the last."""
    return tuple(
        (ROW_X[r] + _ROW_REACH[r], ROW_X[r + 1] - _ROW_REACH[r + 1]) for r in range(len(ROW_X) - 1)
    )


def _segment_distance(a: np.ndarray, b: np.ndarray, p: tuple[float, float]) -> float:
    ab = b - a
    t = float(np.clip(np.dot(np.asarray(p) - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return math.hypot(a[0] + t * ab[0] - p[0], a[1] + t * ab[1] - p[1])


def clearance(a: np.ndarray, b: np.ndarray) -> float:
    """Least gap (m) between the rod moving straight from ``a`` to ``b`` and any obstacle."""
    return min(_segment_distance(a, b, (ox, oy)) - reach for ox, oy, reach in OBSTACLES)


@dataclasses.dataclass(frozen=True)
class RouteDraw:
    """One episode's draw of the route's free parameters (see ``AvoidStyle.variation``)."""

    lane_offsets: tuple[float, ...]  # m, per row, inside inner gaps
    berths: tuple[float, ...]  # m, per row, beyond outer obstacles
    band_x: tuple[float, ...]  # m, x of each band's lane change
    lookahead: float
    clearance: float

    @classmethod
    def draw(cls, style: AvoidStyle, rng: np.random.Generator) -> RouteDraw:
        v = style.variation
        scale = lambda: 1.0 + v * rng.uniform(-1.0, 1.0)  # noqa: E731
        room = max(_INNER_HALF - style.clearance, 0.0)
        bands = []
        for low, high in band_limits():
            spare = max(0.5 * (high - low) - style.clearance, 0.0)
            bands.append(0.5 * (low + high) + v * spare * rng.uniform(-1.0, 1.0))
        # How wide to pass outer obstacles is one per-episode choice (skewed: now and then a
        # wide one, but not to the edge of the table), varied a little per row.
        mean_extra = max(style.outer_berth - style.clearance, 0.0)
        extra = min(rng.exponential(mean_extra), 2.5 * mean_extra)
        return cls(
            lane_offsets=tuple(v * room * rng.uniform(-1.0, 1.0) for _ in ROW_X),
            berths=tuple(style.clearance + extra * scale() for _ in ROW_X),
            band_x=tuple(bands),
            lookahead=style.lookahead * scale(),
            # The style's clearance is the least margin it accepts: episodes only add to it.
            clearance=style.clearance * (1.0 + v * rng.uniform(0.0, 1.0)),
        )


def route(
    gaps: tuple[int, ...], style: AvoidStyle, draw: RouteDraw
) -> list[tuple[np.ndarray, bool]]:
    """Via-points through ``gaps``: ``(point, threads_a_row)`` pairs.

    The first is the approach point on the first lane, ``approach_margin`` in front of
    row 1 (every start lies behind it, so the hand needs no via-point before it). Then,
    per band, the point where the lane change starts and the chain of points along the
    band to the next lane (``BAND_STEP`` apart), and last a point past the finish line.
    ``threads_a_row`` marks the via-points whose leg crosses a row (the precise part).
    """
    limit = WORKSPACE_HIGH[1] - 0.01
    lanes = [
        float(np.clip(gap_lane(r, g, draw.berths[r], draw.lane_offsets[r]), -limit, limit))
        for r, g in enumerate(gaps)
    ]
    pre_row = ROW_X[0] - _ROW_REACH[0] - style.approach_margin
    points = [(np.array([pre_row, lanes[0]]), False)]
    for r, band_x in enumerate(draw.band_x):
        points.append((np.array([band_x, lanes[r]]), True))
        change = lanes[r + 1] - lanes[r]
        if abs(change) > LANE_CHANGE:
            pieces = math.ceil(abs(change) / BAND_STEP)
            for k in range(1, pieces + 1):
                points.append((np.array([band_x, lanes[r] + change * k / pieces]), False))
    points.append((np.array([FINISH_AIM, lanes[-1]]), True))
    return points


class AvoidScript:
    """One episode: follow the route of the requested gap sequence to the finish line.

    The route does not depend on where the hand starts (every start lies behind the
    approach point); on a change of mind the new route takes over from wherever the hand
    is heading, which ``revisable`` keeps in front of row 1. Threading a row counts as the motor model's ``contact`` phase (the unforgiving part: a less skilled
    operator may stop and look first), and a style's ``pause`` stops the hand there too.
    """

    def __init__(
        self, operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
    ) -> None:
        self.gaps = parse_behaviour(behaviour)
        self.style: AvoidStyle = operator.style
        self.hand = hand
        self.draw = RouteDraw.draw(self.style, rng)
        self.points = route(self.gaps, self.style, self.draw)
        self.index = 0

    @property
    def revisable(self) -> bool:
        """A change of mind is possible until the hand heads into the first row.

        That is while both the hand and where it will stop lie before the approach point's
        x (plus half the approach margin): during the approach and during a pause before
        the first row, not once a movement into the row has started (a new route from
        there could not turn back without touching the obstacle).
        """
        limit = ROW_X[0] - _ROW_REACH[0] - 0.5 * self.style.approach_margin
        return bool(self.hand.position[0] < limit and self.hand.believed_end()[0] < limit)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        hand = self.hand
        if self.index < len(self.points) - 1 and self._may_move_on(hand):
            self.index += 1
            if self.points[self.index][1] and self.style.pause > 0:
                hand.pause(self.style.pause)
        aim, threads_row = self.points[self.index]
        return hand.move(aim, self.style.speed, self._tolerance(), contact=threads_row)

    def _tolerance(self) -> float:
        """Fitts' W of the current via-point: the approach and the finish need little care."""
        return FREE_TOLERANCE if self.index in (0, len(self.points) - 1) else BAND_TOLERANCE

    def _may_move_on(self, hand: Hand) -> bool:
        """Whether the aim moves on from the current via-point to the next one."""
        here, following = self.points[self.index][0], self.points[self.index + 1][0]
        end = hand.believed_end()
        if not hand.moving and np.linalg.norm(end - here) <= self._tolerance():
            return True  # stopped at the via-point: its leg onwards is clear by design
        if np.linalg.norm(hand.position - here) > self.draw.lookahead:
            return False
        margin = self.draw.clearance
        return clearance(hand.position, following) > margin and clearance(end, following) > margin


def make_avoid_script(
    operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
) -> AvoidScript:
    return AvoidScript(operator, behaviour, rng, hand)


#: Lateral distance (m) of the start over which the scene's pull reaches its full size.
SCENE_SCALE = 0.1


def avoid_scene_utilities(obs: dict[str, np.ndarray]) -> dict[str, float]:
    """How the scene pulls on the choice of path ``"g1-g2-g3"``.

    The obstacles never move; only the hand's start varies (contexts 6 cm either side of
    the centre line, +-1 cm jitter). People tend to pass the first obstacle on the side
    their hand is already on: with ``y`` the hand's lateral position and ``l(g)`` the
    nominal lane of row-1 gap ``g`` (+-9 cm, the direct style's mean berth),

        ``u = clip((|y - l(other gap)| - |y - l(g1)|) / SCENE_SCALE, -1, 1)``

    (``2 y / SCENE_SCALE`` near the centre: +-1 at the side contexts, +-0.2 at the centre
    one). The scene says nothing about rows 2 and 3: those get no pull.
    """
    y = float(obs["tip_pos"][1])
    lanes = [gap_lane(0, g, AVOID_STYLES["direct"].outer_berth) for g in (0, 1)]
    pulls = [
        float(np.clip((abs(y - lanes[1 - g]) - abs(y - lanes[g])) / SCENE_SCALE, -1.0, 1.0))
        for g in (0, 1)
    ]
    return {b: pulls[parse_behaviour(b)[0]] for b in AvoidEnv.behaviours}


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
    "direct": AvoidStyle("direct", speed=0.013, lookahead=0.02),
    "smooth": AvoidStyle("smooth", speed=0.011, lookahead=0.05),
    "wide": AvoidStyle("wide", speed=0.012, lookahead=0.03, outer_berth=0.07, pause=0.2),
}
# Calibrated with scripts/quality_table.py (60 episodes per tier and style; its operator,
# seed 100, has a strong handedness bias, -1.65 sd) and with the dataset operators' seeds
# 201-206 (80-120 episodes). Changes from ``TIERS``, and why:
# * curvature / operator_curvature grow with lower skill (practice straightens reaching
#   paths): in a 2 cm band a path's bulge, not its endpoint, is what touches an obstacle,
#   and the default 0.06 / 0.05 for every tier made even the better tier fail 1 in 10.
# * worse: endpoint_noise 0.14 (TIERS 0.12) and curvature 0.08 put its success at 65-85%
#   across styles and operators (0.12 / 0.07: 80-90%); its failures are touched obstacles
#   (a band lane change drifting into the next row, a lane too close to an obstacle).
# * worse: pause_time 0.6 s (TIERS 0.8): Avoid has a look before each of three rows (the
#   motor model's contact pause), and the exponential tail of 0.8 s pushed 1 demo in 40
#   past the time limit.
AVOID_SKILLS = {
    "better": Skill("better", MotorSkill(
        reaction_time=0.2, fitts_b=0.10, speed=1.0, endpoint_noise=0.03,
        velocity_noise=0.03, pause_chance=0.1, curvature=0.03, operator_curvature=0.03,
    )),
    "okay": Skill("okay", MotorSkill(
        reaction_time=0.25, fitts_b=0.16, speed=0.8, endpoint_noise=0.07,
        velocity_noise=0.06, pause_chance=0.4, curvature=0.05, operator_curvature=0.04,
    )),
    "worse": Skill("worse", MotorSkill(
        reaction_time=0.3, fitts_b=0.22, speed=0.65, endpoint_noise=0.14,
        velocity_noise=0.10, pause_chance=0.7, pause_time=0.6, curvature=0.08,
        operator_curvature=0.05,
    )),
}  # fmt: skip
