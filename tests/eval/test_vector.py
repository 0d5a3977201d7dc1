"""The one rollout loop (``eval.vector``) on the real ``polymimic/Push-v1``.

Results must not depend on the worker count, an episode must start from exactly the state
it was given, a NaN action must end only its own episode, and the video grid must show the
recorded episodes. Small custom protocols keep it fast; only the serial/vectorised test
spawns workers (each spawn costs seconds of start-up on a small machine).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

import polymimic  # noqa: F401  (registers the tasks)
from eval_policies import Recorder, expert, untrained_bc
from polymimic.datasets.obs import flatten_obs
from polymimic.eval.protocol import SPLIT_SEED_START, load_contexts, protocol
from polymimic.eval.rollout import evaluate_protocol
from polymimic.eval.vector import EpisodeSpec, make_vector_env, run_episodes

PUSH = "polymimic/Push-v1"
SHORT = {"max_episode_steps": 40}  # an untrained policy never succeeds: cap its episodes


@pytest.fixture(scope="module")
def push_env() -> Any:
    env = gym.make(PUSH)
    yield env
    env.close()


class NanEveryOtherEpisode(Recorder):
    """Emits NaN at step ``at`` of every odd-numbered episode (one worker)."""

    def __init__(self, policy: Any, at: int) -> None:
        super().__init__(policy)
        self.at = at

    def predict_action(self, obs: np.ndarray, generators=None, row_by_row=False) -> np.ndarray:
        actions = super().predict_action(obs, generators, row_by_row)
        index = len(self.episodes) - 1  # the episode slot 0 plays now
        if index % 2 == 1 and len(self.episodes[index]) == self.at + 1:
            actions = np.full_like(actions, np.nan)
        return actions


@pytest.mark.parametrize("which", ["expert", "bc"])
def test_serial_and_vectorised_evaluations_are_identical(push_env: Any, which: str) -> None:
    """1 worker (Sync) and 2 workers (Async, spawn) give the same episodes, in order."""
    small = protocol(PUSH, "cpu", 3, 2)
    policy, kwargs = (expert(push_env), {}) if which == "expert" else (untrained_bc(push_env), SHORT)
    serial = evaluate_protocol(kwargs, policy, small, workers=1)
    vectorised = evaluate_protocol(kwargs, policy, small, workers=2)
    assert serial["settings"]["workers"] == 1 and vectorised["settings"]["workers"] == 2
    assert vectorised["per_episode"] == serial["per_episode"]
    assert vectorised["aggregated"] == serial["aggregated"]
    episodes = serial["per_episode"]
    assert [(e["context"], e["rollout"]) for e in episodes] == [
        (c, r) for c in range(3) for r in range(2)
    ]
    if which == "expert":  # successes end early, at different steps: slots are reused unevenly
        assert all(e["success"] and e["terminated"] for e in episodes)
        assert len({e["length"] for e in episodes}) > 1
        assert max(e["length"] for e in episodes) < push_env.spec.max_episode_steps
    else:
        assert all(e["truncated"] and e["length"] == 40 for e in episodes)


def test_an_episode_starts_from_its_initial_state_not_its_seed(push_env: Any) -> None:
    states, _ = load_contexts(protocol(PUSH, "cpu", 2, 1), push_env.unwrapped.state_size)
    seed = SPLIT_SEED_START["test"]
    recorder = Recorder(untrained_bc(push_env))
    vec = make_vector_env(PUSH, {"max_episode_steps": 3}, slots=1)
    try:
        outcomes = run_episodes(vec, recorder, [
            EpisodeSpec(seed=seed, initial_state=states[1], context=1, rollout=0),
            EpisodeSpec(seed=seed),  # the seed alone decides
            EpisodeSpec(seed=seed + 7, initial_state=states[1], context=1, rollout=1),
        ])  # fmt: skip
    finally:
        vec.close()
    keys = recorder.config.obs_keys
    from_state = flatten_obs(push_env.unwrapped.reset_to(states[1]), keys).astype(np.float32)
    state_context = push_env.unwrapped.context
    from_seed = flatten_obs(push_env.reset(seed=seed)[0], keys).astype(np.float32)
    seed_context = push_env.unwrapped.context
    assert not np.array_equal(from_state, from_seed)
    first = [episode[0] for episode in recorder.played()]
    assert len(first) == 3 and [o.length for o in outcomes] == [3, 3, 3]
    # Whatever the seed and whatever the slot played before, the state decides.
    np.testing.assert_array_equal(first[0], from_state)
    np.testing.assert_array_equal(first[1], from_seed)
    np.testing.assert_array_equal(first[2], from_state)
    assert [o.env_context for o in outcomes] == [state_context, seed_context, state_context]
    assert [(o.spec.context, o.spec.rollout) for o in outcomes] == [(1, 0), (None, None), (1, 1)]


def test_nan_actions_fail_their_own_episodes_only(push_env: Any) -> None:
    small = protocol(PUSH, "cpu", 2, 2)
    policy = NanEveryOtherEpisode(untrained_bc(push_env), at=3)
    info = evaluate_protocol(SHORT, policy, small, workers=1)
    episodes = info["per_episode"]
    assert [e["invalid_action"] for e in episodes] == [False, True, False, True]
    for episode in episodes:
        if episode["invalid_action"]:
            # Three steps were taken; the NaN ended the episode before reaching the env.
            assert episode["length"] == 3 and not episode["success"]
            assert not episode["terminated"] and not episode["truncated"]
        else:
            assert episode["length"] == 40 and episode["truncated"]
    assert info["aggregated"]["num_invalid_action_episodes"] == 2
    assert info["aggregated"]["num_episodes"] == 4 and info["aggregated"]["success_rate"] == 0.0


def test_video_is_a_grid_of_one_rollout_per_context_first(push_env: Any, tmp_path: Any) -> None:
    small = protocol(PUSH, "cpu", 3, 2)
    kwargs = {"render_height": 48, "render_width": 64}
    video = tmp_path / "rollouts.mp4"
    info = evaluate_protocol(kwargs, expert(push_env), small, video_path=video,
                             max_video_episodes=4)  # fmt: skip
    assert info["video"] == str(video) and info["video_error"] is None
    assert info["settings"]["video_episodes"] == 4
    assert info["env"]["kwargs"] == kwargs
    frames = list(iio.imiter(video))
    assert frames[0].shape == (2 * 48, 2 * 64, 3)  # a 2 x 2 grid of the render size
    # Shown: rollout 0 of each of the 3 contexts, then rollout 1 of context 0 (episodes are
    # listed context by context: indices 0, 2, 4 and 1). Each cell holds its episode's last
    # frame once it ends: the longest episode decides the length.
    shown = [info["per_episode"][i] for i in (0, 1, 2, 4)]
    assert {(e["context"], e["rollout"]) for e in shown} == {(0, 0), (0, 1), (1, 0), (2, 0)}
    assert len(frames) == max(e["length"] for e in shown) + 1
    assert [p.name for p in tmp_path.iterdir()] == ["rollouts.mp4"]  # no temp file left


def test_an_unwritable_video_path_keeps_the_evaluation(push_env: Any, tmp_path: Any) -> None:
    in_the_way = tmp_path / "rollouts.mp4"
    in_the_way.mkdir()  # a directory where the video should go
    small = protocol(PUSH, "cpu", 1, 2)
    info = evaluate_protocol(SHORT, untrained_bc(push_env), small, video_path=in_the_way,
                             max_video_episodes=1)  # fmt: skip
    assert info["video"] is None
    assert info["video_error"] and "rollouts.mp4" in info["video_error"]
    assert len(info["per_episode"]) == 2 and info["aggregated"]["num_episodes"] == 2
    assert in_the_way.is_dir() and list(in_the_way.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["rollouts.mp4"]  # no temp file left
