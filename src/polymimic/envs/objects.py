"""Pieces several tabletop tasks share: the pushing rod, and planar poses of free bodies.

Kept here so the rod of every pushing task is one definition (same radius, length,
slippery contact) and yaw is read from a free joint's quaternion the same way everywhere.
Tasks append what they share; nothing here knows about a particular task.
"""

from __future__ import annotations

import math

import numpy as np

ROD_RADIUS = 0.01  # m
ROD_LENGTH = 0.20  # m, flange to the rod's tip site
# Slippery (friction 0.05) with a higher geom priority, so MuJoCo uses the rod's friction
# rather than the maximum of the pair: an off-centre push slides along a face instead of
# dragging the object sideways.
ROD_FRICTION = "0.05 0.005 0.0001"


def rod_xml() -> str:
    """MJCF of the vertical rod end-effector (on the flange) with its ``tip`` site."""
    return (
        f'<geom name="rod" type="capsule" fromto="0 0 0 0 0 {ROD_LENGTH}" '
        f'size="{ROD_RADIUS}" rgba="0.2 0.2 0.22 1" friction="{ROD_FRICTION}" '
        f'priority="1" contype="1" conaffinity="1" mass="0.1"/>'
        f'<site name="tip" pos="0 0 {ROD_LENGTH}" size="0.005"/>'
    )


def yaw_of(quat: np.ndarray) -> float:
    """Yaw (rad, in (-pi, pi]) of a body rotated about the world z axis only.

    ``quat`` is MuJoCo's (w, x, y, z); for a pure z rotation x = y = 0, and objects
    pushed flat on the table stay (very nearly) upright.
    """
    return 2.0 * math.atan2(float(quat[3]), float(quat[0]))


def wrap_angle(angle: float, period: float = 2.0 * math.pi) -> float:
    """``angle`` wrapped into [-period/2, period/2) (e.g. period pi for a 2-fold object)."""
    return (angle + 0.5 * period) % period - 0.5 * period


def yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    """MuJoCo (w, x, y, z) quaternion of a rotation by ``yaw`` about world z."""
    return (math.cos(0.5 * yaw), 0.0, 0.0, math.sin(0.5 * yaw))


def cube_xml(
    name: str,
    half: float,
    mass: float,
    rgba: str,
    friction: str = "0.5 0.005 0.0001",
    solref: str | None = None,
) -> str:
    """MJCF of a free cube resting on the table; body, free joint and geom are all ``name``.

    Placed at the world origin: the task's reset writes its pose into the joint's qpos.
    ``solref`` (MuJoCo's contact time constant and damping ratio) stiffens the cube's
    contacts where something presses on it; None keeps MuJoCo's default (0.02 1).
    """
    contact = f' solref="{solref}"' if solref is not None else ""
    return (
        f'<body name="{name}" pos="0 0 {half}"><freejoint name="{name}"/>'
        f'<geom name="{name}" type="box" size="{half} {half} {half}" '
        f'mass="{mass}" rgba="{rgba}" friction="{friction}"{contact}/></body>'
    )


def floor_patch_xml(
    name: str, centre: tuple[float, float], half: tuple[float, float], rgba: str
) -> str:
    """MJCF of a flat, collision-free coloured rectangle on the table (a target zone)."""
    return (
        f'<geom name="{name}" type="box" pos="{centre[0]} {centre[1]} 0.0005" '
        f'size="{half[0]} {half[1]} 0.0005" rgba="{rgba}" contype="0" conaffinity="0"/>'
    )
