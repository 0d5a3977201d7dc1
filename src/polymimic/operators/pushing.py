"""Pushing skills shared by the rod tasks' scripted operators.

Shared by Push and Sort: a closed-loop push of one block towards a goal point, a
shortest-path router around many blocks and the aim tolerances the hand
(``polymimic.operators.motor``) is given.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` normalised, or zeros for a (near) zero vector."""
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.zeros_like(v)



PRE_PUSH_GAP = 0.025  # m between the rod and the block's face before a push starts
PRE_PUSH_REACHED = 0.012  # m: the rod this close to the pre-push point starts pushing
# A block whose pre-push point lies this far outside the rod's reach for GIVE_UP_STEPS
# steps in a row cannot be pushed any more (the rod cannot get behind it): a person gives
# the demo up there rather than poke at it until the time runs out.
UNREACHABLE = 0.015  # m
GIVE_UP_STEPS = 20  # 1 s at 20 Hz
CENTRE_GAIN = 1.0  # lateral over-correction of a push aim per unit of the rod's offset
PUSH_LEAD = 0.06  # m: while pushing, the hand aims this far past the contact point
# Fitts' tolerances W (m) of the pushing tasks' aims: a pre-push point needs care, a
# push's moving aim and a detour less.
PRE_PUSH_TOLERANCE = 0.006
PUSH_TOLERANCE = 0.015
FREE_TOLERANCE = 0.02
FACE_HYSTERESIS = math.radians(20.0)  # see steer_direction
ROUTE_SAMPLES = 8  # route nodes per block: an octagon around its keep-out disc
ROUTE_NODE_SCALE = 1.25  # octagon radius / disc radius (its edges then clear the disc)
LEG_SLACK = 0.003  # m: how far a leg from the hand may graze a keep-out disc


@dataclasses.dataclass
class BlockPush:
    """Closed-loop push of one block towards a goal point with the rod (state: ``pushing``).

    Each step either lines the rod up behind the block (returns the pre-push point, to
    be routed to) or pushes through its centre (returns an aim just past the contact
    point); a rod that slipped off the block's face lines up again.
    """

    block_half: float  # m, half the block's edge
    rod_radius: float  # m
    low: np.ndarray | None = None  # the rod's reachable box: pre-push points are clipped
    high: np.ndarray | None = None  # into it (a block at the edge is then pushed off-centre)
    pushing: bool = False
    wanted: np.ndarray | None = None  # the last pre-push point, before clipping

    @property
    def offset(self) -> float:
        """Tip-to-centre distance when the rod touches a face squarely."""
        return self.block_half + self.rod_radius

    def aim(
        self, tip: np.ndarray, block: np.ndarray, goal: np.ndarray, lead: float,
        settled: bool = True,
    ) -> tuple[np.ndarray, bool]:  # fmt: skip
        """(point to move to, whether it is a push aim rather than a pre-push point).

        A push aims ``lead`` (m) past the contact point on the line through the block's
        centre; the push starts once the rod is at the pre-push point and ``settled`` (the
        hand at rest there).
        """
        direction = unit(goal - block)
        behind = float(np.dot(tip - block, direction))
        lateral = float(np.linalg.norm(tip - block - behind * direction))
        if self.pushing and (behind > -0.6 * self.offset or lateral > self.block_half + 0.5 * self.rod_radius):
            self.pushing = False  # lost the block: go round and line up again
        if self.pushing:
            # Aim back across the centre line by as much as the rod is off it: a hand
            # that re-aims every few hundred ms must over-correct to stay on the face.
            off_line = tip - block - behind * direction
            return block - (self.offset - lead) * direction - CENTRE_GAIN * off_line, True
        pre_push = block - (self.offset + PRE_PUSH_GAP) * direction
        self.wanted = pre_push  # before clipping: ``ReachWatch`` judges it
        if self.low is not None and self.high is not None:
            pre_push = np.clip(pre_push, self.low + 0.002, self.high - 0.002)
        if np.linalg.norm(tip - pre_push) < PRE_PUSH_REACHED and settled:
            self.pushing = True
        return pre_push, False


