"""Geometry of the Align scripts: the box frame, reachability and straight-path tests, and
how the scene pulls on the choice between pushing from inside and outside."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from polymimic.envs.align import (
    BOX_HALF,
    BOX_SYMMETRY,
    INNER_HALF,
    REACH_RADIUS,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
)
from polymimic.envs.objects import ROD_RADIUS, wrap_angle

GAP = 0.02  # m: the pre-push point lies this far behind the contact point (nominal)
# Contact and pre-push points must lie this far inside the workspace's clip region.
REACH_MARGIN = 0.005  # m
INSIDE_LEAD = 0.02  # m: room an inside push needs beyond the inner wall (the push's lead)


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


def point_reachable(point: np.ndarray, margin: float = REACH_MARGIN) -> bool:
    """Whether the tip can be put at ``point`` (world x, y) with ``margin`` to spare."""
    inside_box = np.all(point >= WORKSPACE_LOW[:2] + margin) and np.all(
        point <= WORKSPACE_HIGH[:2] - margin
    )
    return bool(inside_box) and math.hypot(point[0], point[1]) <= REACH_RADIUS - margin


def centre_reachable(centre: np.ndarray) -> bool:
    """Whether every face of a box centred here can be pushed from outside."""
    return point_reachable(centre, REACH_MARGIN + BOX_HALF[0] + ROD_RADIUS + GAP)


def room_to_push(centre: np.ndarray, inside: bool) -> bool:
    """Whether the rod can push a box centred here: on every outer face (outside), or on
    the inner walls with a push's lead to spare (inside). Slides run along the box's axes,
    so a yawed box's path bends away from the straight line to the target."""
    if inside:
        return point_reachable(centre, REACH_MARGIN + INNER_HALF[0] + INSIDE_LEAD)
    return centre_reachable(centre)


def segment_hits_rect(p: np.ndarray, q: np.ndarray, half: np.ndarray) -> bool:
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


def back_off(tip_local: np.ndarray, skirt: np.ndarray) -> np.ndarray:
    """The point just outside ``skirt`` straight out from the face the rod is nearest."""
    k = int(np.argmax(np.abs(tip_local) / skirt))
    out = tip_local.copy()
    out[k] = math.copysign(skirt[k] + 0.01, tip_local[k])
    return out


#: Turn (rad) at which the scene's pull between inside and outside changes sign, and the
#: turn difference over which it moves by 1.
TURN_PIVOT, TURN_SCALE = math.radians(45.0), math.radians(20.0)
#: Distance (m) of the hand behind the box (along the way to the target) over which the
#: hand-side pull moves by 1.
SIDE_SCALE = 0.1


def align_scene_utilities(obs: dict[str, np.ndarray]) -> dict[str, float]:
    """How the scene pulls on the choice between pushing from ``inside`` and ``outside``.

    ``u_outside = -u_inside = (u_turn + u_side) / 2``, each term clipped to [-1, 1]:

    * ``u_turn = (|yaw error| - 45°) / 20°``: a large turn is easier from outside, where
      the long wall gives a longer lever (the cavity's inner wall is shorter and a rod
      inside must stay clear of the side walls); a small one favours dropping into the
      cavity, which needs no trip round the box;
    * ``u_side = -(hand - box) · u / SIDE_SCALE`` with ``u`` the unit vector from the box
      to the target: a hand already behind the box (on the side away from the target)
      can push its outer face at once, while a hand on the target's side would have to
      go round or over the box first.

    So no scene makes either choice certain (``Strategy.probabilities``).
    """
    frame = BoxFrame.from_obs(obs)
    u_turn = np.clip((abs(frame.yaw_error) - TURN_PIVOT) / TURN_SCALE, -1.0, 1.0)
    to_target = obs["target"][:2].astype(np.float64) - frame.centre
    hand_offset = obs["tip_pos"][:2].astype(np.float64) - frame.centre
    ahead = float(hand_offset @ to_target) / max(float(np.linalg.norm(to_target)), 1e-6)
    u_side = np.clip(-ahead / SIDE_SCALE, -1.0, 1.0)
    u_outside = 0.5 * float(u_turn + u_side)
    return {"inside": -u_outside, "outside": u_outside}
