"""The task-generic skill errors (``SkilledScript``) and the calibrated quality groups."""

from __future__ import annotations

import hashlib

import gymnasium as gym
import numpy as np
import pytest

from polymimic.datasets.diagnostics import rms_jerk
from polymimic.datasets.episode import Episode
from polymimic.operators.base import (
    Operator,
    Skill,
    SkilledScript,
    _task_motion_dims,
    record_episode,
)
from polymimic.operators.push import PUSH_SKILLS, PUSH_STRATEGIES, PUSH_STYLES, make_push_script
from polymimic.operators.stack import STACK_STRATEGIES, STACK_STYLES, make_stack_script

PUSH_ID = "polymimic/Push-v0"
# Digests of episodes recorded *before* the generic skill errors existed (same operators,
# seeds and library versions): an operator whose new fields are at their defaults must still
# produce these demos. Values are rounded to 1e-6 so that last-bit differences between
# platforms' floating point do not fail the test; any behavioural change would. Re-recorded
# once, with the wrapper unchanged, when the IK became a compiled kernel (its last-bit
# differences grow through contacts into different episodes).
OLD_WORSE = Skill("worse", drift=0.009, drift_time=25.0, hesitation=0.6)
REFERENCE_PUSH = {
    ("better", 0): "95543d3f79f1e8ef",
    ("better", 1): "f02a23fc089c7b05",
    ("worse", 0): "ed09b98660cb45ae",
    ("worse", 1): "e15a9b4263220c4c",
}
REFERENCE_STACK = "aa65221d6b7f9c6f"  # Stack, okay (drift 0.005, hesitation 0.3), seed 0


def _digest(episode: Episode) -> str:
    h = hashlib.sha256()
    h.update(np.round(episode.actions.astype(np.float64), 6).tobytes())
    h.update(np.round(episode.obs["tip_pos"].astype(np.float64), 6).tobytes())
    return h.hexdigest()[:16]


def _push_operator(skill: Skill, seed: int = 7) -> Operator:
    return Operator("op", PUSH_STRATEGIES["uniform"], PUSH_STYLES["direct_fast"], skill, seed)


@pytest.fixture(scope="module")
def push_env() -> gym.Env:
    return gym.make(PUSH_ID)


class ConstantScript:
    """Commands the same action every step and remembers what it was shown."""

    def __init__(self, action: list[float]) -> None:
        self.action = np.array(action, dtype=np.float32)
        self.seen: list[dict[str, np.ndarray]] = []

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.seen.append(obs)
        return self.action


def _run(skill: Skill, action: list[float], steps: int, seed: int = 0,
         motion_dims: tuple[int, ...] | None = None) -> np.ndarray:
    """(steps, A) actions of a constant script executed with ``skill``."""
    dims = motion_dims if motion_dims is not None else tuple(range(len(action)))
    wrapper = SkilledScript(
        ConstantScript(action), skill, np.random.default_rng(seed), dims, horizon=steps
    )
    obs = {"x": np.zeros(1)}
    return np.stack([wrapper.act(obs) for _ in range(steps)])


def _lag1(x: np.ndarray) -> float:
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


# ------------------------------------------------------------------ defaults change nothing
def test_default_fields_reproduce_demos_recorded_before_the_wrapper(push_env: gym.Env) -> None:
    assert not Skill("worse", drift=0.009, hesitation=0.6).perturbs_actions
    for (quality, seed), expected in REFERENCE_PUSH.items():
        skill = Skill("better") if quality == "better" else OLD_WORSE
        episode = record_episode(push_env, _push_operator(skill), make_push_script, seed)
        assert _digest(episode) == expected, (quality, seed)
    stack = gym.make("polymimic/Stack-v0")
    operator = Operator("op", STACK_STRATEGIES["uniform"], STACK_STYLES["direct_fast"],
                        Skill("okay", drift=0.005, hesitation=0.3), 7)
    assert _digest(record_episode(stack, operator, make_stack_script, 0)) == REFERENCE_STACK


# ------------------------------------------------------------------ reaction delay
def test_reaction_delay_shows_the_script_the_observation_k_steps_old(push_env: gym.Env) -> None:
    delay = 3
    scripts = []

    def spy_factory(operator: Operator, behaviour: str, rng: np.random.Generator) -> object:
        inner = make_push_script(operator, behaviour, rng)

        class Spy:
            def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
                scripts.append(obs["tip_pos"].copy())
                return inner.act(obs)

        return Spy()

    operator = _push_operator(Skill("okay", reaction_delay=delay))
    episode = record_episode(push_env, operator, spy_factory, episode_seed=4)
    seen = np.stack(scripts)
    expected = episode.obs["tip_pos"][np.maximum(np.arange(len(seen)) - delay, 0)]
    np.testing.assert_array_equal(seen, expected)
    assert not np.array_equal(seen, episode.obs["tip_pos"])  # it really is stale


