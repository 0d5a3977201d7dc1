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

# (a [m], d [m], alpha [rad], lower limit, upper limit) per joint; REFERENCES.md.
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

    qpos: np.ndarray  # qpos addresses of the 7 arm joints
    dof: np.ndarray  # dof addresses of the 7 arm joints
    lower: np.ndarray
    upper: np.ndarray
    site_id: int  # the end-effector site the controller moves

    @classmethod
    def from_model(cls, model: mujoco.MjModel, site: str) -> ArmIndices:
        ids = [model.joint(name).id for name in ARM_JOINTS]
        return cls(
            qpos=np.array([model.jnt_qposadr[i] for i in ids]),
            dof=np.array([model.jnt_dofadr[i] for i in ids]),
            lower=np.array([model.jnt_range[i][0] for i in ids]),
            upper=np.array([model.jnt_range[i][1] for i in ids]),
            site_id=model.site(site).id,
        )


class CartesianController:
    """Damped least-squares IK from an end-effector pose target to joint position targets.

    Each control step: ``dq = J^T (J J^T + lambda^2 I)^-1 e`` for the 6-D pose error ``e``,
    plus a pull towards the neutral pose projected into the null space with the exact
    projector ``I - J^+ J`` (a damped projector leaks into the task and leaves ~7 mm of
    steady-state error). The joint target is the measured ``q + dq`` clipped to the limits.

    This runs every control step and dominates polymimic's cost on top of the physics, so
    it is written for Python overhead rather than elegance: preallocated buffers, views
    into ``MjData`` made once per data object, and MuJoCo's small-matrix routines
    (``mju_cholFactor``/``mju_cholSolve``/``mju_mulMat*``), whose per-call cost is a
    fraction of ``np.linalg.solve``'s.
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
        self._damping_eye = self.damping_sq * np.eye(6)
        self._full_jac = np.zeros((6, model.nv))  # rows 0-2 translation, 3-5 rotation
        self._jac = np.zeros((6, 7))
        self._err = np.zeros(6)
        self._skew = np.zeros((3, 3))
        self._jjt = np.zeros((6, 6))
        self._factor = np.zeros((6, 6))
        self._task_dual = np.zeros(6)  # (J J^T + lambda^2 I)^-1 e
        self._null_dual = np.zeros(6)  # (J J^T)^-1 J pull
        self._jac_pull = np.zeros(6)
        self._pull = np.zeros(7)
        self._targets = np.zeros(7)
        # Basic slices instead of fancy indexing where the arm's addresses are contiguous
        # (they are when the arm is the first body tree).
        self._dof = _as_slice(arm.dof)
        self._qpos = _as_slice(arm.qpos)
        self._bound: mujoco.MjData | None = None

    def _bind(self, data: mujoco.MjData) -> None:
        """Views into ``data`` (they stay valid for its lifetime), made once per data."""
        site = self.arm.site_id
        self._site_pos = data.site_xpos[site]
        self._site_mat = data.site_xmat[site].reshape(3, 3)
        self._q = data.qpos[self._qpos]
        self._bound = data

    def joint_targets(
        self, data: mujoco.MjData, target_pos: np.ndarray, target_rot: np.ndarray
    ) -> np.ndarray:
        """Joint position targets that move the site towards ``target_pos``/``target_rot``.

        Args:
            data: current simulation data (kinematics must be up to date).
            target_pos: (3,) world position for the end-effector site.
            target_rot: (3, 3) C-contiguous world rotation matrix for the site frame.

        Returns:
            (7,) joint targets; a buffer reused by the next call (copy to keep it).
        """
        if data is not self._bound:
            self._bind(data)
        full, jac, err, skew = self._full_jac, self._jac, self._err, self._skew
        mujoco.mj_jacSite(self.model, data, full[:3], full[3:], self.arm.site_id)
        jac[:] = full[:, self._dof]
        np.subtract(target_pos, self._site_pos, out=err[:3])
        # Small-angle orientation error 0.5 * sum_i (c_i x t_i) over the frames' axes,
        # i.e. 0.5 * vee(T C^T - C T^T).
        mujoco.mju_mulMatMatT(skew, target_rot, self._site_mat)
        err[3] = 0.5 * (skew[2, 1] - skew[1, 2])
        err[4] = 0.5 * (skew[0, 2] - skew[2, 0])
        err[5] = 0.5 * (skew[1, 0] - skew[0, 1])
        mujoco.mju_mulMatMatT(self._jjt, jac, jac)
        np.add(self._jjt, self._damping_eye, out=self._factor)
        mujoco.mju_cholFactor(self._factor, 0.0)
        mujoco.mju_cholSolve(self._task_dual, self._factor, err)
        # Exact null-space projection of the pull: pull - J^+ J pull, J^+ = J^T (J J^T)^-1.
        pull = self._pull
        np.subtract(self.rest_qpos, self._q, out=pull)
        np.multiply(pull, self.nullspace_gain, out=pull)
        self._factor[:] = self._jjt
        mujoco.mju_cholFactor(self._factor, 1e-12)
        mujoco.mju_mulMatVec(self._jac_pull, jac, pull)
        mujoco.mju_cholSolve(self._null_dual, self._factor, self._jac_pull)
        np.subtract(self._task_dual, self._null_dual, out=self._task_dual)
        targets = self._targets
        mujoco.mju_mulMatTVec(targets, jac, self._task_dual)
        np.add(targets, self._q, out=targets)
        np.add(targets, pull, out=targets)
        np.maximum(targets, self.arm.lower, out=targets)
        return np.minimum(targets, self.arm.upper, out=targets)


def _as_slice(indices: np.ndarray) -> slice | np.ndarray:
    """``indices`` as a slice when they are consecutive, else unchanged."""
    start = int(indices[0])
    if np.array_equal(indices, np.arange(start, start + len(indices))):
        return slice(start, start + len(indices))
    return indices


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
        mujoco.mj_comPos(model, data)
        data.qpos[arm.qpos] = controller.joint_targets(data, target_pos, target_rot)
    mujoco.mj_kinematics(model, data)
    error = np.linalg.norm(data.site_xpos[arm.site_id] - target_pos)
    if error > 1e-4:
        raise RuntimeError(f"home pose IK did not converge (error {error:.2e} m)")
    return data.qpos[arm.qpos].copy()
