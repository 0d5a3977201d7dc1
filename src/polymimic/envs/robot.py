"""The shared arm: a 7-DOF Franka Panda from primitive geoms, and its Cartesian controller.

Kinematics are the manufacturer's modified Denavit-Hartenberg parameters (Craig's
convention). Each DH row becomes one MJCF body: ``pos = (a, -sin(alpha) d, cos(alpha) d)``,
``quat = rotX(alpha)``, hinge about the local z axis. Links are drawn with capsules and do
not collide (only the end-effector and the task objects do), which keeps software
rendering and contact detection cheap while the kinematics and joint limits stay exact.
"""

from __future__ import annotations

import dataclasses
import math

import mujoco
import numpy as np

from polymimic.envs.ik import dls_joint_targets

# (a [m], d [m], alpha [rad], lower limit, upper limit) per joint: the Franka Emika Panda's
# modified DH parameters (Craig's convention) and joint limits as published by the
# manufacturer, Franka Emika.
PANDA_DH: tuple[tuple[float, float, float, float, float], ...] = (
    (0.0, 0.333, 0.0, -2.8973, 2.8973),
    (0.0, 0.0, -math.pi / 2, -1.7628, 1.7628),
    (0.0, 0.316, math.pi / 2, -2.8973, 2.8973),
    (0.0825, 0.0, math.pi / 2, -3.0718, -0.0698),
    (-0.0825, 0.384, -math.pi / 2, -2.8973, 2.8973),
    (0.0, 0.0, math.pi / 2, -0.0175, 3.7525),
    (0.088, 0.0, math.pi / 2, -2.8973, 2.8973),
)
FLANGE_OFFSET = 0.107  # flange along link 7's z axis
NEUTRAL_QPOS = np.array([0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4])
ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
# Position-servo gains: stiff enough to track 1 cm steps within ~2 mm at 20 Hz, with
# kv/kp ~= 0.02 (a menagerie-like 0.1 lags ~3 cm); torque limits are the Panda's.
_KP = (4500, 4500, 4500, 4500, 2000, 2000, 2000)
_KV = (100, 100, 100, 100, 40, 40, 40)
_TORQUE = (87, 87, 87, 87, 12, 12, 12)


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _link_body(index: int, child_xml: str) -> str:
    a, d, alpha, lower, upper = PANDA_DH[index]
    pos = (a, -math.sin(alpha) * d, math.cos(alpha) * d)
    quat = (math.cos(alpha / 2), math.sin(alpha / 2), 0.0, 0.0)
    # Capsule from this joint to the next body's origin, expressed in this body's frame.
    if index + 1 < len(PANDA_DH):
        na, nd, nalpha, *_ = PANDA_DH[index + 1]
        end = (na, -math.sin(nalpha) * nd, math.cos(nalpha) * nd)
    else:
        end = (0.0, 0.0, FLANGE_OFFSET)
    link_geom = ""
    if np.linalg.norm(end) > 1e-6:
        link_geom = f'<geom class="link" type="capsule" fromto="0 0 0 {_fmt(end)}"/>'
    return (
        f'<body name="link{index + 1}" pos="{_fmt(pos)}" quat="{_fmt(quat)}" gravcomp="1">'
        f'<joint name="joint{index + 1}" range="{lower} {upper}"/>'
        f'<geom class="joint_ball" type="sphere" size="0.06"/>'
        f"{link_geom}{child_xml}</body>"
    )


# A wrist camera behind the flange, looking along the tool (flange +z) tilted 0.5 rad
# forward so the tool tip and what lies ahead of it are in view.
_TILT = 0.5
WRIST_CAMERA_XML = (
    f'<camera name="wrist" pos="-0.09 0 0.0" fovy="75" '
    f'xyaxes="0 -1 0 {-math.cos(_TILT):.6g} 0 {math.sin(_TILT):.6g}"/>'
)


def arm_xml(end_effector_xml: str) -> str:
    """MJCF ``<default>``-free body tree of the arm with ``end_effector_xml`` on the flange.

    The end effector XML is placed in a body whose origin is the flange, z pointing out.
    """
    child = (
        f'<body name="flange" pos="0 0 {FLANGE_OFFSET}" gravcomp="1">{WRIST_CAMERA_XML}'
        f"{end_effector_xml}</body>"
    )
    for index in reversed(range(len(PANDA_DH))):
        child = _link_body(index, child)
    base = (
        '<body name="link0" pos="0 0 0">'
        '<geom class="link" type="cylinder" size="0.08 0.05" pos="0 0 0.05"/>'
        f"{child}</body>"
    )
    return base


def arm_defaults_xml() -> str:
    """Default classes the arm's bodies use (inside ``<default>``)."""
    return (
        '<default class="arm">'
        '<joint type="hinge" axis="0 0 1" damping="1" armature="0.1" limited="true"/>'
        '<default class="link"><geom size="0.05" rgba="0.92 0.92 0.95 1" contype="0" '
        'conaffinity="0" group="1" density="600"/></default>'
        '<default class="joint_ball"><geom rgba="0.25 0.25 0.28 1" contype="0" conaffinity="0" '
        'group="1" density="600"/></default>'
        "</default>"
    )


