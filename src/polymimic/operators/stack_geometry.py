"""Geometry of the Stack scripts: cube centres, the workspace box, the env's stacking test,
the heights a carried body must keep above other cubes, and how the scene pulls on the
choice of stacking order."""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from polymimic.envs.stack import (
    BLOCK_HALF,
    BLOCKS,
    STACK_XY_TOL,
    STACK_Z_TOL,
    TARGET_CENTRE,
    TARGET_HALF,
    TOOL_YAW_LIMIT,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
)

OBSTACLE_MARGIN = 0.008  # m added around obstacles' footprints
AIM_MARGIN = 0.003  # m: aims stay this far inside the workspace box (no clipped targets)


def cube_centres(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Cube centres (3, 3) in ``BLOCKS`` order."""
    return np.stack([obs[f"{b}_block"][:3] for b in BLOCKS]).astype(np.float64)


def cube_yaws(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Cube yaws modulo 90° (3,), in [-45°, 45°], from the observation's (sin 4θ, cos 4θ)."""
    return np.array(
        [math.atan2(float(obs[f"{b}_block"][3]), float(obs[f"{b}_block"][4])) / 4 for b in BLOCKS]
    )


def face_yaw(cube_yaw: float, wrist_yaw: float) -> float:
    """The tool yaw, within ``TOOL_YAW_LIMIT``, that squares the pads on a cube of yaw
    ``cube_yaw`` (any of its four faces: ``cube_yaw + k 90°``), nearest ``wrist_yaw``."""
    candidates = [cube_yaw + k * math.pi / 2 for k in (-1, 0, 1)]
    allowed = [c for c in candidates if abs(c) <= TOOL_YAW_LIMIT] or [cube_yaw]
    return min(allowed, key=lambda c: abs(c - wrist_yaw))


def turned_extents(half_x: float, half_y: float, yaw: float) -> tuple[float, float]:
    """Half extents (x, y) of the world-aligned box around a rectangle of half extents
    ``half_x``, ``half_y`` turned by ``yaw``."""
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    return c * half_x + s * half_y, s * half_x + c * half_y


def inside_workspace(point: np.ndarray) -> np.ndarray:
    """``point`` moved inside the workspace box: the controller would clip it otherwise."""
    return np.clip(point, WORKSPACE_LOW + AIM_MARGIN, WORKSPACE_HIGH - AIM_MARGIN)


def stacked_prefix(cubes: np.ndarray, plan: list[int]) -> int:
    """How many cubes of ``plan`` (bottom first) already stand correctly on the target,
    by the env's success geometry (target square, 2 cm offsets, resting heights)."""
    for level, index in enumerate(plan):
        half = BLOCK_HALF[BLOCKS[index]]
        if level == 0:
            support, z, tolerance = TARGET_CENTRE, half, None
        else:
            below = cubes[plan[level - 1]]
            support, z = below[:2], below[2] + BLOCK_HALF[BLOCKS[plan[level - 1]]] + half
            tolerance = STACK_XY_TOL
        offset = cubes[index, :2] - support
        inside = (
            np.all(np.abs(offset) <= TARGET_HALF)
            if tolerance is None
            else np.hypot(*offset) <= tolerance
        )
        if not (inside and abs(cubes[index, 2] - z) <= STACK_Z_TOL):
            return level
    return len(plan)


class Body(NamedTuple):
    """What moves with the hand, for the obstacle checks: half extents (x, y) around a
    point ``offset`` from the grasp centre, reaching ``depth`` below that point."""

    half_x: float
    half_y: float
    depth: float
    offset: np.ndarray


def needed_heights(
    samples: np.ndarray, cubes: np.ndarray, obstacles: list[int], body: Body, clearance: float
) -> np.ndarray:
    """Per sample point (of the moving body's reference point), the lowest height that
    keeps the body ``clearance`` above every obstacle cube under its footprint."""
    needed = np.full(len(samples), float(WORKSPACE_LOW[2]))
    for index in obstacles:
        centre = cubes[index]
        half = BLOCK_HALF[BLOCKS[index]] * 1.15 + OBSTACLE_MARGIN  # yawed cubes: wider
        near = (np.abs(samples[:, 0] - centre[0]) < body.half_x + half) & (
            np.abs(samples[:, 1] - centre[1]) < body.half_y + half
        )
        top = centre[2] + BLOCK_HALF[BLOCKS[index]] + body.depth + clearance
        needed = np.where(near, np.maximum(needed, top), needed)
    return needed


#: Distance (m) over which a difference in the scene moves a utility by 1 (see below).
SCENE_SCALE = 0.05


def stack_scene_utilities(obs: dict[str, np.ndarray]) -> dict[str, float]:
    """How the scene pulls on the choice of the order ``"<bottom>-<middle>-<top>"``.

    People tend to pick up next the cube nearest their hand. The hand starts at its home
    position, and after the bottom cube is placed it is at the target, so::

        u = ½ clip((mean_c d(hand, c) - d(hand, bottom)) / SCENE_SCALE, -1, 1)
          + ½ clip((d(target, top) - d(target, middle)) / SCENE_SCALE, -1, 1)

    with ``c`` the two other cubes: start with the cube nearest the hand, then carry the
    one of the remaining two that is nearer the target. ``u`` lies in [-1, 1];
    ``Strategy.probabilities`` turns it into choice probabilities (never certain).
    """
    hand = obs["tip_pos"][:2].astype(np.float64)
    cubes = cube_centres(obs)[:, :2]
    to_hand = np.linalg.norm(cubes - hand, axis=1)
    to_target = np.linalg.norm(cubes - TARGET_CENTRE, axis=1)
    utilities = {}
    for order in itertools.permutations(range(len(BLOCKS))):
        bottom, middle, top = order
        first = (0.5 * (to_hand[middle] + to_hand[top]) - to_hand[bottom]) / SCENE_SCALE
        second = (to_target[top] - to_target[middle]) / SCENE_SCALE
        utilities["-".join(BLOCKS[i] for i in order)] = float(
            0.5 * np.clip(first, -1, 1) + 0.5 * np.clip(second, -1, 1)
        )
    return utilities
