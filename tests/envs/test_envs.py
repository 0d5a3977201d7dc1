"""Contract tests run over every registered task id (Gymnasium's tests/envs/test_envs.py).

Every id in ``polymimic.envs.TASK_IDS`` must pass Gymnasium's ``check_env``, be
deterministic under a seed, pickle mid-episode, restore exactly from ``get_state()``,
report ``success``/``behaviour`` every step and render a real frame headlessly (EGL).
Trajectories are run on ``env.unwrapped`` so the TimeLimit wrapper cannot end them early.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from polymimic.envs import TASK_IDS

# Unbounded Box observations (positions, angles) are intended; every other check_env
# warning, in particular the determinism/seeding ones, is a real problem.
CHECK_ENV_IGNORE_WARNINGS = {
    f"\x1b[33mWARN: {message}\x1b[0m"
    for message in (
        "A Box observation space minimum value is -infinity. This is probably too low.",
        "A Box observation space maximum value is infinity. This is probably too high.",
    )
}


def _make(env_id: str, **kwargs: Any) -> gym.Env:
    return gym.make(env_id, **kwargs).unwrapped


def _random_actions(env: gym.Env, n: int, seed: int) -> np.ndarray:
    space = env.action_space
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype)


def _assert_obs_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _rollout(env: gym.Env, actions: np.ndarray) -> list[tuple[Any, ...]]:
    """(obs, reward, terminated, truncated, info, state after the step) per action."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, reward, terminated, truncated, info, env.get_state()))
    return out


def _assert_rollouts_equal(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> None:
    assert len(a) == len(b)
    for t, (step_a, step_b) in enumerate(zip(a, b, strict=True)):
        obs_a, *rest_a, state_a = step_a
        obs_b, *rest_b, state_b = step_b
        _assert_obs_equal(obs_a, obs_b)
        assert rest_a == rest_b, f"step {t}: reward/terminated/truncated/info differ"
        np.testing.assert_array_equal(state_a, state_b, err_msg=f"state at step {t}")


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_check_env(env_id: str) -> None:
    env = _make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=False)
    env.close()
    unexpected = [
        str(w.message) for w in caught if w.message.args[0] not in CHECK_ENV_IGNORE_WARNINGS
    ]
    assert not unexpected, unexpected


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_time_limit_is_registered(env_id: str) -> None:
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == type(env.unwrapped).max_episode_steps


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_same_seed_same_trajectory(env_id: str) -> None:
    env_a, env_b = _make(env_id), _make(env_id)
    obs_a, info_a = env_a.reset(seed=123)
    obs_b, info_b = env_b.reset(seed=123)
    _assert_obs_equal(obs_a, obs_b)
    assert info_a == info_b
    np.testing.assert_array_equal(env_a.get_state(), env_b.get_state())
    actions = _random_actions(env_a, 50, seed=7)
    _assert_rollouts_equal(_rollout(env_a, actions), _rollout(env_b, actions))

    env_b.reset(seed=124)
    env_a.reset(seed=123)
    assert not np.array_equal(env_a.get_state(), env_b.get_state())


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_pickle_mid_episode(env_id: str) -> None:
    # Rendered once first, so the pickled env holds a live GL renderer it must drop.
    env = _make(env_id, render_mode="rgb_array", render_height=48, render_width=64)
    env.reset(seed=5)
    env.render()
    _rollout(env, _random_actions(env, 15, seed=1))
    copy = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(copy.get_state(), env.get_state())
    actions = _random_actions(env, 20, seed=2)
    _assert_rollouts_equal(_rollout(env, actions), _rollout(copy, actions))
    assert copy.render().shape == (48, 64, 3)
    env.close()
    copy.close()


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_reset_to_reproduces_the_rest_of_the_episode(env_id: str) -> None:
    env = _make(env_id)
    env.reset(seed=11)
    _rollout(env, _random_actions(env, 30, seed=3))
    state = env.get_state()
    actions = _random_actions(env, 40, seed=4)
    original = _rollout(env, actions)

    # A fresh instance in another episode, and the original instance rewound.
    other = _make(env_id)
    other.reset(seed=999)
    for restored in (other, env):
        restored.reset_to(state)
        np.testing.assert_array_equal(restored.get_state(), state)
        _assert_rollouts_equal(_rollout(restored, actions), original)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_reset_to_returns_the_observation_recorded_at_that_state(env_id: str) -> None:
    env = _make(env_id)
    env.reset(seed=11)
    obs = _rollout(env, _random_actions(env, 30, seed=3))[-1][0]
    state = env.get_state()
    _assert_obs_equal(_make(env_id).reset_to(state), obs)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_no_observation_but_tip_target_reads_a_command(env_id: str) -> None:
    """Observations hold measured quantities plus the documented desired position: change
    every command (the controller's target, Stack's desired tool yaw and every actuator's
    control) without stepping the physics, and only ``tip_target`` may change. A key that
    read the last gripper command (Stack's, until v1's observation fix) or the desired yaw
    would change with it."""
    env = _make(env_id)
    env.reset(seed=5)
    _rollout(env, _random_actions(env, 10, seed=2))
    unwrapped = env.unwrapped
    before = unwrapped._get_obs()
    unwrapped.target_pos = unwrapped.target_pos + 0.01
    unwrapped.data.ctrl[:] = unwrapped.data.ctrl + 0.02 - 2.0 * (unwrapped.data.ctrl > 0.02)
    if hasattr(unwrapped, "target_yaw"):  # Stack's desired tool yaw: tip_yaw is measured
        unwrapped.target_yaw = unwrapped.target_yaw + 0.3
    after = unwrapped._get_obs()
    for key in before:
        if key == "tip_target":
            assert not np.array_equal(before[key], after[key])
        else:
            np.testing.assert_array_equal(before[key], after[key], err_msg=key)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_reset_to_rejects_a_wrong_length_state(env_id: str) -> None:
    env = _make(env_id)
    env.reset(seed=0)
    state = env.get_state()
    assert state.shape == (env.state_size,)
    for bad in (state[:-1], np.append(state, 0.0), state[None]):
        with pytest.raises(ValueError, match=rf"expected \({env.state_size},\)") as error:
            env.reset_to(bad)
        assert type(env).__name__ in str(error.value)
    # The failed calls left the simulation untouched.
    np.testing.assert_array_equal(env.get_state(), state)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_info_and_observations_every_step(env_id: str) -> None:
    env = _make(env_id)
    labels = (*env.behaviours, "other")
    obs, info = env.reset(seed=3)
    infos, observations = [info], [obs]
    for action in _random_actions(env, 60, seed=5):
        obs, reward, terminated, _, info = env.step(action)
        assert terminated == info["success"]
        assert reward == float(info["success"])
        infos.append(info)
        observations.append(obs)
    for t, (obs, info) in enumerate(zip(observations, infos, strict=True)):
        assert type(info["success"]) is bool, t
        assert info["behaviour"] in labels, (t, info["behaviour"])
        assert env.observation_space.contains(obs), (t, obs)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_render_rgb_array_headless(env_id: str) -> None:
    env = _make(env_id, render_mode="rgb_array", render_height=120, render_width=160)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (120, 160, 3)
    assert frame.dtype == np.uint8
    # A constant frame means an empty scene or a failed (black) GL read-back.
    assert frame.std() > 10.0
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 50
    env.close()
    assert _make(env_id).render() is None