def arm_actuators_xml() -> str:
    """Position actuators on the seven joints (Panda torque limits)."""
    rows = []
    for i, (kp, kv, tau) in enumerate(zip(_KP, _KV, _TORQUE, strict=True)):
        lower, upper = PANDA_DH[i][3], PANDA_DH[i][4]
        rows.append(
            f'<position name="act{i + 1}" joint="joint{i + 1}" kp="{kp}" kv="{kv}" '
            f'ctrlrange="{lower} {upper}" forcerange="{-tau} {tau}"/>'
        )
    return "".join(rows)


@dataclasses.dataclass
class ArmIndices:
    """Addresses of the arm inside a compiled model, looked up once."""

    joints: slice  # ids of the 7 arm joints (consecutive: the arm is the first body tree)
    qpos: slice  # their qpos addresses
    dof: slice  # their dof addresses
    lower: np.ndarray
    upper: np.ndarray
    site_id: int  # the end-effector site the controller moves

    @classmethod
    def from_model(cls, model: mujoco.MjModel, site: str) -> ArmIndices:
        ids = [model.joint(name).id for name in ARM_JOINTS]
        return cls(
            joints=_consecutive(ids, "joint ids"),
            qpos=_consecutive([model.jnt_qposadr[i] for i in ids], "qpos addresses"),
            dof=_consecutive([model.jnt_dofadr[i] for i in ids], "dof addresses"),
            lower=np.array([model.jnt_range[i][0] for i in ids]),
            upper=np.array([model.jnt_range[i][1] for i in ids]),
            site_id=model.site(site).id,
        )


def _consecutive(indices: list[int], what: str) -> slice:
    """``indices`` as a slice; the controller reads the arm through views, which need one."""
    start = int(indices[0])
    if [int(i) for i in indices] != list(range(start, start + len(indices))):
        raise ValueError(f"the arm's {what} {indices} are not consecutive: build the arm first")
    return slice(start, start + len(indices))


class CartesianController:
    """Damped least-squares IK from an end-effector pose target to joint position targets.

    Each control step: ``dq = J^T (J J^T + lambda^2 I)^-1 e`` for the 6-D pose error ``e``,
    plus a pull towards the neutral pose projected into the null space with the exact
    projector ``I - J^+ J`` (``polymimic.envs.ik.dls_joint_targets`` has the formula). The
    joint target is the measured ``q + dq`` clipped to the limits.

    This runs every control step, so the arithmetic is one compiled kernel reading views
    into ``MjData`` that are made once per data object. It needs the kinematics
    (``mj_kinematics``) of the current configuration, nothing else.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        arm: ArmIndices,
        damping: float = 0.05,
        nullspace_gain: float = 0.2,
        rest_qpos: np.ndarray = NEUTRAL_QPOS,
    ) -> None:
        self.model = model
        self.arm = arm
        self.damping_sq = damping**2
        self.nullspace_gain = nullspace_gain
        self.rest_qpos = np.asarray(rest_qpos, dtype=np.float64)
        # Rows: lower limits, upper limits, rest pose, (null-space gain, lambda^2, 0...).
        self._params = np.stack(
            [arm.lower, arm.upper, self.rest_qpos, [nullspace_gain, self.damping_sq, 0, 0, 0, 0, 0]]
        )
        self._targets = np.zeros(7)
        self._bound: mujoco.MjData | None = None

    def _bind(self, data: mujoco.MjData) -> None:
        """Views into ``data`` (they stay valid for its lifetime), made once per data."""
        site, joints = self.arm.site_id, self.arm.joints
        self._views = (
            data.xaxis[joints],
            data.xanchor[joints],
            data.site_xpos[site],
            data.site_xmat[site],
            data.qpos[self.arm.qpos],
        )
        self._bound = data

    def joint_targets(
        self,
        data: mujoco.MjData,
        target_pos: np.ndarray,
        target_rot: np.ndarray,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Joint position targets that move the site towards ``target_pos``/``target_rot``.

        Args:
            data: current simulation data (kinematics must be up to date).
            target_pos: (3,) float64 world position for the end-effector site.
            target_rot: (3, 3) float64 world rotation matrix for the site frame.
            out: (7,) float64 array to write the targets to, e.g. a view of ``data.ctrl``;
                by default a buffer that the next call reuses (copy it to keep it).

        Returns:
            ``out`` (or the reused buffer) holding the (7,) joint targets.
        """
        if data is not self._bound:
            self._bind(data)
        axes, anchors, site_pos, site_mat, q = self._views
        out = self._targets if out is None else out
        dls_joint_targets(
            axes, anchors, site_pos, site_mat, q, target_pos, target_rot, self._params, out
        )
        return out


def solve_home_qpos(
    model: mujoco.MjModel,
    arm: ArmIndices,
    target_pos: np.ndarray,
    target_rot: np.ndarray,
    iterations: int = 300,
) -> np.ndarray:
    """Joint configuration that puts the site at a pose, by iterating the controller's IK.

    Used once per env construction to find the home pose; kinematics only, no dynamics.
    """
    data = mujoco.MjData(model)
    data.qpos[arm.qpos] = NEUTRAL_QPOS
    controller = CartesianController(model, arm)
    for _ in range(iterations):
        mujoco.mj_kinematics(model, data)
        data.qpos[arm.qpos] = controller.joint_targets(data, target_pos, target_rot)
    mujoco.mj_kinematics(model, data)
    error = np.linalg.norm(data.site_xpos[arm.site_id] - target_pos)
    if error > 1e-4:
        raise RuntimeError(f"home pose IK did not converge (error {error:.2e} m)")
    return data.qpos[arm.qpos].copy()
