"""The human motor model (``operators/motor.py``) and the operator episode around it."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from polymimic.operators import Operator, Strategy, record_episode, task_behaviours
from polymimic.operators.base import MotionSpec, OperatorEpisode, Skill
from polymimic.operators.motor import EXPERT_MOTOR, Hand, MotorSkill, min_jerk
from polymimic.operators.push import PUSH_SKILLS, PUSH_STYLES, push_scene_utilities

DT, MAX_STEP = 0.05, 0.015
PUSH = "polymimic/Push-v1"


def reach(skill: MotorSkill, aim: np.ndarray, tolerance: float = 0.005, seed: int = 0,
          speed: float = 0.012, steps: int = 120) -> tuple[np.ndarray, Hand]:  # fmt: skip
    """Drive a hand from the origin towards ``aim``; the positions it commanded."""
    hand = Hand(skill, np.random.default_rng(seed), 2, MAX_STEP, DT, operator_seed=seed)
    position = np.zeros(2)
    path = [position.copy()]
    for _ in range(steps):
        hand.sync(position)
        position = position + MAX_STEP * hand.move(aim, speed, tolerance)
        path.append(position.copy())
    return np.array(path), hand


def test_min_jerk_profile_starts_and_ends_at_rest() -> None:
    assert min_jerk(0.0) == 0.0 and min_jerk(1.0) == 1.0 and min_jerk(0.5) == pytest.approx(0.5)
    eps = 1e-4
    assert (min_jerk(eps) - min_jerk(0.0)) / eps < 1e-6  # zero velocity at the start
    assert (min_jerk(1.0) - min_jerk(1.0 - eps)) / eps < 1e-6  # and at the end


def test_point_to_point_move_has_no_step_change_of_velocity() -> None:
    aim = np.array([0.2, 0.0])
    path, hand = reach(EXPERT_MOTOR, aim)
    speed = np.linalg.norm(np.diff(path, axis=0), axis=1)
    peak = speed.max()
    # A deadbeat or constant-speed script jumps to cruise speed in one step: here the
    # speed ramps up and down, and no step changes it by more than a fifth of the peak.
    assert speed[0] < 0.05 * peak
    assert np.abs(np.diff(speed)).max() < 0.2 * peak
    last = np.flatnonzero(speed > 0)[-1]
    assert last < len(speed) - 10  # it comes to rest and stays there
    assert 0.3 < np.argmax(speed) / (last + 1) < 0.7  # bell-shaped: peak mid-way
    assert np.linalg.norm(path[-1] - aim) < 0.005
    assert hand.onsets == 1  # a noise-free hand needs no correction
    assert peak <= 0.012 + 1e-9  # never faster than the style's peak speed


def test_longer_movements_and_tighter_targets_take_longer() -> None:
    """Fitts' law: duration grows with log2(1 + D / W), and with the speed limit."""

    def duration(distance: float, tolerance: float) -> int:
        path, _ = reach(EXPERT_MOTOR, np.array([distance, 0.0]), tolerance, speed=0.014)
        speed = np.linalg.norm(np.diff(path, axis=0), axis=1)
        return int(np.count_nonzero(speed > 1e-6))

    assert duration(0.02, 0.002) > duration(0.02, 0.015)
    assert duration(0.2, 0.005) > duration(0.05, 0.005)


def test_endpoint_noise_grows_with_amplitude_and_is_corrected() -> None:
    noisy = dataclasses.replace(EXPERT_MOTOR, endpoint_noise=0.1, reaction_time=0.2)

    def first_stop_error(distance: float, seed: int) -> float:
        hand = Hand(noisy, np.random.default_rng(seed), 2, MAX_STEP, DT)
        hand.sync(np.zeros(2))
        hand.move(np.array([distance, 0.0]), 0.014, 0.001)
        return float(np.linalg.norm(hand.planned_end() - np.array([distance, 0.0])))

    short = np.std([first_stop_error(0.03, s) for s in range(200)])
    long = np.std([first_stop_error(0.3, s) for s in range(200)])
    assert long > 5 * short  # signal-dependent: the error scales with the distance
    path, hand = reach(noisy, np.array([0.3, 0.0]), tolerance=0.004, seed=3, steps=200)
    assert hand.onsets >= 2  # the miss was noticed and corrected by a sub-movement
    assert np.linalg.norm(path[-1] - np.array([0.3, 0.0])) < 0.004


def test_same_seed_same_motion() -> None:
    skill = PUSH_SKILLS["worse"].motor
    first, _ = reach(skill, np.array([0.1, 0.2]), seed=5)
    again, _ = reach(skill, np.array([0.1, 0.2]), seed=5)
    other, _ = reach(skill, np.array([0.1, 0.2]), seed=6)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