@dataclasses.dataclass
class ReachWatch:
    """Whether the block to push has been out of the rod's reach for long: then give up."""

    low: np.ndarray
    high: np.ndarray
    steps: int = 0

    def unreachable(self, pre_push: np.ndarray) -> bool:
        """Update with this step's (unclipped) pre-push point; True once it is hopeless."""
        outside = bool(
            np.any(pre_push < self.low - UNREACHABLE) or np.any(pre_push > self.high + UNREACHABLE)
        )
        self.steps = self.steps + 1 if outside else 0
        return self.steps >= GIVE_UP_STEPS


def steer_direction(
    desired: np.ndarray, sin4: float, cos4: float, gain: float, face: float | None = None
) -> tuple[np.ndarray, float]:
    """The push direction that turns a cube's travel towards ``desired``, and the face.

    A slippery rod pushes a cube along the normal of the face it touches, and pushing
    through the centre at an angle to that normal turns the cube (and its travel) towards
    the push direction. So the push overshoots ``desired`` by ``gain`` times the touched
    face normal's error: without it a yawed cube keeps travelling off to one side.
    ``sin4``, ``cos4`` are the cube's observed sin 4θ, cos 4θ (yaw θ modulo 90°).

    The face is the one whose normal is nearest ``desired``, except that the face pushed
    so far (``face``: its normal's angle, as returned last time) is kept until another is
    nearer by ``FACE_HYSTERESIS``: a cube turned near 45° would otherwise be pushed on
    alternate faces, that is on its corner, and sent off sideways.
    """
    desired = unit(desired)
    quarter = math.atan2(sin4, cos4) / 4.0
    heading = math.atan2(desired[1], desired[0])
    normal = quarter + 0.5 * math.pi * round((heading - quarter) / (0.5 * math.pi))
    if face is not None:
        kept = quarter + 0.5 * math.pi * round((face - quarter) / (0.5 * math.pi))
        if abs(_wrap(heading - kept)) < abs(_wrap(heading - normal)) + FACE_HYSTERESIS:
            normal = kept
    direction = unit(desired + gain * (desired - np.array([math.cos(normal), math.sin(normal)])))
    return direction, normal


def _wrap(angle: float) -> float:
    """``angle`` wrapped into [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def _blocked(
    starts: np.ndarray, ends: np.ndarray, centres: np.ndarray, radii: np.ndarray
) -> np.ndarray:
    """Whether each segment starts[i] -> ends[i] (broadcast shapes (..., 2)) cuts a disc."""
    seg = ends - starts
    length2 = np.maximum(np.sum(seg * seg, axis=-1), 1e-12)
    to_centre = centres - starts[..., None, :]  # (..., M, 2)
    t = np.clip(np.sum(to_centre * seg[..., None, :], axis=-1) / length2[..., None], 0.0, 1.0)
    offset = to_centre - t[..., None] * seg[..., None, :]
    return np.any(np.sum(offset * offset, axis=-1) < radii**2, axis=-1)


def goal_radii(goal: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Keep-out radii with each disc that holds ``goal`` shrunk to leave it just outside."""
    if len(centres) == 0:
        return radii
    to_goal = np.linalg.norm(centres - goal, axis=1)
    return np.where(to_goal < radii, np.maximum(to_goal - 0.003, 0.0), radii)


