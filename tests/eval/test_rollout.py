"""The rollout function and the evaluation core, against a tiny env whose outcomes are known.

``LineEnv`` follows the polymimic env contract (Dict observations, ``info["success"]`` and
``info["behaviour"]`` every step, ``behaviours``, ``context``, termination on success, a
``TimeLimit``) without any physics, so every number below can be computed by hand:

- context 0: the goal is at x = -1, reached after 4 steps of 0.25 -> success, "left";
- context 1: the goal is at x = +1 -> success, "right";
- context 2: the goal is at x = +5, out of reach in 10 steps -> truncated, "other".

Reward is -0.1 per step plus 1 on success, so a success returns 0.6 and a failure -1.0.
"""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from polymimic.eval import rollout as ro
from polymimic.policies.base import Policy, PolicyConfig

ENV_ID = "polymimic_test/Line-v0"
MAX_STEPS = 10
GOALS = {0: -1.0, 1: 1.0, 2: 5.0}


class LineEnv(gym.Env):
    """A point on a line that must reach its context's goal."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    behaviours = ("left", "right")

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Dict(
            {
                "pos": gym.spaces.Box(-10, 10, (1,), np.float32),
                "goal": gym.spaces.Box(-10, 10, (1,), np.float32),
                "jitter": gym.spaces.Box(-1, 1, (2,), np.float32),
            }
        )
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.context = 0
        self._pos = 0.0

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "pos": np.array([self._pos], np.float32),
            "goal": np.array([GOALS[self.context]], np.float32),
            "jitter": self._jitter.copy(),
        }

    def _behaviour(self) -> str:
        if self._pos <= -1.0:
            return "left"
        if self._pos >= 1.0 and GOALS[self.context] == 1.0:
            return "right"
        return "other"

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        self.context = int(options.get("context", self.np_random.integers(3)))
        # Seed-dependent but outcome-irrelevant: makes the determinism test meaningful.
        self._jitter = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self._pos = 0.0
        return self._obs(), {"success": False, "behaviour": "other", "context": self.context}

    def step(self, action):
        self._pos += float(np.clip(action[0], -0.25, 0.25))
        success = abs(self._pos - GOALS[self.context]) < 1e-6
        reward = -0.1 + (1.0 if success else 0.0)
        info = {"success": success, "behaviour": self._behaviour() if success else "other"}
        return self._obs(), reward, success, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        frame = np.zeros((32, 48, 3), np.uint8)
        frame[:, int(np.clip(24 + 4 * self._pos, 0, 47))] = 255
        return frame


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=LineEnv, max_episode_steps=MAX_STEPS)


@dataclasses.dataclass
class GoalSeekerConfig:
    obs_keys: tuple[str, ...] = ("pos", "goal")


class GoalSeeker:
    """Deterministic policy: step 0.25 towards the goal; counts its resets."""

    def __init__(self) -> None:
        self.config = GoalSeekerConfig()
        self.resets = 0

    def reset(self, env_ids=None) -> None:
        self.resets += 1

    def predict_action(self, obs: np.ndarray) -> np.ndarray:
        pos, goal = obs[0]
        return np.array([[np.sign(goal - pos) * 0.25]], np.float32)


def outcome(context: int) -> tuple[bool, str, int, float]:
    """(success, behaviour, length, return) of GoalSeeker from a context, by hand."""
    if context == 2:
        return False, "other", MAX_STEPS, -0.1 * MAX_STEPS
    return True, ("left" if context == 0 else "right"), 4, 1.0 - 0.4


@pytest.fixture
def env():
    environment = gym.make(ENV_ID, render_mode="rgb_array")
    yield environment
    environment.close()


def test_rollout_records_seed_context_and_outcome(env):
    policy = GoalSeeker()
    act = ro.policy_act_fn(policy)
    for context in (0, 1, 2):
        record, frames = ro.rollout(env, act, seed=5, options={"context": context})
        success, behaviour, length, ret = outcome(context)
        assert record.seed == 5 and record.context == context
        assert (record.success, record.behaviour, record.length) == (success, behaviour, length)
        assert record.episode_return == pytest.approx(ret)
        # polymimic envs terminate on success; failures end by the time limit.
        assert record.terminated == success and record.truncated == (not success)
        assert frames is None


def test_rollout_records_frames_when_asked(env):
    act = ro.policy_act_fn(GoalSeeker())
    record, frames = ro.rollout(env, act, seed=0, options={"context": 1}, record_video=True)
    assert len(frames) == record.length + 1  # the reset frame plus one per step
    assert frames[0].shape == (32, 48, 3) and frames[0].dtype == np.uint8


def test_rollout_video_without_render_mode_fails_clearly():
    plain = gym.make(ENV_ID)
    with pytest.raises(ValueError, match="render_mode"):
        ro.rollout(plain, ro.policy_act_fn(GoalSeeker()), seed=0, record_video=True)


def test_evaluate_records_follow_seeds(tmp_path):
    policy = GoalSeeker()
    seeds = list(range(ro.FINAL_EVAL_SEED_START, ro.FINAL_EVAL_SEED_START + 12))
    info = ro.evaluate(ENV_ID, {}, policy, seeds, trusted_env=True)
    episodes = info["per_episode"]
    assert [e["seed"] for e in episodes] == seeds == info["seeds"]
    assert policy.resets == len(seeds)
    for episode in episodes:
        success, behaviour, length, ret = outcome(episode["context"])
        assert episode["success"] == success and episode["behaviour"] == behaviour
        assert episode["length"] == length and episode["return"] == pytest.approx(ret)


def test_evaluate_aggregates_match_hand_computation():
    seeds = range(ro.TRAIN_EVAL_SEED_START, ro.TRAIN_EVAL_SEED_START + 30)
    info = ro.evaluate(ENV_ID, None, GoalSeeker(), seeds, trusted_env=True)
    contexts = [e["context"] for e in info["per_episode"]]
    n_left, n_right, n_fail = (contexts.count(c) for c in (0, 1, 2))
    assert min(n_left, n_right, n_fail) > 0  # the seeds exercise every case
    n_success = n_left + n_right
    agg = info["aggregated"]
    assert agg["num_episodes"] == 30 and agg["num_successes"] == n_success
    assert agg["success_rate"] == pytest.approx(n_success / 30)
    lo, hi = agg["success_rate_ci95"]
    assert lo < n_success / 30 < hi
    assert agg["behaviour_counts"] == {"left": n_left, "right": n_right}
    assert agg["behaviour_distribution"] == pytest.approx(
        {"left": n_left / n_success, "right": n_right / n_success, "other": 0.0}
    )
    p = np.array([n_left, n_right]) / n_success
    assert agg["behaviour_entropy"] == pytest.approx(-(p * np.log2(p)).sum())
    assert agg["num_behaviours"] == 2
    # Each context always yields the same behaviour: no diversity given the start state.
    assert agg["conditional_behaviour_entropy"] == 0.0
    assert agg["mean_return"] == pytest.approx((0.6 * n_success - 1.0 * n_fail) / 30)
    assert agg["mean_length"] == pytest.approx((4 * n_success + MAX_STEPS * n_fail) / 30)
    assert agg["kl_to_reference"] is None


def test_aggregate_kl_to_reference_and_other_successes():
    records = [
        ro.EpisodeRecord(0, 0, True, "left", 1.0, 3, True, False),
        ro.EpisodeRecord(1, 0, True, "left", 1.0, 3, True, False),
        ro.EpisodeRecord(2, 1, True, "other", 1.0, 3, True, False),
        ro.EpisodeRecord(3, 1, False, "other", 0.0, 9, False, True),
    ]
    agg = ro.aggregate(
        records, ["left", "right"], reference_distribution={"left": 0.5, "right": 0.5}
    )
    assert agg["behaviour_distribution"] == pytest.approx(
        {"left": 2 / 3, "right": 0.0, "other": 1 / 3}
    )
    # "other" is outside the task's behaviours: entropy sees only the two "left" successes.
    assert agg["behaviour_entropy"] == 0.0
    expected_kl = 2 / 3 * np.log((2 / 3) / 0.5) + 1 / 3 * np.log((1 / 3) / 1e-12)
    assert agg["kl_to_reference"] == pytest.approx(expected_kl)


def test_eval_info_json_is_valid_with_documented_keys(tmp_path):
    info = ro.evaluate(ENV_ID, {}, GoalSeeker(), range(3), trusted_env=True)
    path = tmp_path / "out" / "eval_info.json"
    ro.write_eval_info(path, info)
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(json.dumps(info))
    assert set(loaded) == {
        "format_version", "env", "policy", "seeds", "per_episode", "aggregated", "video",
        "versions",
    }  # fmt: skip
    assert set(loaded["versions"]) >= {
        "python", "numpy", "torch", "mujoco", "gymnasium", "polymimic",
    }  # fmt: skip
    assert loaded["versions"]["numpy"] == np.__version__
    assert loaded["env"]["id"] == ENV_ID and loaded["env"]["behaviours"] == ["left", "right"]
    assert loaded["env"]["max_episode_steps"] == MAX_STEPS
    assert loaded["policy"]["config"] == {"obs_keys": ["pos", "goal"]}
    assert set(loaded["per_episode"][0]) == {
        "seed", "context", "success", "behaviour", "return", "length", "terminated", "truncated",
        "invalid_action",
    }  # fmt: skip
    assert [ro.EpisodeRecord.from_dict(e).to_dict() for e in loaded["per_episode"]] == (
        loaded["per_episode"]
    )
    assert [p.name for p in path.parent.iterdir()] == ["eval_info.json"]  # no temp file left


def test_write_eval_info_replaces_and_rejects_unserialisable(tmp_path):
    path = tmp_path / "eval_info.json"
    ro.write_eval_info(path, {"a": np.float32(0.5), "b": np.arange(2)})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1]}
    with pytest.raises(TypeError):
        ro.write_eval_info(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1]}  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["eval_info.json"]


def test_evaluate_writes_readable_mp4(tmp_path):
    video = tmp_path / "videos" / "eval.mp4"
    info = ro.evaluate(
        ENV_ID, {}, GoalSeeker(), range(5), video_path=video, max_video_episodes=2,
        trusted_env=True,
    )
    assert info["video"] == str(video)
    expected = sum(e["length"] + 1 for e in info["per_episode"][:2])
    with imageio.get_reader(video) as reader:
        # Iterate rather than list(): the ffmpeg reader reports an infinite length.
        frames = [frame for frame in reader]
        fps = reader.get_meta_data()["fps"]
    assert fps == pytest.approx(LineEnv.metadata["render_fps"])
    assert len(frames) == expected
    assert frames[0].shape == (32, 48, 3)


def test_evaluate_is_deterministic():
    seeds = range(100, 120)
    first = ro.evaluate(ENV_ID, {}, GoalSeeker(), seeds, trusted_env=True)
    second = ro.evaluate(ENV_ID, {}, GoalSeeker(), seeds, trusted_env=True)
    assert first["per_episode"] == second["per_episode"]
    assert first["aggregated"] == second["aggregated"]
    other = ro.evaluate(ENV_ID, {}, GoalSeeker(), range(200, 220), trusted_env=True)
    assert [e["context"] for e in other["per_episode"]] != [
        e["context"] for e in first["per_episode"]
    ]


class NoisyPolicy(Policy):
    """A torch learner with dropout whose action is torch-random: eval mode and seeding matter."""

    name = "test_noisy"

    def __init__(self) -> None:
        super().__init__(PolicyConfig(obs_keys=("pos", "goal"), obs_dim=2, action_dim=1))
        self.dropout = torch.nn.Dropout(0.5)
        self.seen_training: list[bool] = []

    @torch.no_grad()
    def predict_action(self, obs: np.ndarray, generators=None) -> np.ndarray:
        self.seen_training.append(self.training)
        pos, goal = obs[0]
        step = 0.25 if torch.rand(()) < 0.7 else -0.25
        return np.array([[np.sign(goal - pos) * step]], np.float32)


def test_evaluate_uses_eval_mode_seeds_torch_and_restores_caller_state():
    policy = NoisyPolicy()
    policy.train()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = ro.evaluate(ENV_ID, {}, policy, range(10), trusted_env=True)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched
    assert policy.training and not any(policy.seen_training)
    second = ro.evaluate(ENV_ID, {}, policy, range(10), trusted_env=True)
    assert first["per_episode"] == second["per_episode"]
    assert first["policy"]["name"] == "test_noisy"


def test_evaluate_rejects_empty_seeds():
    with pytest.raises(ValueError, match="seed"):
        ro.evaluate(ENV_ID, {}, GoalSeeker(), [], trusted_env=True)


def test_seed_ranges_are_disjoint_from_dataset_seeds():
    assert 0 < ro.TRAIN_EVAL_SEED_START < ro.FINAL_EVAL_SEED_START
