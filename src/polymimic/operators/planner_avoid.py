"""The planner family's operators for ``polymimic/Avoid-v1`` (a second, independent family).

**What differs from the scripted family** (``operators.avoid``): the scripted operator
follows a hand-made route of lanes (one y per row) joined by lateral transfers in the free
bands between rows, cutting corners where a clearance check allows. This one *optimises*
a smooth path through the whole obstacle field with CHOMP (``operators.planner``; Ratliff
et al., 2009): the requested behaviour ``"g1-g2-g3"`` only fixes the initial path's
homotopy class (one seed point inside each requested gap), and the optimiser shapes the
path (diagonal sweeps across rows instead of lanes and bands). Per episode the seed points
inside the gaps, the berth around outer obstacles, the end point, CHOMP's margin and its
obstacle weight are drawn from the episode's generator, so paths vary.

**What is shared**: the motor model (``operators.motor.Hand``): the path's via-points are
handed to the same ``Hand.move`` with the same skills (``avoid.AVOID_SKILLS``), so motion
statistics compare; the task's strategies and scene utilities; ``gap_lane`` (where a gap
lies) and the rule that threading a row is the motor model's ``contact`` phase.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from polymimic.envs.avoid import OBSTACLES, ROW_X, WORKSPACE_HIGH, WORKSPACE_LOW, gap_index
from polymimic.operators.avoid import (
    _INNER_HALF,
    _ROW_REACH,
    BAND_TOLERANCE,
    FINISH_AIM,
    FREE_TOLERANCE,
    gap_lane,
    parse_behaviour,
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

#: The obstacle field as CHOMP sees it: touch discs (obstacle + rod radius), the workspace
#: less 1 cm (the controller clips the desired position to it).
AVOID_SPACE = FreeSpace(
    np.array([[x, y] for x, y, _ in OBSTACLES]),
    np.array([reach for *_, reach in OBSTACLES]),
    WORKSPACE_LOW + 0.01,
    WORKSPACE_HIGH - 0.01,
)
POINT_SPACING = 0.01  # m between the optimised path's points
MIN_CLEARANCE = 0.012  # m: a plan closer than this to an obstacle is re-optimised
RETRIES = 3  # re-optimisations, each with twice the obstacle weight
APPROACH_X = ROW_X[0] - _ROW_REACH[0] - 0.01  # a change of mind is possible before this x


@dataclasses.dataclass(frozen=True)
class PlannedAvoidStyle:
    """How a planner-family operator threads the field.

    Attributes:
        name: label stored with each demo (the scripted family's names: same population).
        speed: peak hand speed (m per step).
        margin: CHOMP's ``ε`` (m): the distance at which obstacles start to repel the path.
        obstacle_weight: CHOMP's ``λ``: larger trades smoothness for clearance.
        spacing: via-points handed to the hand lie this far apart along the path (m).
        lookahead: the aim moves on when the hand is this close to its via-point (m).
        outer_berth: mean gap (m) between an outer obstacle and the seed point beside it.
        pause: seconds of stillness before threading each row.
        variation: per-episode relative jitter of margin, weight, berth and seed points.
    """

    name: str
    speed: float = 0.013
    margin: float = 0.025
    obstacle_weight: float = 20.0
    spacing: float = 0.03
    lookahead: float = 0.02
    outer_berth: float = 0.04
    pause: float = 0.0
    variation: float = 0.5


def realised_gaps(path: np.ndarray) -> tuple[int, ...]:
    """The gap the polyline ``path`` takes through each row (-1: it never crosses it)."""
    gaps = []
    for row, x in enumerate(ROW_X):
        crossings = np.flatnonzero((path[:-1, 0] < x) & (path[1:, 0] >= x))
        if not crossings.size:
            gaps.append(-1)
            continue
        i = crossings[0]
        t = (x - path[i, 0]) / (path[i + 1, 0] - path[i, 0])
        gaps.append(gap_index(row, float(path[i, 1] + t * (path[i + 1, 1] - path[i, 1]))))
    return tuple(gaps)


def plan_avoid_path(
    start: np.ndarray, gaps: tuple[int, ...], style: PlannedAvoidStyle, rng: np.random.Generator
) -> np.ndarray:
    """A CHOMP path from ``start`` through ``gaps`` past the finish line (module docstring)."""
    v = style.variation
    scale = lambda: 1.0 + v * rng.uniform(-1.0, 1.0)  # noqa: E731
    seeds = [np.asarray(start, dtype=np.float64)[:2]]
    for row, gap in enumerate(gaps):
        offset = v * _INNER_HALF * rng.uniform(-0.6, 0.6)  # inner gaps: around the middle
        berth = style.outer_berth * scale()
        seeds.append(np.array([ROW_X[row], gap_lane(row, gap, berth, offset)]))
    limit = AVOID_SPACE.high[1] - 0.01
    end_y = np.clip(seeds[-1][1] + 0.03 * rng.uniform(-1.0, 1.0), -limit, limit)
    seeds.append(np.array([FINISH_AIM, end_y]))
    seeds = np.array(seeds)
    seeds[:, 1] = np.clip(seeds[:, 1], -limit, limit)
    initial = polyline(seeds, max(int(path_length(seeds) / POINT_SPACING), 8))
    margin = style.margin * scale()
    weight = style.obstacle_weight * scale()
    best, best_clearance = initial, -np.inf
    for _ in range(RETRIES + 1):
        path = optimise_path(initial, AVOID_SPACE, margin, weight)
        clear = AVOID_SPACE.clearance(path)
        if realised_gaps(path) == tuple(gaps) and clear > best_clearance:
            best, best_clearance = path, clear
        if best_clearance >= MIN_CLEARANCE:
            break
        weight *= 2.0
    return best


class PlannedAvoidScript:
    """One episode: plan a CHOMP path through the requested gaps, then follow it.

    The path is planned at the first step (from where the hand will come to rest) and
    followed by ``PathFollower``; via-points inside a row's x-range are the motor model's
    ``contact`` phase (a less skilled operator may stop and look first).
    """

    def __init__(
        self, operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
    ) -> None:
        self.gaps = parse_behaviour(behaviour)
        self.style: PlannedAvoidStyle = operator.style
        self.hand, self.rng = hand, rng
        self.follower: PathFollower | None = None
        self.threading = False

    @property
    def revisable(self) -> bool:
        """A change of mind is possible until the hand heads into the first row."""
        return bool(self.hand.position[0] < APPROACH_X and self.hand.believed_end()[0] < APPROACH_X)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        hand = self.hand
        if self.follower is None:
            path = plan_avoid_path(hand.believed_end(), self.gaps, self.style, self.rng)
            self.follower = PathFollower(path, self.style.spacing, self.style.lookahead)
        aim = self.follower.aim(hand.position)
        threading = in_a_row(aim[0])
        if threading and not self.threading and self.style.pause > 0:
            hand.pause(self.style.pause)
        self.threading = threading
        tolerance = FREE_TOLERANCE if self.follower.last else BAND_TOLERANCE
        return hand.move(aim, self.style.speed, tolerance, contact=threading)


def in_a_row(x: float) -> bool:
    """Whether ``x`` lies in a row's x-range (its reach, plus 1 cm in front)."""
    return any(
        row_x - reach - 0.01 <= x <= row_x + reach
        for row_x, reach in zip(ROW_X, _ROW_REACH, strict=True)
    )


def make_planned_avoid_script(
    operator: Operator, behaviour: str, rng: np.random.Generator, hand: Hand
) -> PlannedAvoidScript:
    return PlannedAvoidScript(operator, behaviour, rng, hand)


#: The scripted family's style names, realised as planner parameters: "direct" keeps close
#: and fast, "smooth" is slower with a wider margin (smoother sweeps), "wide" gives outer
#: obstacles a wide berth and looks before each row.
PLANNED_AVOID_STYLES = {
    "direct": PlannedAvoidStyle("direct", speed=0.013, margin=0.022, lookahead=0.015),
    "smooth": PlannedAvoidStyle(
        "smooth", speed=0.011, margin=0.03, obstacle_weight=12.0, spacing=0.04, lookahead=0.03
    ),  # fmt: skip
    "wide": PlannedAvoidStyle("wide", speed=0.012, margin=0.028, outer_berth=0.06, pause=0.2),
}
