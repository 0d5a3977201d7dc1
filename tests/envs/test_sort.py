"""Sort-specific checks: labels, contexts, zone tolerances and replay of the arrival order.

Blocks are teleported by editing a ``get_state()`` vector and restoring it with
``reset_to`` (the public replay API), as in ``test_push.py``: qpos entry ``i`` sits at
index ``1 + i`` of the state (MuJoCo's integration state starts with the time).
"""

from __future__ import annotations

import math
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

from polymimic.envs.objects import yaw_quat
from polymimic.envs.sort import (
    BLOCK_HALF,
    BLOCK_JITTER,
    SLOT_X,
    SLOT_Y,
    YAW_JITTER,
    ZONE_X,
    ZONE_Y,
    Sort2Env,
    Sort4Env,
    Sort6Env,
    SortEnv,
    block_names,
    sort_contexts,
)

STILL = np.zeros(2, dtype=np.float32)
RED_IN = (0.5, 0.26)  # a point well inside the red zone
BLUE_IN = (0.5, -0.26)


def _make(env_id: str = "polymimic/Sort4-v1") -> SortEnv:
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    return env


def _place(env: SortEnv, yaw: float = 0.0, **positions: tuple[float, float]) -> dict:
    """Teleport blocks (by body name, e.g. ``red_0``) flat and at rest to x, y."""
    state = env.get_state()
    for name, (x, y) in positions.items():
        joint = env.model.joint(name)
        start = 1 + joint.qposadr[0]
        state[start : start + 7] = (x, y, BLOCK_HALF, *yaw_quat(yaw))
        dof = 1 + env.model.nq + joint.dofadr[0]
        state[dof : dof + 6] = 0.0
    return env.reset_to(state)


def _step(env: SortEnv) -> tuple[float, bool, dict]:
    _, reward, terminated, _, info = env.step(STILL)
    return reward, terminated, info


# --------------------------------------------------------------------- labels
@pytest.mark.parametrize(("cls", "count"), [(Sort2Env, 2), (Sort4Env, 6), (Sort6Env, 20)])
def test_behaviours_are_every_colour_order(cls: type[SortEnv], count: int) -> None:
    half = cls.num_blocks // 2
    assert len(cls.behaviours) == len(set(cls.behaviours)) == count == math.comb(2 * half, half)
    for label in cls.behaviours:
        assert Counter(label) == {"R": half, "B": half}
    assert cls.task_state_size == cls.num_blocks + 2


def test_label_is_the_arrival_order_of_colours() -> None:
    env = _make()
    # Arrivals: blue_1, red_0, blue_0, red_1 -> "BRBR"; success only with all four in.
    sequence = [("blue_1", BLUE_IN), ("red_0", RED_IN), ("blue_0", (0.65, -0.26))]
    for count, (name, xy) in enumerate(sequence, start=1):
        _place(env, **{name: xy})
        reward, terminated, info = _step(env)
        assert (reward, terminated, info["success"], info["behaviour"]) == (
            0,
            False,
            False,
            "other",
        )
        assert info["blocks_sorted"] == count
    assert env.arrival_order() == "BRB"
    _place(env, red_1=(0.65, 0.26))
    reward, terminated, info = _step(env)
    assert (reward, terminated, info["success"]) == (1.0, True, True)
    assert info["behaviour"] == "BRBR"


def test_arrival_is_the_first_entry_not_the_last() -> None:
    env = _make("polymimic/Sort2-v1")
    _place(env, red_0=RED_IN)
    _step(env)
    _place(env, red_0=(0.5, 0.0))  # leaves its zone again ...
    _step(env)
    _place(env, blue_0=BLUE_IN)
    _step(env)
    _place(env, red_0=RED_IN)  # ... and comes back after blue arrived
    _, terminated, info = _step(env)
    assert terminated and info["behaviour"] == "RB"


def test_a_block_in_the_wrong_zone_fails_the_episode_for_good() -> None:
    env = _make("polymimic/Sort2-v1")
    _place(env, red_0=BLUE_IN)
    reward, terminated, info = _step(env)
    assert info["blocks_missorted"] == 1 and info["blocks_sorted"] == 0
    _place(env, red_0=RED_IN, blue_0=BLUE_IN)  # corrected: still not a success
    reward, terminated, info = _step(env)
    assert info["blocks_sorted"] == 2 and info["blocks_missorted"] == 0
    assert (reward, terminated, info["success"], info["behaviour"]) == (0.0, False, False, "other")


