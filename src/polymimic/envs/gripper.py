"""A two-finger parallel gripper for the arm's flange, grasping by real contact.

Two fingers slide along the flange's y axis (world y when the tool points down at zero
yaw), each driven by its own position servo. Nothing welds or attaches an object: a
cube is held only by the pads' squeeze and friction. The parameters start from a
grasping prototype built before this package (position servos kp 200, +-20 N, finger damping
30, friction 1.5, elliptic cones, impratio 10, 2 ms timestep: 50/50 pick-and-stack of
4-5 cm, 0.1-0.3 kg cubes), with the two changes marked, measured in this scene
(the 0.3 kg cube held closed for a whole 50 s episode creeps 1.7 mm; with impratio 1
it creeps 16 mm):

* slide joints 0..4 cm (the joint value is the pad's inner face distance from the
  gripper's centre plane, so the opening between the pads is the sum of both);
* position servos kp 400 (the prototype's: 200), force limit +-20 N, commanded 0
  (closed) or 4 cm (open): on a 4-5 cm cube a closed servo squeezes with
  ``kp * half width`` = 8-10 N per finger (with 4-5 N the 0.3 kg cube slid 3-5 mm down
  the pads while being lifted);
* finger joint damping 30: light fingers closing on force alone tunnel through a cube;
* box pads 2 x 1 x 2.4 cm, friction 1.5 / 0.02 / 0.0001, condim 4, solimp 0.95 0.99
  0.001 (with the scene's ``cone="elliptic"``, ``impratio="10"``; impratio 1 lets a held
  cube slip 1-3 mm/s) and solref 0.004 1 (the prototype's 0.01 1 is softer: MuJoCo's
  friction constraints have no position memory, so every velocity transient of the arm
  -- its servos wobble the flange a little after each 20 Hz target step -- leaves a
  permanent slip proportional to the time constant; 0.004 s = 2 timesteps, the stiffest
  stable value, cut the slip of a 4 cm cube along the pads during a 15 cm lift from 6 to
  2.5 mm).

The ``tip`` site, the point the arm's controller moves, is the grasp centre: midway
between the pads, at the pads' mid height.
"""

from __future__ import annotations

FINGER_LENGTH = 0.10  # m, flange to the grasp centre (tip site) along the tool axis
FINGER_TRAVEL = 0.04  # m, slide range of each finger (0 = pads touching the centre plane)
PAD_HALF = (0.01, 0.005, 0.012)  # m, half sizes of a pad box (x, y: thickness, z: height)
FINGER_MASS = 0.05  # kg per finger; heavy enough with the damping not to tunnel
FINGER_KP = 400.0  # N/m
FINGER_FORCE = 20.0  # N
FINGER_DAMPING = 30.0  # N s/m
GRIPPER_OPEN = FINGER_TRAVEL  # servo target of an open finger
GRIPPER_CLOSED = 0.0  # servo target of a closed finger
FINGER_JOINTS = ("finger_left", "finger_right")
PAD_GEOMS = ("pad_left", "pad_right")
PALM_GEOM = "palm"
# Pads and palm collide with the table and objects (contype 1 partners) but not with each
# other: contype 2 / conaffinity 1 pairs with contype 1 geoms only.
_COLLIDE = 'contype="2" conaffinity="1"'
_PAD_CONTACT = (
    'friction="1.5 0.02 0.0001" condim="4" solref="0.004 1" solimp="0.95 0.99 0.001" '
    'priority="1"'
)
_PALM_BOTTOM = 0.028  # m from the flange


def _finger_xml(name: str, sign: int) -> str:
    """One finger: a visual link from the palm down, and the colliding pad at the tip.

    ``sign`` is +1 for the finger on the flange's +y side; its joint opens along +y.
    """
    px, py, pz = PAD_HALF
    pad_y = sign * py  # pad centre at joint value 0: inner face on the centre plane
    link_top, link_bottom = _PALM_BOTTOM, FINGER_LENGTH - pz
    link_y = sign * (2 * py + 0.002)  # outside the pad's inner face: never touches a cube
    return (
        f'<body name="{name}" gravcomp="1">'
        f'<joint name="{name}" type="slide" axis="0 {sign} 0" range="0 {FINGER_TRAVEL}" '
        f'damping="{FINGER_DAMPING}" armature="0.01" limited="true"/>'
        f'<geom name="{name}_link" type="box" pos="0 {link_y} {(link_top + link_bottom) / 2}" '
        f'size="{px * 0.8} 0.004 {(link_bottom - link_top) / 2}" mass="{FINGER_MASS}" '
        f'rgba="0.3 0.3 0.33 1" contype="0" conaffinity="0" group="1"/>'
        f'<geom name="pad_{name.split("_")[1]}" type="box" pos="0 {pad_y} {FINGER_LENGTH}" '
        f'size="{px} {py} {pz}" mass="0.005" rgba="0.15 0.15 0.15 1" {_COLLIDE} '
        f"{_PAD_CONTACT}/>"
        "</body>"
    )


def gripper_xml() -> str:
    """The gripper's MJCF, to be placed inside the flange body (z pointing out of it)."""
    span = FINGER_TRAVEL + 2 * PAD_HALF[1] + 0.01
    return (
        f'<geom name="{PALM_GEOM}" type="box" pos="0 0 {_PALM_BOTTOM / 2}" '
        f'size="0.025 {span} {_PALM_BOTTOM / 2}" mass="0.3" rgba="0.85 0.85 0.88 1" '
        f"{_COLLIDE}/>"
        + _finger_xml("finger_left", 1)
        + _finger_xml("finger_right", -1)
        + f'<site name="tip" pos="0 0 {FINGER_LENGTH}" size="0.004" rgba="1 0.5 0 0.5"/>'
    )


def gripper_actuators_xml() -> str:
    """Position servos of the two fingers (``ctrl[7]``, ``ctrl[8]``)."""
    return "".join(
        f'<position name="{joint}" joint="{joint}" kp="{FINGER_KP}" '
        f'ctrlrange="0 {FINGER_TRAVEL}" forcerange="{-FINGER_FORCE} {FINGER_FORCE}"/>'
        for joint in FINGER_JOINTS
    )