def route_waypoint(
    start: np.ndarray,
    goal: np.ndarray,
    centres: np.ndarray,
    radii: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """The next waypoint of the shortest path from ``start`` to ``goal`` around discs.

    Obstacles are keep-out discs (``centres`` (M, 2), ``radii`` (M,)); the path is a
    polyline through octagon nodes around them (a visibility graph), restricted to the box
    ``[low, high]``. A start inside a disc first leaves it radially; a goal inside a disc
    shrinks that disc so the goal stays reachable. Falls back to ``goal`` when no path exists.
    """
    if len(centres) == 0:
        return goal
    radii = goal_radii(goal, centres, radii)
    from_start = start - centres
    distance = np.linalg.norm(from_start, axis=1)
    inside = np.flatnonzero(distance < radii)
    if inside.size:
        m = inside[np.argmin(distance[inside] - radii[inside])]
        return centres[m] + ROUTE_NODE_SCALE * radii[m] * unit(from_start[m])
    if not _blocked(start, goal, centres, radii):
        return goal
    angles = 2 * np.pi * (np.arange(ROUTE_SAMPLES) + 0.5) / ROUTE_SAMPLES
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    nodes = (centres[:, None, :] + ROUTE_NODE_SCALE * radii[:, None, None] * ring).reshape(-1, 2)
    free = np.all((nodes >= low) & (nodes <= high), axis=1)
    free &= np.all(np.linalg.norm(nodes[:, None] - centres[None], axis=2) >= radii, axis=1)
    points = np.vstack([start, goal, nodes[free]])
    a, b = np.broadcast_arrays(points[:, None, :], points[None, :, :])
    lengths = np.linalg.norm(b - a, axis=-1)
    previous = _shortest_paths(np.where(_blocked(a, b, centres, radii), np.inf, lengths))
    node = 1
    if previous[node] < 0:
        return goal
    while previous[node] != 0:
        node = previous[node]
    return points[node]


def next_via_point(
    start: np.ndarray,
    goal: np.ndarray,
    centres: np.ndarray,
    radii: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    reached: float,
    hand_at: np.ndarray | None = None,
) -> np.ndarray:
    """The first via-point of the shortest route (``route_waypoint``) farther than ``reached``.

    The motor model plans from where the hand will come to rest (``start``): a via-point it
    is already heading for (within ``reached``) is skipped, so the route's corners blend
    into one another and the hand never waits at a corner it has reached. A corner is
    skipped only while the next leg is clear both from ``start`` and from where the hand
    is now (``hand_at``, its commanded position): superposed submovements carry the hand
    roughly straight from there to the new aim, so a corner blended too early cuts through
    the obstacle it was meant to round (Sort6, the rod starting 8 cm from a block, skipped
    all three corners around it within 7 steps and knocked it out of reach).
    """
    start = np.asarray(start, dtype=np.float64)
    radii = goal_radii(goal, centres, radii)
    slack = np.maximum(radii - LEG_SLACK, 0.0)
    if hand_at is not None:
        hand_at = np.asarray(hand_at, dtype=np.float64)
        if len(centres) and np.any(np.linalg.norm(hand_at - centres, axis=1) < radii):
            hand_at = None  # leaving a disc radially: nothing to round yet
    point = start
    for _ in range(ROUTE_SAMPLES * max(len(centres), 1)):
        via = route_waypoint(point, goal, centres, radii, low, high)
        if np.array_equal(via, goal) or np.linalg.norm(via - start) > reached:
            # A skipped via-point is near but not at the hand: keep it when the straight
            # line to the next one would cut an obstacle. (Legs from the hand are judged
            # with LEG_SLACK less radius: a hand resting a millimetre off a route node would
            # otherwise see every leg from the node blocked and wait there for ever.)
            if point is not start and _blocked(start, via, centres, slack):
                return point
            # Where the hand is now may not see the next leg yet: keep heading for the
            # planned end (``point``, possibly ``start`` itself); once the hand is there the
            # leg is clear by construction (unless no clear route exists: then go anyway).
            if (hand_at is not None and _blocked(hand_at, via, centres, slack)
                    and not _blocked(point, via, centres, radii)):
                return point
            return via
        point = via
    return goal


def via_tolerance(via: np.ndarray, start: np.ndarray) -> float:
    """Fitts' W for a free via-point: ``FREE_TOLERANCE``, or less for a near one.

    ``next_via_point`` can return a via-point nearer than ``FREE_TOLERANCE`` (a corner the
    hand must still round): it then needs a tolerance below its distance, or the hand
    would never start the move.
    """
    distance = float(np.linalg.norm(np.asarray(via) - np.asarray(start)))
    return FREE_TOLERANCE if distance > 1.5 * FREE_TOLERANCE else max(0.4 * distance, 0.003)


def _shortest_paths(weights: np.ndarray) -> np.ndarray:
    """Dijkstra from node 0 on a dense (N, N) weight matrix (inf = no edge): predecessors.

    The graphs have a few dozen nodes, so an O(N^2) array version beats a heap.
    """
    n = len(weights)
    cost = np.full(n, np.inf)
    cost[0] = 0.0
    previous = np.full(n, -1)
    done = np.zeros(n, dtype=bool)
    for _ in range(n):
        node = int(np.argmin(np.where(done, np.inf, cost)))
        if not np.isfinite(cost[node]):
            break
        done[node] = True
        through = cost[node] + weights[node]
        better = (through < cost) & ~done
        cost[better] = through[better]
        previous[better] = node
    return previous