# ------------------------------------------------------------------ gain and noise
def test_noise_is_time_correlated_speed_scaled_and_seeded() -> None:
    skill = Skill("worse", action_noise=0.2, noise_time=20.0)
    actions = _run(skill, [0.5, 0.0], steps=3000)
    noise = actions[:, 0].astype(np.float64) - 0.5
    assert _lag1(noise) > 0.8  # exp(-1/20) = 0.95 for an OU process
    assert _lag1(actions[:, 1].astype(np.float64)) > 0.8
    # std = action_noise * |m| = 0.2 * 0.5 (one OU path of 3000 steps: within 25%)
    assert noise.std() == pytest.approx(0.1, rel=0.25)
    np.testing.assert_array_equal(actions, _run(skill, [0.5, 0.0], steps=3000))
    assert not np.array_equal(actions, _run(skill, [0.5, 0.0], steps=3000, seed=1))


def test_gain_is_a_correlated_log_normal_around_one_plus_overshoot() -> None:
    skill = Skill("worse", overshoot=0.3, gain_noise=0.2, gain_time=30.0)
    actions = _run(skill, [0.2, -0.1], steps=4000)  # small enough never to clip
    gain = actions[:, 0].astype(np.float64) / 0.2
    # The gain scales the command as a whole: direction kept.
    np.testing.assert_allclose(actions[:, 1] / -0.1, gain, rtol=1e-5)
    assert _lag1(np.log(gain)) > 0.8
    assert np.median(gain) == pytest.approx(1.3, rel=0.1)


def test_errors_vanish_when_the_script_commands_no_motion() -> None:
    skill = Skill("worse", overshoot=0.5, gain_noise=0.5, action_noise=1.0, fumble=1.0)
    np.testing.assert_array_equal(_run(skill, [0.0, 0.0], steps=300), 0.0)


def test_gripper_component_is_untouched_and_motion_clipped() -> None:
    skill = Skill("worse", overshoot=2.0, gain_noise=0.5, action_noise=2.0, fumble=1.0)
    actions = _run(skill, [0.6, -0.6, 0.3, 0.7], steps=500, motion_dims=(0, 1, 2))
    np.testing.assert_array_equal(actions[:, 3], np.float32(0.7))
    assert np.abs(actions[:, :3]).max() <= 1.0
    assert np.abs(actions[:, :3]).max() == 1.0  # the gain of 3 really clips


def test_stack_declares_its_gripper_and_push_moves_in_all_components(push_env: gym.Env) -> None:
    assert _task_motion_dims(push_env) == (0, 1)
    assert _task_motion_dims(gym.make("polymimic/Stack-v0")) == (0, 1, 2)


def test_fumble_is_one_burst_of_fixed_motion() -> None:
    skill = Skill("worse", fumble=1.0, fumble_size=0.5, fumble_steps=6)
    actions = _run(skill, [0.1, 0.0], steps=400).astype(np.float64)
    slip = actions - np.array([0.1, 0.0])
    moved = np.flatnonzero(np.linalg.norm(slip, axis=1) > 1e-6)
    assert len(moved) == 6 and np.all(np.diff(moved) == 1)
    np.testing.assert_allclose(np.linalg.norm(slip[moved], axis=1), 0.5, rtol=1e-5)


# ------------------------------------------------------------------ episodes
def test_wrapper_leaves_the_script_draws_and_is_deterministic(push_env: gym.Env) -> None:
    operator = _push_operator(PUSH_SKILLS["worse"])
    a = record_episode(push_env, operator, make_push_script, episode_seed=3)
    b = record_episode(push_env, operator, make_push_script, episode_seed=3)
    np.testing.assert_array_equal(a.actions, b.actions)
    plain = record_episode(push_env, _push_operator(OLD_WORSE), make_push_script, 3)
    assert a.attrs["intended_behaviour"] == plain.attrs["intended_behaviour"]
    assert not np.array_equal(a.actions[:50], plain.actions[:50])


def test_worse_push_operator_is_slower_and_jerkier_than_better(push_env: gym.Env) -> None:
    stats = {}
    for quality in ("better", "worse"):
        operator = _push_operator(PUSH_SKILLS[quality], seed=100)
        episodes = [record_episode(push_env, operator, make_push_script, s) for s in range(6)]
        lengths = [len(e.actions) for e in episodes]
        jerk = rms_jerk([e.obs["tip_pos"] for e in episodes], dt=0.05)
        stats[quality] = (np.mean(lengths), jerk)
    assert stats["worse"][0] > 1.5 * stats["better"][0]
    assert stats["worse"][1] > 1.5 * stats["better"][1]
