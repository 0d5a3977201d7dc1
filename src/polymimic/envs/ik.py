"""The arm's damped least-squares IK step as one compiled kernel (numba).

The controller runs once per control step, and in Python/numpy it costs ~20 small calls
(~18 µs warm, ~30 µs between physics steps), as much as a tenth of a cheap task's physics.
One ``@njit`` kernel does the same arithmetic in ~4 µs per call, numba's dispatch included.
It is compiled on first use and cached on disk (``cache=True``), so only the first process
on a machine pays the compile (~3 s).

No ``fastmath``: the kernel uses plain IEEE double arithmetic in a fixed order (no
reassociation, no fused multiply-add), so a given input gives the same bits on any CPU;
datasets generated on two different x86-64 machines matched their manifest bit for bit.
``NUMBA_DISABLE_JIT=1`` runs the same code as Python for debugging.
"""

from __future__ import annotations

import numba
import numpy as np

ARM_DOF = 7
TASK_DIM = 6  # 3 translation + 3 rotation
CHOLESKY_MIN_DIAG = 1e-12  # floor for pivots of the undamped J J^T (as mju_cholFactor's)


def _compiled(function):
    """``numba.njit`` with the on-disk cache, or without it where no cache dir is writable.

    numba refuses ``cache=True`` at decoration time when neither the package's
    ``__pycache__`` nor the user cache dir (``NUMBA_CACHE_DIR``) can be written, e.g. a
    read-only install with a read-only home; then each process compiles (~3 s) instead.
    """
    try:
        return numba.njit(cache=True)(function)
    except RuntimeError:
        return numba.njit(function)


@_compiled
def _cholesky_solve(matrix: np.ndarray, rhs: np.ndarray, min_diag: float) -> np.ndarray:
    """``x`` with ``matrix @ x = rhs`` for a symmetric positive (semi)definite 6x6 matrix.

    Cholesky ``matrix = L L^T`` with pivots floored at ``min_diag``, then two triangular
    solves; ``matrix`` is not modified.
    """
    n = matrix.shape[0]
    lower = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            acc = matrix[i, j]
            for k in range(j):
                acc -= lower[i, k] * lower[j, k]
            if i == j:
                lower[i, i] = np.sqrt(max(acc, min_diag))
            else:
                lower[i, j] = acc / lower[j, j]
    forward = np.empty(n)
    for i in range(n):
        acc = rhs[i]
        for k in range(i):
            acc -= lower[i, k] * forward[k]
        forward[i] = acc / lower[i, i]
    solution = np.empty(n)
    for i in range(n - 1, -1, -1):
        acc = forward[i]
        for k in range(i + 1, n):
            acc -= lower[k, i] * solution[k]
        solution[i] = acc / lower[i, i]
    return solution


@_compiled
def hinge_jacobian(
    joint_axes: np.ndarray, joint_anchors: np.ndarray, site_pos: np.ndarray, jacobian: np.ndarray
) -> None:
    """6x7 site Jacobian of a chain of hinges, into ``jacobian``.

    Column i is ``(a_i x (p - o_i), a_i)`` for joint i's world axis ``a_i`` and anchor
    ``o_i`` and the site position ``p`` (translation rows 0-2, rotation rows 3-5); this is
    what ``mj_jacSite`` returns for hinge joints.
    """
    for i in range(joint_axes.shape[0]):
        ax, ay, az = joint_axes[i, 0], joint_axes[i, 1], joint_axes[i, 2]
        rx = site_pos[0] - joint_anchors[i, 0]
        ry = site_pos[1] - joint_anchors[i, 1]
        rz = site_pos[2] - joint_anchors[i, 2]
        jacobian[0, i] = ay * rz - az * ry
        jacobian[1, i] = az * rx - ax * rz
        jacobian[2, i] = ax * ry - ay * rx
        jacobian[3, i] = ax
        jacobian[4, i] = ay
        jacobian[5, i] = az


@_compiled
def pose_error(
    site_pos: np.ndarray, site_mat: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray
) -> np.ndarray:
    """6-D error: position difference, then the small-angle orientation error.

    The orientation part is ``0.5 vee(T C^T - C T^T)`` for target ``T`` and current ``C``
    (``site_mat``, row-major (9,)), i.e. half the sum of the cross products of the frames'
    matching axes; it is the rotation vector for small errors.
    """
    err = np.empty(TASK_DIM)
    for i in range(3):
        err[i] = target_pos[i] - site_pos[i]
    skew = np.zeros((3, 3))  # T C^T
    for i in range(3):
        for j in range(3):
            for k in range(3):
                skew[i, j] += target_rot[i, k] * site_mat[3 * j + k]
    err[3] = 0.5 * (skew[2, 1] - skew[1, 2])
    err[4] = 0.5 * (skew[0, 2] - skew[2, 0])
    err[5] = 0.5 * (skew[1, 0] - skew[0, 1])
    return err


@_compiled
def dls_joint_targets(
    joint_axes: np.ndarray,
    joint_anchors: np.ndarray,
    site_pos: np.ndarray,
    site_mat: np.ndarray,
    q: np.ndarray,
    target_pos: np.ndarray,
    target_rot: np.ndarray,
    params: np.ndarray,
    out: np.ndarray,
) -> None:
    """Joint position targets ``clip(q + dq, lower, upper)`` for one IK step, into ``out``.

    ``dq = J^T (J J^T + lambda^2 I)^-1 e + (I - J^+ J) p`` with ``J^+ = J^T (J J^T)^-1``:
    ``e`` is the 6-D pose error (``pose_error``), and ``p = k (q_rest - q)``
    the pull towards the rest pose, projected exactly into the null space (a damped
    projector leaks into the task and leaves ~7 mm of steady-state error).

    Args:
        joint_axes, joint_anchors: (7, 3) world axes and anchors of the arm's hinges.
        site_pos, site_mat: the controlled site's world position (3,) and rotation (9,).
        q: (7,) the joints' current positions.
        target_pos, target_rot: desired site position (3,) and rotation (3, 3).
        params: (4, 7) rows lower limit, upper limit, rest pose, and (null-space gain
            ``k``, damping ``lambda^2``, unused...).
        out: (7,) buffer the targets are written to. (Nothing is returned: boxing a
            returned array costs about a microsecond per call.)
    """
    jac = np.empty((TASK_DIM, ARM_DOF))
    hinge_jacobian(joint_axes, joint_anchors, site_pos, jac)
    err = pose_error(site_pos, site_mat, target_pos, target_rot)
    jjt = np.zeros((TASK_DIM, TASK_DIM))
    for i in range(TASK_DIM):
        for j in range(i + 1):
            acc = 0.0
            for k in range(ARM_DOF):
                acc += jac[i, k] * jac[j, k]
            jjt[i, j] = acc
            jjt[j, i] = acc
    pull = np.empty(ARM_DOF)
    for k in range(ARM_DOF):
        pull[k] = params[3, 0] * (params[2, k] - q[k])
    jac_pull = np.zeros(TASK_DIM)
    for i in range(TASK_DIM):
        for k in range(ARM_DOF):
            jac_pull[i] += jac[i, k] * pull[k]
    null_dual = _cholesky_solve(jjt, jac_pull, CHOLESKY_MIN_DIAG)
    for i in range(TASK_DIM):
        jjt[i, i] += params[3, 1]
    task_dual = _cholesky_solve(jjt, err, 0.0)
    for k in range(ARM_DOF):
        value = q[k] + pull[k]
        for i in range(TASK_DIM):
            value += jac[i, k] * (task_dual[i] - null_dual[i])
        out[k] = min(max(value, params[0, k]), params[1, k])