# ----------------------------------------------------------------------------- contexts
@pytest.mark.parametrize("env_id", TASK_IDS)
def test_context_option_selects_a_context_and_the_seed_perturbs_it(env_id: str) -> None:
    env = _make(env_id)
    assert env.num_contexts >= 1
    contexts = range(env.num_contexts)
    for context in contexts:
        obs_a, info_a = env.reset(seed=1, options={"context": context})
        state_a = env.get_state()
        assert info_a["context"] == context == env.context
        env.reset(seed=2, options={"context": context})
        # Same context, another seed: a small perturbation, not the same initial state.
        assert not np.array_equal(state_a, env.get_state())
    drawn = {env.reset(seed=seed)[1]["context"] for seed in range(60)}
    assert drawn <= set(contexts)
    if env.num_contexts > 1:
        assert len(drawn) > 1, "without the option the context must come from the seed"
        first, _ = env.reset(seed=1, options={"context": 0})
        last, _ = env.reset(seed=1, options={"context": env.num_contexts - 1})
        assert any(not np.array_equal(first[k], last[k]) for k in first)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_unknown_context_is_a_clear_error(env_id: str) -> None:
    env = _make(env_id)
    for bad in (-1, env.num_contexts, "0", 1.5):
        with pytest.raises(ValueError, match="context"):
            env.reset(seed=0, options={"context": bad})


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_behaviour_labels_are_declared_before_any_rollout(env_id: str) -> None:
    cls = type(_make(env_id))
    assert len(cls.behaviours) >= 2
    assert len(set(cls.behaviours)) == len(cls.behaviours)
    assert "other" not in cls.behaviours


# ----------------------------------------------------------------------------- images
@pytest.mark.parametrize("env_id", TASK_IDS)
def test_rgb_observations_are_deterministic_and_show_the_scene(env_id: str) -> None:
    kwargs = dict(obs_mode="state+rgb", cameras=("front", "wrist"), camera_height=48,
                  camera_width=64)
    env_a, env_b = _make(env_id, **kwargs), _make(env_id, **kwargs)
    obs_a, _ = env_a.reset(seed=4)
    obs_b, _ = env_b.reset(seed=4)
    assert env_a.observation_space.contains(obs_a)
    for camera in ("front", "wrist"):
        image = obs_a[f"{camera}_image"]
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        assert image.std() > 5.0, f"{camera} image is (nearly) constant"
    state_keys = set(_make(env_id).observation_space.spaces)
    assert state_keys < set(obs_a)
    actions = _random_actions(env_a, 50, seed=9)
    _assert_rollouts_equal(_rollout(env_a, actions), _rollout(env_b, actions))
    env_a.close()
    env_b.close()


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_rgb_only_mode_has_only_images(env_id: str) -> None:
    env = _make(env_id, obs_mode="rgb", cameras=("front",))
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"front_image"}
    assert obs["front_image"].shape == (96, 96, 3)
    with pytest.raises(ValueError, match="unknown camera"):
        _make(env_id, obs_mode="rgb", cameras=("nope",))
    with pytest.raises(ValueError, match="obs_mode"):
        _make(env_id, obs_mode="depth")
