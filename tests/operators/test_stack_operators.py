"""The scripted Stack operators: every style stacks on demand, routes differ, re-planning.

One episode per style (module-scoped) feeds the style tests; ~5 s on 2 cores.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from polymimic.datasets.episode import Episode
from polymimic.operators.base import Operator, Skill, Strategy, record_episode
from polymimic.operators.stack import STACK_STYLES, StackScript, make_stack_script

ENV_ID = "polymimic/Stack-v0"
ORDER_BY_STYLE = dict(zip(STACK_STYLES, ("red-green-blue", "blue-green-red", "green-blue-red",
                                         "red-blue-green"), strict=True))


def _operator(style: str, behaviour: str, seed: int = 0) -> Operator:
    return Operator(f"test_{style}", Strategy("one", {behaviour: 1.0}), STACK_STYLES[style],
                    Skill("better"), seed)


@pytest.fixture(scope="module")
def episodes() -> dict[str, Episode]:
    env = gym.make(ENV_ID)
    return {
        style: record_episode(env, _operator(style, order), make_stack_script, episode_seed=3)
        for style, order in ORDER_BY_STYLE.items()
    }


@pytest.mark.parametrize("style", list(STACK_STYLES))
def test_each_style_stacks_the_requested_order(episodes: dict[str, Episode], style: str) -> None:
    attrs = episodes[style].attrs
    assert attrs["success"], attrs
    assert attrs["behaviour"] == attrs["intended_behaviour"] == ORDER_BY_STYLE[style]


def _carrying_heights(episode: Episode) -> np.ndarray:
    """Tip heights while the gripper is closed and at least 8 cm from where it closed."""
    tip = episode.obs["tip_pos"]
    closed = episode.obs["gripper"][:, 1] > 0.5
    heights = []
    for t in np.flatnonzero(closed):
        start = t
        while start > 0 and closed[start - 1]:
            start -= 1
        if np.linalg.norm(tip[t, :2] - tip[start, :2]) > 0.08:
            heights.append(tip[t, 2])
    return np.array(heights)


def test_vertical_and_direct_routes_carry_at_different_heights(
    episodes: dict[str, Episode],
) -> None:
    for style in ("vertical_fast", "vertical_slow"):
        cruise = STACK_STYLES[style].cruise_height
        # Across the table at the cruise height: most carrying steps are up there.
        assert np.median(_carrying_heights(episodes[style])) > cruise - 0.01, style
    for style in ("direct_fast", "direct_slow"):
        # Only as high as the stack (at most 2 cubes, 9.5 cm) and the carried cube demand.
        assert _carrying_heights(episodes[style]).max() < 0.16, style


def test_slow_styles_take_longer(episodes: dict[str, Episode]) -> None:
    assert len(episodes["vertical_slow"].actions) > len(episodes["vertical_fast"].actions)
    assert len(episodes["direct_slow"].actions) > len(episodes["direct_fast"].actions)


def test_script_is_deterministic() -> None:
    env = gym.make(ENV_ID)
    operator = _operator("direct_fast", "blue-red-green", seed=5)
    a = record_episode(env, operator, make_stack_script, episode_seed=9)
    b = record_episode(env, operator, make_stack_script, episode_seed=9)
    np.testing.assert_array_equal(a.actions, b.actions)


def test_script_rebuilds_a_stack_knocked_down_behind_its_back() -> None:
    """Re-planning from observations: a cube removed from the stack is stacked again."""
    env = gym.make(ENV_ID).unwrapped
    operator = _operator("direct_fast", "green-red-blue")
    script = StackScript(operator, "green-red-blue", operator.episode_rng(0))
    obs, info = env.reset(seed=4)
    knocked = False
    for _ in range(env.max_episode_steps):
        obs, _, terminated, _, info = env.step(script.act(obs))
        if terminated:
            break
        if not knocked and info["blocks_stacked"] == 2 and script.current == 2:
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


def test_unknown_order_is_a_clear_error() -> None:
    operator = _operator("direct_fast", "red-green-blue")
    for bad in ("red-green", "red-red-blue", "RGB"):
        with pytest.raises(ValueError, match="stacking order"):
            StackScript(operator, bad, np.random.default_rng(0))