class _Recorder:
    def __init__(self, hand: Hand) -> None:
        self.hand, self.seen = hand, []

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.seen.append(int(obs["step"][0]))
        return self.hand.hold()


def test_script_sees_the_scene_a_reaction_time_late() -> None:
    skill = Skill("okay", dataclasses.replace(EXPERT_MOTOR, reaction_time=0.25))
    operator = Operator("x", Strategy("s", {"a": 1.0}, change_of_mind=0.0), None, skill, 0)
    scripts = []
    episode = OperatorEpisode(
        operator, lambda op, b, rng, hand: scripts.append(_Recorder(hand)) or scripts[-1],
        episode_seed=0, motion=MotionSpec(2, MAX_STEP, DT),
    )
    for t in range(10):
        episode.act({"step": np.array([t]), "tip_target": np.zeros(2)})
    assert scripts[0].seen == [0, 0, 0, 0, 0, 0, 1, 2, 3, 4]  # 0.25 s = 5 steps late


def _push_obs(red: tuple[float, float], green: tuple[float, float]) -> dict[str, np.ndarray]:
    return {
        "tip_pos": np.array([0.35, 0.0], np.float32),
        "red_block": np.array([*red, 0.0, 1.0], np.float32),
        "green_block": np.array([*green, 0.0, 1.0], np.float32),
    }


def test_push_choice_prefers_the_nearer_block_without_being_certain() -> None:
    strategy = Strategy("uniform", {b: 1.0 for b in task_behaviours(PUSH)}, scene_weight=1.0)
    red_near = strategy.probabilities(push_scene_utilities(_push_obs((0.40, -0.05), (0.50, 0.15))))
    green_near = strategy.probabilities(push_scene_utilities(_push_obs((0.50, -0.15), (0.40, 0.05))))
    red_first = lambda p: p["red-left"] + p["red-right"]  # noqa: E731
    assert red_first(red_near) > 0.75 and red_first(green_near) < 0.25
    assert all(0.01 < p < 0.99 for p in (*red_near.values(), *green_near.values()))
    # The zone nearer the first block is preferred: the red block sits right (y < 0).
    assert red_near["red-right"] > red_near["red-left"]
    # Without utilities the choice is the preferences' alone.
    assert strategy.probabilities(None) == pytest.approx({b: 0.25 for b in task_behaviours(PUSH)})


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_change_of_mind_is_recorded(rate: float) -> None:
    env = gym.make(PUSH)
    strategy = Strategy("uniform", {b: 1.0 for b in task_behaviours(PUSH)}, change_of_mind=rate)
    operator = Operator("x", strategy, PUSH_STYLES["direct_fast"], PUSH_SKILLS["better"], 11)
    switched = []
    for seed in range(3):
        attrs = record_episode(env, operator, seed).attrs
        if rate == 0.0:
            assert attrs["switch_step"] == -1
            assert attrs["original_intent"] == attrs["intended_behaviour"]
        elif attrs["switch_step"] >= 0:
            switched.append(attrs)
            assert attrs["original_intent"] != attrs["intended_behaviour"]
            assert 0 < attrs["switch_step"] < 4.0 / DT
    if rate == 1.0:
        assert switched  # a revision is dropped only once the rod has pushed a block
        # The recorded behaviour is the final intention, not the first one.
        assert any(a["behaviour"] == a["intended_behaviour"] for a in switched if a["success"])


class _GivesUp:
    def __init__(self, hand: Hand) -> None:
        self.hand, self.steps = hand, 0

    @property
    def abandoned(self) -> bool:
        return self.steps >= 3

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.steps += 1
        return self.hand.move(np.array([0.05, 0.0]), 0.012, 0.005)


def test_an_operator_who_gives_up_ends_once_the_hand_rests() -> None:
    operator = Operator("x", Strategy("s", {"a": 1.0}, change_of_mind=0.0), None,
                        Skill("okay", EXPERT_MOTOR), 0)  # fmt: skip
    episode = OperatorEpisode(operator, lambda op, b, rng, hand: _GivesUp(hand), 0,
                              MotionSpec(2, MAX_STEP, DT))  # fmt: skip
    position, ended = np.zeros(2), None
    for t in range(60):
        position = position + MAX_STEP * episode.act({"tip_target": position})
        if episode.abandoned:
            ended = t
            break
    # It gave up at step 3 but the movement it had started runs to rest first.
    assert ended is not None and ended > 3
    assert np.linalg.norm(position - np.array([0.05, 0.0])) < 0.005
