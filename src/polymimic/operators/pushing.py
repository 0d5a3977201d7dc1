"""Pushing skills shared by the rod tasks' scripted operators.

Generalised from ``operators/push.py``: the bounded move towards a point, a closed-loop push of one block towards a goal point, and a shortest-path router
around many blocks (``PushScript`` skirts only the first block its straight path meets,
which is enough for two blocks but not for six).
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
PRE_PUSH_REACHED = 0.01  # m: the rod this close to the pre-push point starts pushing
ROUTE_SAMPLES = 8  # route nodes per block: an octagon around its keep-out disc
ROUTE_NODE_SCALE = 1.25  # octagon radius / disc radius (its edges then clear the disc)


def move_towards(target: np.ndarray, goal: np.ndarray, speed: float, max_step: float) -> np.ndarray:
    """The action moving the controller target at most ``speed`` (m) towards ``goal``."""
    step = goal - target
    norm = float(np.hypot(step[0], step[1]))
    if norm > speed:
        step = step * (speed / norm)
    return np.clip(step / max_step, -1.0, 1.0).astype(np.float32)


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

    @property
    def offset(self) -> float:
        """Tip-to-centre distance when the rod touches a face squarely."""
        return self.block_half + self.rod_radius

    def aim(
        self, tip: np.ndarray, block: np.ndarray, goal: np.ndarray, push_speed: float
    ) -> tuple[np.ndarray, bool]:
        """(point to move to, whether it is a push aim rather than a pre-push point)."""
        direction = unit(goal - block)
        behind = float(np.dot(tip - block, direction))
        lateral = float(np.linalg.norm(tip - block - behind * direction))
        if self.pushing and (behind > -0.6 * self.offset or lateral > self.block_half):
            self.pushing = False  # lost the block: go round and line up again
        if self.pushing:
            return block - (self.offset - push_speed) * direction, True
        pre_push = block - (self.offset + PRE_PUSH_GAP) * direction
        if self.low is not None and self.high is not None:
            pre_push = np.clip(pre_push, self.low + 0.002, self.high - 0.002)
        if np.linalg.norm(tip - pre_push) < PRE_PUSH_REACHED:
            self.pushing = True
        return pre_push, False


def steer_direction(desired: np.ndarray, sin4: float, cos4: float, gain: float) -> np.ndarray:
    """The push direction that turns a cube's travel towards ``desired``.

    A slippery rod pushes a cube along the normal of the face it touches, and pushing
    through the centre at an angle to that normal turns the cube (and its travel) towards
    the push direction. So the push overshoots ``desired`` by ``gain`` times the touched
    face normal's error: without it a yawed cube keeps travelling off to one side.
    ``sin4``, ``cos4`` are the cube's observed sin 4θ, cos 4θ (yaw θ modulo 90°).
    """
    desired = unit(desired)
    quarter = math.atan2(sin4, cos4) / 4.0
    heading = math.atan2(desired[1], desired[0])
    normal = quarter + 0.5 * math.pi * round((heading - quarter) / (0.5 * math.pi))
    return unit(desired + gain * (desired - np.array([math.cos(normal), math.sin(normal)])))


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
    to_goal = np.linalg.norm(centres - goal, axis=1)
    radii = np.where(to_goal < radii, np.maximum(to_goal - 0.003, 0.0), radii)
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
