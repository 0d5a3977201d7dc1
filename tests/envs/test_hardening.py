"""What the envs do with bad input: refuse it with a clear ``UserError``, change nothing.

Covers non-finite and malformed actions (``step``), corrupt states (``reset_to``) and
constructor arguments the renderer cannot serve (sizes beyond the offscreen framebuffer).
The new names are read from ``polymimic.envs.base`` inside the tests, so every test here
fails on its own (rather than the module failing to import) where a check is missing.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import polymimic.envs.base as base
from polymimic.envs import TASK_IDS
from polymimic.errors import InvalidActionError, UserError


def _make(env_id: str, **kwargs: Any) -> gym.Env:
    return gym.make(env_id, **kwargs).unwrapped


def _started(env_id: str, steps: int = 5) -> gym.Env:
    """An env a few steps into an episode, so its state is not the reset state."""
    env = _make(env_id)
    env.reset(seed=1)
    for _ in range(steps):
        env.step(np.full(env.action_space.shape, 0.5, dtype=np.float32))
    return env


# ----------------------------------------------------------------------------- actions
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("env_id", TASK_IDS)
def test_non_finite_action_is_refused_and_changes_nothing(env_id: str, bad: float) -> None:
    env, twin = _started(env_id), _started(env_id)
    before = env.get_state()
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    action[-1] = bad
    with pytest.raises(InvalidActionError, match="must be finite") as error:
        env.step(action)
    message = str(error.value)
    assert "\n" not in message
    assert str(float(bad)) in message, message  # names the offending value
    np.testing.assert_array_equal(env.get_state(), before)
    # The episode goes on as if the refused step had never been asked for.
    good = np.full(env.action_space.shape, -0.3, dtype=np.float32)
    obs, *_ = env.step(good)
    twin_obs, *_ = twin.step(good)
    assert all(np.isfinite(value).all() for value in obs.values())
    np.testing.assert_array_equal(env.get_state(), twin.get_state())
    for key in obs:
        np.testing.assert_array_equal(obs[key], twin_obs[key], err_msg=key)


def test_non_finite_action_is_refused_through_the_gym_wrappers() -> None:
    env = gym.make(TASK_IDS[0])
    env.reset(seed=0)
    before = env.unwrapped.get_state()
    for action in ([np.nan, 0.0], [0.0, np.inf], (-np.inf, -np.inf)):
        with pytest.raises(InvalidActionError):
            env.step(action)
    np.testing.assert_array_equal(env.unwrapped.get_state(), before)
    env.step([0.1, 0.1])


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_wrong_shape_or_non_numeric_action_is_an_invalid_action_error(env_id: str) -> None:
    env = _started(env_id, steps=1)
    before = env.get_state()
    size = env.action_space.shape[0]
    for bad in (np.zeros(size + 1), np.zeros((1, size)), ["left"] * size):
        with pytest.raises(InvalidActionError):
            env.step(bad)
    np.testing.assert_array_equal(env.get_state(), before)


# ----------------------------------------------------------------------------- reset_to
def _corruptions(env: gym.Env, state: np.ndarray) -> dict[str, np.ndarray]:
    """Named copies of ``state`` with one problem each."""
    n = env.state_size - 4 - env.task_state_size  # start of the controller target
    edits = {
        "nan physics": (1, np.nan),
        "inf physics": (n - 1, np.inf),
        "nan target": (n, np.nan),
        "far target x": (n, 10.0),
        "far target y": (n + 1, -3.0),
        "target below table": (n + 2, -1.0),
        "context = num_contexts": (n + 3, env.num_contexts),
        "context -1": (n + 3, -1),
        "context 2.5": (n + 3, 2.5),
        "nan context": (n + 3, np.nan),
    }
    if env.task_state_size:
        edits["inf task progress"] = (env.state_size - 1, -np.inf)
    corrupted = {}
    for name, (index, value) in edits.items():
        corrupted[name] = state.copy()
        corrupted[name][index] = value
    return corrupted


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_reset_to_refuses_a_corrupt_state_and_changes_nothing(env_id: str) -> None:
    env = _started(env_id)
    before = env.get_state()
    obs_before = env._observe()
    source = _started(env_id, steps=2).get_state()  # a valid state other than the current
    for name, bad in _corruptions(env, source).items():
        with pytest.raises(UserError, match=r"get_state\(\)") as error:
            env.reset_to(bad)
        assert type(env).__name__ in str(error.value), name
        assert "\n" not in str(error.value), name
        np.testing.assert_array_equal(env.get_state(), before, err_msg=name)
    assert type(error.value) is base.InvalidStateError
    for key, value in env._observe().items():
        np.testing.assert_array_equal(value, obs_before[key], err_msg=key)
    env.reset_to(source)  # the valid original still restores
    np.testing.assert_array_equal(env.get_state(), source)


def test_reset_to_messages_name_the_problem() -> None:
    env = _started(TASK_IDS[0])
    corrupted = _corruptions(env, env.get_state())
    expected = {
        "nan physics": r"non-finite.*\(physics\)",
        "nan target": r"non-finite.*\(controller target\)",
        "far target x": r"controller target \[10\.0, .*outside x in \[-1\.5, 1\.5\]",
        "context 2.5": rf"context id 2\.5 .*not an integer in \[0, {env.num_contexts}\)",
    }
    for name, pattern in expected.items():
        with pytest.raises(UserError, match=pattern):
            env.reset_to(corrupted[name])


# ----------------------------------------------------------------------------- constructor
def _config_error(env_id: str, **kwargs: Any) -> str:
    with pytest.raises(UserError) as error:
        gym.make(env_id, **kwargs)
    assert type(error.value) is base.EnvConfigError
    assert "\n" not in str(error.value)
    return str(error.value)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_oversized_images_are_refused_at_construction(env_id: str) -> None:
    height, width = 480, 640  # <global offheight/offwidth> of every model
    for prefix, extra in (
        ("render", {"render_mode": "rgb_array"}),
        ("camera", {"obs_mode": "rgb"}),
    ):
        message = _config_error(env_id, **extra, **{f"{prefix}_width": width + 1})
        assert f"{prefix}_width={width + 1}" in message and f"maximum is {width}" in message
        message = _config_error(env_id, **extra, **{f"{prefix}_height": height + 1})
        assert f"{prefix}_height={height + 1}" in message and f"maximum is {height}" in message
    assert (base.MAX_RENDER_HEIGHT, base.MAX_RENDER_WIDTH) == (height, width)


def test_image_sizes_must_be_positive_integers() -> None:
    env_id = TASK_IDS[0]
    for bad in (0, -5, 64.0, "64", True):
        for argument in ("render_height", "render_width", "camera_height", "camera_width"):
            assert argument in _config_error(env_id, **{argument: bad})


# Gymnasium warns about the unknown render mode before the env refuses it.
@pytest.mark.filterwarnings("ignore:.*render_mode='video'")
def test_camera_arguments_are_checked() -> None:
    env_id = TASK_IDS[0]
    rgb = {"obs_mode": "rgb"}
    assert "distinct" in _config_error(env_id, cameras=("front", "front"), **rgb)
    assert "distinct" in _config_error(env_id, cameras=(), **rgb)
    too_many = ("front", "top", "wrist", "left", "right")
    assert f"{base.MAX_CAMERAS} distinct" in _config_error(env_id, cameras=too_many, **rgb)
    assert "list of camera names" in _config_error(env_id, cameras="front", **rgb)
    assert "strings" in _config_error(env_id, cameras=(0,), **rgb)
    assert "unknown camera 'side'" in _config_error(env_id, cameras=("side",), **rgb)
    message = _config_error(env_id, render_camera="side")
    assert "render_camera" in message and "'front'" in message
    assert "obs_mode" in _config_error(env_id, obs_mode="depth")
    assert "render_mode" in _config_error(env_id, render_mode="video")


def test_the_framebuffer_limits_are_the_compiled_ones_and_usable() -> None:
    assert (base.MAX_RENDER_WIDTH, base.MAX_RENDER_HEIGHT) == (640, 480)
    assert {"state", "rgb", "state+rgb"} == set(base.OBS_MODES)
    height, width = base.MAX_RENDER_HEIGHT, base.MAX_RENDER_WIDTH
    env = _make(
        TASK_IDS[0],
        render_mode="rgb_array",
        render_height=height,
        render_width=width,
        obs_mode="state+rgb",
        camera_height=height,
        camera_width=width,
    )
    # The checks must not alter the model: dataset bytes depend on it.
    assert env.model.vis.global_.offwidth == width
    assert env.model.vis.global_.offheight == height
    obs, _ = env.reset(seed=0)
    assert obs["front_image"].shape == (height, width, 3)
    frame = env.render()
    assert frame.shape == (height, width, 3) and frame.std() > 10.0
    env.close()
