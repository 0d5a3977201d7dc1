"""The scripted Stack operators: every style stacks on demand, routes differ, re-planning,
no deadlock with a noisy hand, revisable, scene utilities.

One noise-free episode per style (module-scoped) feeds the style tests; ~10 s on 2 cores.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from polymimic.datasets.episode import Episode
from polymimic.envs.stack import BLOCKS, MAX_STEP, TARGET_CENTRE
from polymimic.operators import task_operators
from polymimic.operators.base import Operator, OperatorEpisode, Skill, Strategy, record_episode
from polymimic.operators.motor import EXPERT_MOTOR, Hand
from polymimic.operators.stack import (
    STACK_SKILLS,
    STACK_STYLES,
    StackScript,
    make_stack_script,
    stack_scene_utilities,
)

ENV_ID = "polymimic/Stack-v1"
ORDER_BY_STYLE = dict(zip(STACK_STYLES, ("red-green-blue", "blue-green-red", "green-blue-red",
                                         "red-blue-green"), strict=True))


def _operator(style: str, behaviour: str, seed: int = 0, skill: Skill | None = None) -> Operator:
    return Operator(f"test_{style}", Strategy("one", {behaviour: 1.0}, change_of_mind=0.0),
                    STACK_STYLES[style], skill or Skill("better", EXPERT_MOTOR), seed)


def _episode(operator: Operator, seed: int) -> OperatorEpisode:
    return OperatorEpisode(operator, make_stack_script, seed, task_operators(ENV_ID).motion)


@pytest.fixture(scope="module")
def episodes() -> dict[str, Episode]:
    env = gym.make(ENV_ID)
    return {
        style: record_episode(env, _operator(style, order), episode_seed=3)
        for style, order in ORDER_BY_STYLE.items()
    }


@pytest.mark.parametrize("style", list(STACK_STYLES))
def test_each_style_stacks_the_requested_order(episodes: dict[str, Episode], style: str) -> None:
    attrs = episodes[style].attrs
    assert attrs["success"], attrs
    assert attrs["behaviour"] == attrs["intended_behaviour"] == ORDER_BY_STYLE[style]


def _lift_shapes(episode: Episode) -> list[float]:
    """Per carry (gripper closed): the share of the carry's peak height reached by the time
    the tip is 4 cm (horizontally) from where the fingers closed."""
    tip = episode.obs["tip_pos"]
    closed = episode.actions[:, -1] > 0  # the gripper command (last): > 0 closes
    shares = []
    for start in np.flatnonzero(closed[1:] & ~closed[:-1]) + 1:
        end = start
        while end + 1 < len(closed) and closed[end + 1]:
            end += 1
        carry = tip[start : end + 1]
        away = np.flatnonzero(np.linalg.norm(carry[:, :2] - carry[0, :2], axis=1) > 0.04)
        if len(away):
            rise = carry[:, 2] - carry[0, 2]
            shares.append(float(rise[away[0]] / max(rise.max(), 1e-6)))
    return shares


def test_vertical_route_rises_before_it_crosses_and_direct_does_not(
    episodes: dict[str, Episode],
) -> None:
    for style in ("vertical_fast", "vertical_slow"):
        assert min(_lift_shapes(episodes[style])) > 0.8, style
    for style in ("direct_fast", "direct_slow"):
        # Up and across together (the first carry starts with a short straight lift).
        assert np.median(_lift_shapes(episodes[style])) < 0.5, style


def test_slow_styles_take_longer(episodes: dict[str, Episode]) -> None:
    assert len(episodes["vertical_slow"].actions) > len(episodes["vertical_fast"].actions)
    assert len(episodes["direct_slow"].actions) > len(episodes["direct_fast"].actions)


def test_script_is_deterministic() -> None:
    env = gym.make(ENV_ID)
    operator = _operator("direct_fast", "blue-red-green", seed=5, skill=STACK_SKILLS["okay"])
    a = record_episode(env, operator, episode_seed=9)
    b = record_episode(env, operator, episode_seed=9)
    np.testing.assert_array_equal(a.actions, b.actions)


def test_script_rebuilds_a_stack_knocked_down_behind_its_back() -> None:
    """Re-planning from observations: a cube removed from the stack is stacked again."""
    env = gym.make(ENV_ID).unwrapped
    episode = _episode(_operator("direct_fast", "green-red-blue"), 0)
    obs, info = env.reset(seed=4)
    knocked = False
    for _ in range(env.max_episode_steps):
        obs, _, terminated, _, info = env.step(episode.act(obs))
        if terminated:
            break
        if not knocked and info["blocks_stacked"] == 2 and episode.script.current == 2:
            # Move red (the middle cube) from the stack back onto the table, at rest.
            state = env.get_state()
            joint = env.model.joint("red_block")
            start = 1 + joint.qposadr[0]
            state[start : start + 7] = (0.40, 0.05, 0.025, 1.0, 0.0, 0.0, 0.0)
            dof = 1 + env.model.nq + joint.dofadr[0]
            state[dof : dof + 6] = 0.0
            obs = env.reset_to(state)
            knocked = True
    assert knocked
    assert info["success"] and info["behaviour"] == "green-red-blue"


def test_worse_operators_never_deadlock() -> None:
    """A noisy hand ends every episode stacked or abandoned (after its mistakes), and never
    rests longer than the stuck limit in a phase that is not finished."""
    env = gym.make(ENV_ID).unwrapped
    operator = _operator("direct_fast", "red-green-blue", seed=7, skill=STACK_SKILLS["worse"])
    for seed in (0, 1, 2):
        episode = _episode(operator, seed)
        obs, info = env.reset(seed=seed)
        longest = 0
        for _ in range(env.max_episode_steps):
            obs, _, terminated, _, info = env.step(episode.act(obs))
            script = episode.script
            if terminated or script.phase == "abandoned":
                break
            if script.phase != "done":
                longest = max(longest, script.stuck)
        assert info["success"] or script.phase == "abandoned", (seed, script.phase)
        assert longest <= script.stuck_limit + 1, seed


def test_revisable_until_the_fingers_first_close() -> None:
    env = gym.make(ENV_ID).unwrapped
    episode = _episode(_operator("direct_fast", "blue-green-red"), 1)
    obs, _ = env.reset(seed=1)
    seen = []
    for _ in range(200):
        obs, *_ = env.step(episode.act(obs))
        seen.append((episode.script.phase, episode.script.revisable))
    phases = [phase for phase, _ in seen]
    first_close = phases.index("close")
    assert all(revisable for _, revisable in seen[:first_close])
    assert not any(revisable for _, revisable in seen[first_close:])


def test_scene_utilities_prefer_the_cube_nearest_the_hand_first() -> None:
    obs = {
        "tip_pos": np.array([0.40, -0.20, 0.2], dtype=np.float32),
        "red_block": np.array([0.40, -0.22, 0.025, 0, 1], dtype=np.float32),  # by the hand
        "green_block": np.array([*TARGET_CENTRE, 0.0225, 0, 1], dtype=np.float32),
        "blue_block": np.array([0.60, -0.10, 0.02, 0, 1], dtype=np.float32),
    }
    utilities = stack_scene_utilities(obs)
    assert len(utilities) == 6 and all(-1.0 <= u <= 1.0 for u in utilities.values())
    best = max(utilities, key=utilities.get)
    assert best == "red-green-blue"  # red nearest the hand, then green (at the target)
    assert utilities["red-green-blue"] > utilities["blue-green-red"]


def test_unknown_order_is_a_clear_error() -> None:
    operator = _operator("direct_fast", "red-green-blue")
    rng = np.random.default_rng(0)
    hand = Hand(EXPERT_MOTOR, rng, 3, MAX_STEP, 0.05)
    for bad in ("red-green", "red-red-blue", "RGB"):
        with pytest.raises(ValueError, match="stacking order"):
            StackScript(operator, bad, rng, hand)
    assert sorted("red-green-blue".split("-")) == sorted(BLOCKS)


def test_the_wrist_turns_to_the_cube_faces_before_each_grasp() -> None:
    """Cubes start at any yaw: when the fingers close, the tool's measured yaw matches the
    grasped cube's yaw modulo 90 degrees (within a few degrees), and it turned smoothly."""
    env = gym.make(ENV_ID).unwrapped
    operator = _operator("direct_fast", "red-green-blue", skill=STACK_SKILLS["okay"])
    for seed in (0, 3):
        episode = _episode(operator, seed)
        obs, _ = env.reset(seed=seed)
        misses, turns, closing = [], [], False
        for _ in range(env.max_episode_steps):
            action = episode.act(obs)
            turns.append(float(action[3]))
            if action[-1] > 0 and not closing:  # the fingers start closing
                cube = obs[f"{BLOCKS[episode.script.current]}_block"]
                cube_yaw = np.arctan2(cube[3], cube[4]) / 4
                tool_yaw = np.arctan2(*obs["tip_yaw"])
                offset = (tool_yaw - cube_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
                misses.append(abs(offset))
            closing = action[-1] > 0
            obs, _, terminated, _, info = env.step(action)
            if terminated:
                break
        assert info["success"], seed
        assert len(misses) >= 3 and max(misses) < np.radians(6), (seed, np.degrees(misses))
        assert max(np.abs(np.diff(turns))) < 0.5  # smooth turns, no jumps of the yaw rate


def test_the_wrist_is_a_second_motor_hand_with_its_own_efference_copy() -> None:
    env = gym.make(ENV_ID).unwrapped
    motion = task_operators(ENV_ID).motion
    assert motion.wrist_step > 0 and motion.dims == 3
    episode = _episode(_operator("direct_fast", "blue-red-green"), 2)
    obs, _ = env.reset(seed=2)
    for _ in range(80):
        obs, *_ = env.step(episode.act(obs))
        # What the operator believes it commanded is the env's desired yaw (not observed).
        assert episode.wrist_yaw == pytest.approx(env.target_yaw, abs=1e-6)
    assert episode.hand.wrist is not None and episode.hand.wrist.onsets >= 1
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="wrist"):
        StackScript(_operator("direct_fast", "red-green-blue"), "red-green-blue", rng,
                    Hand(EXPERT_MOTOR, rng, 3, MAX_STEP, 0.05))


def test_hesitations_are_capped() -> None:
    """Stack's skills cut a hesitation before contact at MAX_PAUSE (no still stretch near
    100 steps from a pause alone)."""
    from polymimic.operators.stack import MAX_PAUSE

    for skill in STACK_SKILLS.values():
        assert skill.motor.max_pause == MAX_PAUSE <= 2.5
    hand = Hand(STACK_SKILLS["worse"].motor, np.random.default_rng(1), 3, MAX_STEP, 0.05)
    longest = 0
    for _ in range(2000):
        hand.contact, hand.pause_left = False, 0
        hand._maybe_pause()
        longest = max(longest, hand.pause_left)
    assert 0 < longest <= round(MAX_PAUSE / 0.05)
