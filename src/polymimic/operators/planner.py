"""A CHOMP-style optimiser of smooth 2-D paths through free space, and a follower for it.

The second operator family (``operators.family_planner``) plans its free-space motion
with this module instead of the scripted family's visibility-graph router
(``operators.pushing.route_waypoint``) and lane tables (``operators.avoid``).

**Method: CHOMP** (Ratliff, Zucker, Bagnell & Srinivasa, 2009, "CHOMP: Gradient
optimization techniques for efficient motion planning", ICRA; the covariant update of
their Sec. III). A path is a polyline ``x_0 .. x_{n-1}`` with fixed ends; its interior
``ξ`` minimises

    U(ξ) = ½ |K₁ ξ + e₁|² + ½ w |K₂ ξ + e₂|²  +  λ Σ_i c(x_i) |x'_i|

with ``K₁``, ``K₂`` the first- and second-difference matrices (``e`` hold the fixed ends),
so the first terms are the path's squared velocities and accelerations (smoothness), and ``c`` the obstacle cost of the
signed distance ``d`` to the nearest surface (CHOMP's eq. 7, margin ``ε``)::

    c(d) = -d + ε/2             d < 0
         = (d - ε)² / (2ε)      0 <= d <= ε
         = 0                    d > ε

Obstacles are discs (centre, radius) and the walls of a box. The obstacle term's
functional gradient is ``|x'| [(I - x̂'x̂'ᵀ) ∇c - c κ]`` (CHOMP eq. 5; ``κ`` the
curvature), and each iteration takes the covariant step ``ξ ← ξ - A⁻¹ ∇U / η`` with
``A = K₁ᵀK₁ + w K₂ᵀK₂``: the update is spread smoothly along the path, so every iterate stays smooth.
Each point moves at most ``MAX_MOVE`` per iteration, so no point can jump across an
obstacle: the optimiser stays in the homotopy class of its initial path, which is how a
caller chooses *which way* round obstacles a path goes (the requested behaviour) while the
optimiser decides the shape. Everything is deterministic; per-episode variation comes from
the caller's draws (initial path, margin, weights).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

#: Most a path point moves per iteration (m): small against every obstacle's radius.
MAX_MOVE = 0.004


@dataclasses.dataclass(frozen=True)
class FreeSpace:
    """Where a path may go: outside discs (``centres`` (M, 2), ``radii`` (M,)), inside a box."""

    centres: np.ndarray
    radii: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def distances(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed distances (N, M + 4) to every disc and wall, and their gradients (N, M + 4, 2)."""
        points = np.asarray(points, dtype=np.float64)
        offsets = points[:, None, :] - np.asarray(self.centres, dtype=np.float64).reshape(1, -1, 2)
        norms = np.maximum(np.linalg.norm(offsets, axis=2), 1e-9)
        disc_d = norms - np.asarray(self.radii, dtype=np.float64)[None, :]
        disc_g = offsets / norms[..., None]
        eye = np.eye(2)
        wall_d = np.concatenate([points - self.low, self.high - points], axis=1)
        wall_g = np.broadcast_to(np.concatenate([eye, -eye])[None], (len(points), 4, 2))
        return np.concatenate([disc_d, wall_d], axis=1), np.concatenate([disc_g, wall_g], axis=1)

    def clearance(self, path: np.ndarray) -> float:
        """Least distance (m) between the polyline ``path`` and any disc (walls left out)."""
        path = np.asarray(path, dtype=np.float64)
        if len(self.centres) == 0:
            return float("inf")
        a, b = path[:-1, None, :], path[1:, None, :]
        centres = np.asarray(self.centres, dtype=np.float64)[None]
        seg = b - a
        t = np.clip(
            np.sum((centres - a) * seg, axis=2) / np.maximum(np.sum(seg * seg, axis=2), 1e-12), 0, 1
        )
        nearest = a + t[..., None] * seg
        gaps = np.linalg.norm(centres - nearest, axis=2) - np.asarray(self.radii)[None]
        return float(gaps.min())