# --------------------------------------------------------------------- zone tolerance
@pytest.mark.parametrize(
    ("xy", "inside"),
    [
        ((0.5, ZONE_Y[0] + 0.001), True),
        ((0.5, ZONE_Y[0] - 0.001), False),
        ((0.5, ZONE_Y[1] - 0.001), True),
        ((0.5, ZONE_Y[1] + 0.001), False),
        ((ZONE_X[0] + 0.001, 0.26), True),
        ((ZONE_X[0] - 0.001, 0.26), False),
        ((ZONE_X[1] - 0.001, 0.26), True),
        ((ZONE_X[1] + 0.001, 0.26), False),
    ],
)
@pytest.mark.parametrize("colour", ["red", "blue"])
def test_a_block_counts_when_its_centre_is_inside_the_zone(
    xy: tuple[float, float], inside: bool, colour: str
) -> None:
    env = _make("polymimic/Sort2-v1")
    side = 1.0 if colour == "red" else -1.0
    # Yawed 40 degrees: only the centre counts, not the corners.
    _place(env, yaw=0.7, **{f"{colour}_0": (xy[0], side * xy[1])})
    _, _, info = _step(env)
    assert info["blocks_sorted"] == int(inside)


# --------------------------------------------------------------------- contexts
def test_context_tables_match_the_documentation() -> None:
    assert sort_contexts(2) == (
        ((1, 2), "BR"),
        ((1, 2), "RB"),
        ((3, 4), "BR"),
        ((3, 4), "RB"),
    )
    assert sort_contexts(4) == tuple(((1, 2, 3, 4), p) for p in Sort4Env.behaviours)
    assert sort_contexts(6) == tuple(((0, 1, 2, 3, 4, 5), p) for p in Sort6Env.behaviours)
    assert [c.num_contexts for c in (Sort2Env, Sort4Env, Sort6Env)] == [4, 6, 20]
    np.testing.assert_allclose(SLOT_X, 0.35 + 0.078 * np.arange(6), atol=1e-9)
    assert SLOT_Y == (0.07, -0.07, 0.07, -0.07, 0.07, -0.07)


@pytest.mark.parametrize("env_id", ["polymimic/Sort2-v1", "polymimic/Sort6-v1"])
def test_reset_places_each_colour_on_its_pattern_slots(env_id: str) -> None:
    env = _make(env_id)
    names = block_names(env.num_blocks)
    for context, (slots, pattern) in enumerate(sort_contexts(env.num_blocks)):
        for seed in range(3):
            obs, _ = env.reset(seed=seed, options={"context": context})
            blocks = np.vstack(
                [obs["red_blocks"].reshape(-1, 4), obs["blue_blocks"].reshape(-1, 4)]
            )
            for index, row in enumerate(blocks):
                colour = "R" if names[index].startswith("red") else "B"
                nth = int(names[index].split("_")[1])
                slot = [s for s, c in zip(slots, pattern, strict=True) if c == colour][nth]
                offset = row[:2] - (SLOT_X[slot], SLOT_Y[slot])
                assert np.all(np.abs(offset) <= BLOCK_JITTER + 1e-6), (context, index)
                # |4 yaw| <= 4 * 0.15 rad, so cos 4θ >= cos 0.6.
                assert row[3] >= math.cos(4 * YAW_JITTER) - 1e-6


def test_slots_leave_room_to_push_a_block_between_the_other_columns_blocks() -> None:
    # Worst case: both blocks at the maximal yaw and jittered towards each other in x.
    extent = BLOCK_HALF * (math.cos(YAW_JITTER) + math.sin(YAW_JITTER))
    gaps = np.diff(SLOT_X) - 2 * extent - 2 * BLOCK_JITTER
    assert gaps.min() > 0.005
    # Neighbouring slots are in different columns, same-column slots far apart.
    assert all(SLOT_Y[k] != SLOT_Y[k + 1] for k in range(5))


# --------------------------------------------------------------------- replay
def test_replay_restores_the_arrival_order() -> None:
    env = _make()
    _place(env, red_1=RED_IN)
    _step(env)
    _place(env, blue_0=BLUE_IN)
    _step(env)
    state = env.get_state()
    other = _make()
    other.reset(seed=5)
    other.reset_to(state)
    assert other.arrival_order() == "RB"
    _place(other, red_0=(0.66, 0.26), blue_1=(0.66, -0.26))
    _, terminated, info = _step(other)
    assert terminated and info["behaviour"] == "RBRB"


def test_observation_layout_and_yaw_encoding() -> None:
    env = _make("polymimic/Sort6-v1")
    assert env.observation_space["red_blocks"].shape == (12,)
    obs = _place(env, yaw=0.3, blue_2=(0.5, -0.1))
    x, y, sin4, cos4 = obs["blue_blocks"][8:12]
    assert (x, y) == pytest.approx((0.5, -0.1), abs=1e-6)
    assert (sin4, cos4) == pytest.approx((math.sin(1.2), math.cos(1.2)), abs=1e-5)
    # A quarter turn looks the same (a cube's faces are 4-fold symmetric).
    turned = _place(env, yaw=0.3 + math.pi / 2, blue_2=(0.5, -0.1))
    np.testing.assert_allclose(turned["blue_blocks"][8:12], obs["blue_blocks"][8:12], atol=1e-5)
