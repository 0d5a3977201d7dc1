"""The compiled IK kernel against plain numpy, and the env step against raw MuJoCo physics."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numba
import numpy as np
import pytest

import polymimic.envs  # noqa: F401  (registers the ids)
from polymimic.envs.base import TOOL_DOWN
from polymimic.envs.ik import _compiled, hinge_jacobian
from polymimic.envs.robot import NEUTRAL_QPOS

_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


def _reference_targets(jac, err, q, rest, lower, upper, gain=0.2, damping=0.05):
    """The controller's formula written with numpy's dense linear algebra."""
    pull = gain * (rest - q)
    task = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), err)
    null = pull - np.linalg.pinv(jac) @ (jac @ pull)
    return np.clip(q + task + null, lower, upper)


def _pose_error(target_pos, target_rot, site_pos, site_mat):
    skew = target_rot @ site_mat.T - site_mat @ target_rot.T
    return np.concatenate([target_pos - site_pos, 0.5 * np.array([skew[2, 1], skew[0, 2], skew[1, 0]])])


@pytest.fixture(scope="module")
def avoid():
    env = gym.make("polymimic/Avoid-v1").unwrapped
    env.reset(seed=0)
    return env


def _random_configuration(env, rng) -> None:
    arm = env.arm
    env.data.qpos[arm.qpos] = np.clip(NEUTRAL_QPOS + rng.normal(0, 0.3, 7), arm.lower, arm.upper)
    mujoco.mj_forward(env.model, env.data)


def test_hinge_jacobian_equals_mujoco_site_jacobian(avoid) -> None:
    rng = np.random.default_rng(0)
    arm = avoid.arm
    for _ in range(20):
        _random_configuration(avoid, rng)
        expected = np.zeros((6, avoid.model.nv))
        mujoco.mj_jacSite(avoid.model, avoid.data, expected[:3], expected[3:], arm.site_id)
        jac = np.empty((6, 7))
        hinge_jacobian(avoid.data.xaxis[arm.joints], avoid.data.xanchor[arm.joints],
                       avoid.data.site_xpos[arm.site_id], jac)
        np.testing.assert_allclose(jac, expected[:, arm.dof], rtol=0, atol=1e-12)


def test_kernel_matches_the_numpy_formula(avoid) -> None:
    rng = np.random.default_rng(1)
    arm, data = avoid.arm, avoid.data
    for _ in range(50):
        _random_configuration(avoid, rng)
        site_pos, site_mat = data.site_xpos[arm.site_id].copy(), data.site_xmat[arm.site_id].reshape(3, 3)
        target_pos = site_pos + rng.normal(0, 0.02, 3)
        angle = rng.normal(0, 0.1)
        target_rot = np.ascontiguousarray(TOOL_DOWN @ np.array(
            [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]))
        got = avoid.controller.joint_targets(data, target_pos, target_rot).copy()
        jac = np.zeros((6, avoid.model.nv))
        mujoco.mj_jacSite(avoid.model, data, jac[:3], jac[3:], arm.site_id)
        expected = _reference_targets(
            jac[:, arm.dof], _pose_error(target_pos, target_rot, site_pos, site_mat),
            data.qpos[arm.qpos].copy(), NEUTRAL_QPOS, arm.lower, arm.upper,
        )
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_kernel_clips_targets_to_the_joint_limits(avoid) -> None:
    _random_configuration(avoid, np.random.default_rng(2))
    far = avoid.data.site_xpos[avoid.arm.site_id] + np.array([5.0, -5.0, 5.0])
    targets = avoid.controller.joint_targets(avoid.data, far, TOOL_DOWN)
    assert np.all(targets >= avoid.arm.lower) and np.all(targets <= avoid.arm.upper)
    assert np.any(targets == avoid.arm.lower) or np.any(targets == avoid.arm.upper)


@pytest.mark.parametrize("env_id", ["polymimic/Avoid-v1", "polymimic/Stack-v1"])
def test_env_step_is_exactly_mj_step_with_the_task_substeps(env_id: str) -> None:
    """The split step (mj_step2 ... mj_step1) does the physics of one mj_step(nstep=K)."""
    env = gym.make(env_id).unwrapped
    env.reset(seed=4)
    raw = mujoco.MjData(env.model)
    rng = np.random.default_rng(4)
    for _ in range(30):
        start = np.empty(mujoco.mj_stateSize(env.model, _STATE))
        mujoco.mj_getState(env.model, env.data, start, _STATE)
        env.step(rng.uniform(-1, 1, env.action_space.shape))
        mujoco.mj_setState(env.model, raw, start, _STATE)
        raw.ctrl[:] = env.data.ctrl  # the controls the env computed for this step
        mujoco.mj_forward(env.model, raw)
        mujoco.mj_step(env.model, raw, nstep=env.substeps)
        np.testing.assert_array_equal(raw.qpos, env.data.qpos)
        np.testing.assert_array_equal(raw.qvel, env.data.qvel)
        # The observation sees the configuration the physics ended in, not a stale one.
        mujoco.mj_kinematics(env.model, raw)
        np.testing.assert_array_equal(env.measured_tip, raw.site_xpos[env.arm.site_id])


def test_kernels_compile_where_numba_cannot_cache() -> None:
    """numba refuses cache=True at decoration when it finds no cache location (a read-only
    install and home; here: a function with no source file); the kernels then compile
    without the cache instead of failing at import."""
    namespace: dict = {}
    exec(compile("def double(x):\n    return 2.0 * x\n", "<no file>", "exec"), namespace)
    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(namespace["double"])
    assert _compiled(namespace["double"])(3.0) == 6.0