def obstacle_cost(distance: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """CHOMP's ``c(d)`` and ``c'(d)`` for signed distances ``d`` and margin ``ε`` (see above)."""
    inside = distance < 0
    near = (distance >= 0) & (distance <= margin)
    cost = np.where(inside, -distance + 0.5 * margin, 0.0)
    cost = np.where(near, (distance - margin) ** 2 / (2.0 * margin), cost)
    slope = np.where(inside, -1.0, np.where(near, (distance - margin) / margin, 0.0))
    return cost, slope


#: Weight of the squared accelerations against the squared velocities in the smoothness
#: prior (CHOMP's prior sums both): without it the optimum is a taut string, which
#: turns sharply where it wraps round an obstacle.
ACCELERATION_WEIGHT = 10.0


@functools.lru_cache(maxsize=64)
def _smoothness(points: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A_full, A⁻¹)``: ``A_full = K1ᵀK1 + w K2ᵀK2`` over a whole path of ``points``
    (first and second differences), and the inverse of its interior block ``A``."""
    first = np.diff(np.eye(points), axis=0)
    second = np.diff(np.eye(points), n=2, axis=0)
    full = first.T @ first + ACCELERATION_WEIGHT * second.T @ second
    return full, np.linalg.inv(full[1:-1, 1:-1])


def optimise_path(
    initial: np.ndarray,
    space: FreeSpace,
    margin: float,
    obstacle_weight: float = 20.0,
    iterations: int = 150,
    rate: float = 0.1,
) -> np.ndarray:
    """CHOMP: the smooth path near ``initial`` (N, 2) that keeps ``margin`` from obstacles.

    The ends of ``initial`` stay fixed. ``rate`` (``1 / η``) is the fraction of the way to
    the smoothness optimum each iteration moves; ``obstacle_weight`` is ``λ``: larger keeps
    the path farther from obstacles at the price of smoothness.
    """
    path = np.array(initial, dtype=np.float64)
    interior = len(path) - 2
    if interior < 1:
        return path
    full, inverse = _smoothness(len(path))
    for _ in range(iterations):
        smooth = (full @ path)[1:-1]  # A ξ + Kᵀe: the prior's gradient, ends fixed
        step = inverse @ (smooth + obstacle_weight * _obstacle_gradient(path, space, margin))
        step *= rate
        largest = float(np.max(np.linalg.norm(step, axis=1)))
        if largest > MAX_MOVE:
            step *= MAX_MOVE / largest
        path[1:-1] = np.clip(path[1:-1] - step, space.low, space.high)
        if largest < 1e-6:
            break
    return path


def _obstacle_gradient(path: np.ndarray, space: FreeSpace, margin: float) -> np.ndarray:
    """CHOMP's functional gradient of ``Σ c(x_i) |x'_i|`` at the interior points."""
    points = path[1:-1]
    velocity = 0.5 * (path[2:] - path[:-2])
    acceleration = path[2:] - 2.0 * points + path[:-2]
    speed = np.maximum(np.linalg.norm(velocity, axis=1), 1e-9)
    tangent = velocity / speed[:, None]
    distance, direction = space.distances(points)
    cost, slope = obstacle_cost(distance, margin)
    total = cost.sum(axis=1)
    gradient = np.sum(slope[..., None] * direction, axis=1)

    def across(v: np.ndarray) -> np.ndarray:  # (I - x̂'x̂'ᵀ) v
        return v - np.sum(v * tangent, axis=1, keepdims=True) * tangent

    curvature = across(acceleration) / (speed**2)[:, None]
    return speed[:, None] * (across(gradient) - total[:, None] * curvature)


def polyline(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced by arc length along the polyline through ``points``."""
    points = np.asarray(points, dtype=np.float64)
    lengths = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    if lengths[-1] <= 1e-12:
        return np.repeat(points[:1], count, axis=0)
    wanted = np.linspace(0.0, lengths[-1], count)
    return np.stack([np.interp(wanted, lengths, points[:, k]) for k in range(2)], axis=1)


def path_length(path: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.diff(np.asarray(path), axis=0), axis=1)))


def resample(path: np.ndarray, spacing: float) -> np.ndarray:
    """Via-points about ``spacing`` apart along ``path`` (its start left out, its end kept)."""
    count = max(int(np.ceil(path_length(path) / spacing)), 1) + 1
    return polyline(path, count)[1:]


class PathFollower:
    """Hands a path's via-points to the motor model one at a time (pure pursuit).

    The aim moves on to the next via-point once the hand (its commanded position) is within
    ``lookahead`` of the current one: the next submovement then starts while the last is
    still running and blends into it (the motor model's superposition), so the hand sweeps
    along the path without stopping at via-points. ``lookahead`` below the via-point
    spacing keeps the aim from running ahead of the hand.
    """

    def __init__(self, path: np.ndarray, spacing: float, lookahead: float) -> None:
        self.points = resample(path, spacing)
        self.lookahead = lookahead
        self.index = 0

    def aim(self, hand_position: np.ndarray) -> np.ndarray:
        """The via-point to aim for now, given where the hand is."""
        while (
            self.index < len(self.points) - 1
            and np.linalg.norm(hand_position - self.points[self.index]) < self.lookahead
        ):
            self.index += 1  # fmt: skip
        return self.points[self.index]

    @property
    def goal(self) -> np.ndarray:
        return self.points[-1]

    @property
    def last(self) -> bool:
        """Whether the aim is the path's end."""
        return self.index == len(self.points) - 1
