"""Seed-mode evaluation (``evaluate``) and the aggregation, against a tiny env whose outcomes
are known.

``LineEnv`` follows the polymimic env contract (Dict observations, ``info["success"]`` and
``info["behaviour"]`` every step, ``behaviours``, ``context``, termination on success, a
``TimeLimit``) without any physics, so every number below can be computed by hand:

- context 0: the goal is at x = -1, reached after 4 steps of 0.25 -> success, "left";
- context 1: the goal is at x = +1 -> success, "right";
- context 2: the goal is at x = +5, out of reach in 10 steps -> truncated, "other".

Reward is -0.1 per step plus 1 on success, so a success returns 0.6 and a failure -1.0.
The context is drawn from the reset seed (the vector env passes no reset options), so each
episode's ``env_context`` follows from its seed. The env is registered here, so only
``trusted_env=True`` with one worker can make it (spawned workers would not see it).
"""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from eval_policies import AGGREGATED_KEYS
from polymimic.errors import UserError
from polymimic.eval import rollout as ro
from polymimic.eval.aggregate import aggregate
from polymimic.eval.protocol import SPLIT_SEED_START
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
    """Deterministic policy: step 0.25 towards the goal; records its resets."""

    def __init__(self) -> None:
        self.config = GoalSeekerConfig()
        self.resets: list[list[int] | None] = []

    def reset(self, env_ids=None) -> None:
        self.resets.append(None if env_ids is None else list(env_ids))

    def predict_action(self, obs: np.ndarray, generators=None, row_by_row=False) -> np.ndarray:
        pos, goal = obs[:, 0], obs[:, 1]
        return (np.sign(goal - pos) * 0.25)[:, None].astype(np.float32)


def outcome(context: int) -> tuple[bool, str, int, float]:
    """(success, behaviour, length, return) of GoalSeeker from a context, by hand."""
    if context == 2:
        return False, "other", MAX_STEPS, -0.1 * MAX_STEPS
    return True, ("left" if context == 0 else "right"), 4, 1.0 - 0.4


def line_context(seed: int) -> int:
    """The context LineEnv draws from a reset seed."""
    env = gym.make(ENV_ID)
    try:
        env.reset(seed=seed)
        return env.unwrapped.context
    finally:
        env.close()


def test_evaluate_records_follow_seeds_with_hand_computed_outcomes():
    policy = GoalSeeker()
    seeds = list(range(ro.FINAL_EVAL_SEED_START, ro.FINAL_EVAL_SEED_START + 12))
    info = ro.evaluate(ENV_ID, {}, policy, seeds, trusted_env=True)
    episodes = info["per_episode"]
    assert [e["seed"] for e in episodes] == seeds == info["seeds"]
    assert info["protocol"] is None and info["settings"]["workers"] == 1
    # One worker: every reset names slot 0 only, at least once per episode.
    assert len(policy.resets) >= len(seeds) and all(r == [0] for r in policy.resets)
    assert {e["env_context"] for e in episodes} == {0, 1, 2}  # the seeds exercise every case
    for episode in episodes:
        assert episode["context"] is None and episode["rollout"] is None  # seed mode
        assert episode["env_context"] == line_context(episode["seed"])
        success, behaviour, length, ret = outcome(episode["env_context"])
        assert episode["success"] == success and episode["behaviour"] == behaviour
        assert episode["length"] == length and episode["return"] == pytest.approx(ret)
        # polymimic envs terminate on success; failures end by the time limit.
        assert episode["terminated"] == success and episode["truncated"] == (not success)
        assert episode["invalid_action"] is False


def test_evaluate_aggregates_match_hand_computation():
    seeds = range(ro.TRAIN_EVAL_SEED_START, ro.TRAIN_EVAL_SEED_START + 30)
    info = ro.evaluate(ENV_ID, None, GoalSeeker(), seeds, trusted_env=True)
    contexts = [e["env_context"] for e in info["per_episode"]]
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
    lo, hi = agg["behaviour_entropy_ci95"]
    assert 0.0 <= lo <= hi <= 1.0
    assert agg["num_behaviours"] == 2
    # Seed mode groups by env_context; each one always yields the same behaviour.
    assert agg["conditional_behaviour_entropy"] == 0.0
    assert agg["mean_return"] == pytest.approx((0.6 * n_success - 1.0 * n_fail) / 30)
    assert agg["mean_length"] == pytest.approx((4 * n_success + MAX_STEPS * n_fail) / 30)
    assert agg["kl_to_reference"] is None
    assert agg["d3il_score"] is None  # not a D3IL task
    assert agg["num_invalid_action_episodes"] == 0
    assert agg["design_effect"] == 1.0  # seed mode: independent episodes


def record(
    success: bool, behaviour: str, context: int | None = None, env_context: int | None = 0,
    length: int = 3,
) -> ro.EpisodeRecord:
    return ro.EpisodeRecord(
        context=context, rollout=None if context is None else 0, env_context=env_context,
        seed=0, success=success, behaviour=behaviour, episode_return=float(success),
        length=length, terminated=success, truncated=not success,
    )


def test_aggregate_kl_to_reference_and_other_successes():
    records = [
        record(True, "left", env_context=0),
        record(True, "left", env_context=0),
        record(True, "other", env_context=1),
        record(False, "other", env_context=1, length=9),
    ]
    agg = aggregate(records, ["left", "right"], reference_distribution={"left": 0.5, "right": 0.5})
    assert agg["behaviour_distribution"] == pytest.approx(
        {"left": 2 / 3, "right": 0.0, "other": 1 / 3}
    )
    assert agg["behaviour_counts"] == {"left": 2, "other": 1}
    # Two in-task successes are fewer than max(MIN_SUCCESSES_FOR_ENTROPY, |B|): n/a.
    assert agg["behaviour_entropy"] is None and agg["conditional_behaviour_entropy"] is None
    expected_kl = 2 / 3 * np.log((2 / 3) / 0.5) + 1 / 3 * np.log((1 / 3) / 1e-12)
    assert agg["kl_to_reference"] == pytest.approx(expected_kl)
    assert agg["mean_length"] == pytest.approx((3 + 3 + 3 + 9) / 4)


def test_aggregate_other_successes_stay_out_of_the_entropies():
    records = [record(True, "left")] * 5 + [record(True, "other")] * 3
    agg = aggregate(records, ["left", "right"])
    assert agg["num_successes"] == 8 and agg["behaviour_counts"] == {"left": 5, "other": 3}
    assert agg["behaviour_entropy"] == 0.0  # five "left", the "other"s do not count


def test_aggregate_conditional_entropy_groups_by_context_or_env_context():
    # (protocol context, env_context, behaviour or None for a failure), by hand:
    rows = [(0, 7, "left"), (0, 7, "left"), (1, 7, "right"), (1, 7, "right"),
            (2, 8, "left"), (2, 8, "left"), (3, 9, None)]  # fmt: skip
    records = [record(b is not None, b or "other", context=c, env_context=e) for c, e, b in rows]
    # Protocol mode: every context holds one behaviour only -> 0; over S = 5 contexts the
    # unplayed context 4 counts 0 too.
    agg = aggregate(records, ["left", "right"], contexts=range(5))
    assert agg["conditional_behaviour_entropy"] == 0.0
    # Seed mode groups by env_context: 7 -> {l, l, r, r} (1.0), 8 -> {l, l} (0), 9 -> none (0).
    seed_mode = [dataclasses.replace(r, context=None, rollout=None) for r in records]
    agg = aggregate(seed_mode, ["left", "right"])
    assert agg["conditional_behaviour_entropy"] == pytest.approx(1 / 3)
    p = np.array([4, 2]) / 6
    assert agg["behaviour_entropy"] == pytest.approx(-(p * np.log2(p)).sum())
    lo, hi = agg["conditional_behaviour_entropy_ci95"]
    assert 0.0 <= lo <= hi <= 1.0
    # Protocol mode, diversity within a context: c0 {l, r} (1), c1 {l, r, r, l} (1), c2 and
    # c3 without successes (0) -> 2 / 4.
    rows = [(0, "left"), (0, "right"), (1, "left"), (1, "right"), (1, "right"), (1, "left"),
            (2, None)]  # fmt: skip
    records = [record(b is not None, b or "other", context=c) for c, b in rows]
    agg = aggregate(records, ["left", "right"], contexts=[0, 1, 2, 3])
    assert agg["conditional_behaviour_entropy"] == pytest.approx(0.5)


def test_aggregate_rejects_no_episodes():
    with pytest.raises(ValueError):
        aggregate([], ["left", "right"])


def test_eval_info_json_is_valid_with_documented_keys(tmp_path):
    info = ro.evaluate(ENV_ID, {}, GoalSeeker(), range(3), trusted_env=True)
    path = tmp_path / "out" / "eval_info.json"
    ro.write_eval_info(path, info)
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(json.dumps(info))
    assert set(loaded) == {
        "format_version", "protocol", "env", "policy", "settings", "seeds", "per_episode",
        "aggregated", "reference", "video", "video_error", "wall_s", "versions",
    }  # fmt: skip
    assert loaded["format_version"] == ro.EVAL_INFO_FORMAT_VERSION == 2
    assert loaded["protocol"] is None and loaded["reference"] is None
    assert loaded["video"] is None and loaded["video_error"] is None
    assert loaded["wall_s"] > 0
    assert set(loaded["versions"]) >= {
        "python", "numpy", "torch", "mujoco", "gymnasium", "polymimic", "git_commit",
    }  # fmt: skip
    assert loaded["versions"]["numpy"] == np.__version__
    assert set(loaded["env"]) == {"id", "kwargs", "behaviours", "max_episode_steps", "render_fps"}
    assert loaded["env"]["id"] == ENV_ID and loaded["env"]["behaviours"] == ["left", "right"]
    assert loaded["env"]["max_episode_steps"] == MAX_STEPS and loaded["env"]["kwargs"] == {}
    assert set(loaded["policy"]) == {"name", "class", "config"}
    assert loaded["policy"]["config"] == {"obs_keys": ["pos", "goal"]}
    assert loaded["policy"]["name"] == "GoalSeeker"
    assert loaded["settings"] == {"workers": 1, "inference": "row_by_row", "video_episodes": 0}
    assert set(loaded["per_episode"][0]) == {
        "context", "rollout", "env_context", "seed", "success", "behaviour", "return", "length",
        "terminated", "truncated", "invalid_action",
    }  # fmt: skip
    assert set(loaded["aggregated"]) >= AGGREGATED_KEYS
    assert [ro.EpisodeRecord.from_dict(e).to_dict() for e in loaded["per_episode"]] == (
        loaded["per_episode"]
    )
    assert [p.name for p in path.parent.iterdir()] == ["eval_info.json"]  # no temp file left


def test_evaluate_with_a_reference_distribution_reports_kl():
    reference = {"left": 0.5, "right": 0.5}
    info = ro.evaluate(ENV_ID, {}, GoalSeeker(), range(20), trusted_env=True,
                       reference_distribution=reference)
    assert info["reference"]["distribution"] == reference
    assert info["aggregated"]["kl_to_reference"] is not None


def test_write_eval_info_replaces_and_rejects_unserialisable(tmp_path):
    path = tmp_path / "eval_info.json"
    ro.write_eval_info(path, {"a": np.float32(0.5), "b": np.arange(2)})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1]}
    with pytest.raises(TypeError):
        ro.write_eval_info(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1]}  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["eval_info.json"]


def test_evaluate_writes_readable_mp4_grid(tmp_path):
    video = tmp_path / "videos" / "eval.mp4"
    # No render_mode in the kwargs: asking for a video sets rgb_array itself.
    info = ro.evaluate(
        ENV_ID, {}, GoalSeeker(), range(5), video_path=video, max_video_episodes=2,
        trusted_env=True,
    )
    assert info["video"] == str(video) and info["video_error"] is None
    assert info["settings"]["video_episodes"] == 2
    assert info["env"]["kwargs"] == {}  # the render mode it added is not recorded as asked
    # Two episodes side by side, each holding its last frame once it has ended: as many
    # frames as the longer episode has (its reset frame plus one per step).
    expected = max(e["length"] + 1 for e in info["per_episode"][:2])
    with imageio.get_reader(video) as reader:
        # Iterate rather than list(): the ffmpeg reader reports an infinite length.
        frames = [frame for frame in reader]
        fps = reader.get_meta_data()["fps"]
    assert fps == pytest.approx(LineEnv.metadata["render_fps"])
    assert len(frames) == expected
    assert frames[0].shape == (32, 2 * 48, 3)


def test_tile_frames_lays_episodes_out_in_a_grid():
    a = [np.full((2, 3, 3), 10, np.uint8)] * 2
    b = [np.full((2, 3, 3), 20, np.uint8)] * 3
    c = [np.full((2, 3, 3), 30, np.uint8)]
    grid = list(ro.tile_frames([a, b, c]))
    assert len(grid) == 3 and grid[0].shape == (4, 6, 3)  # 2 x 2 cells, one left empty
    last = grid[-1]
    assert (last[:2, :3] == 10).all() and (last[:2, 3:] == 20).all()  # held last frames
    assert (last[2:, :3] == 30).all() and (last[2:, 3:] == 0).all()


def test_evaluate_is_deterministic():
    seeds = range(100, 120)
    first = ro.evaluate(ENV_ID, {}, GoalSeeker(), seeds, trusted_env=True)
    second = ro.evaluate(ENV_ID, {}, GoalSeeker(), seeds, trusted_env=True)
    assert first["per_episode"] == second["per_episode"]
    assert first["aggregated"] == second["aggregated"]
    other = ro.evaluate(ENV_ID, {}, GoalSeeker(), range(200, 220), trusted_env=True)
    assert [e["env_context"] for e in other["per_episode"]] != [
        e["env_context"] for e in first["per_episode"]
    ]


class NoisyPolicy(Policy):
    """A torch learner with dropout whose action is random: eval mode and seeding matter.

    It draws from the per-environment generators evaluation passes (the contract), and
    records the training flag and whether it got generators on every call.
    """

    name = "test_noisy"

    def __init__(self) -> None:
        super().__init__(PolicyConfig(obs_keys=("pos", "goal"), obs_dim=2, action_dim=1))
        self.dropout = torch.nn.Dropout(0.5)
        self.seen_training: list[bool] = []
        self.seen_generators: list[bool] = []

    @torch.no_grad()
    def predict_action(self, obs: np.ndarray, generators=None, row_by_row=False) -> np.ndarray:
        self.seen_training.append(self.training)
        self.seen_generators.append(generators is not None and len(generators) == len(obs))
        actions = []
        for i, (pos, goal) in enumerate(obs):
            generator = None if generators is None else generators[i]
            step = 0.25 if torch.rand((), generator=generator) < 0.7 else -0.25
            actions.append([np.sign(goal - pos) * step])
        return np.array(actions, np.float32)


def test_evaluate_uses_eval_mode_and_generators_and_restores_caller_state():
    policy = NoisyPolicy()
    policy.train()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = ro.evaluate(ENV_ID, {}, policy, range(10), trusted_env=True)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched
    assert policy.training and not any(policy.seen_training)
    assert policy.seen_generators and all(policy.seen_generators)
    second = ro.evaluate(ENV_ID, {}, policy, range(10), trusted_env=True)
    assert first["per_episode"] == second["per_episode"]
    assert first["policy"]["name"] == "test_noisy"
    assert first["policy"]["class"].endswith("NoisyPolicy")
    # The noise does change outcomes (some episodes wander), so seeding is what made the
    # two runs equal.
    assert {e["length"] for e in first["per_episode"]} - {4, MAX_STEPS}


def test_an_episodes_randomness_depends_only_on_its_own_seed():
    """Each episode's generator is seeded from its seed: reordering the seeds reorders the
    episodes and changes nothing else."""
    seeds = list(range(30, 40))
    forward = ro.evaluate(ENV_ID, {}, NoisyPolicy(), seeds, trusted_env=True)
    backward = ro.evaluate(ENV_ID, {}, NoisyPolicy(), seeds[::-1], trusted_env=True)
    assert backward["per_episode"][::-1] == forward["per_episode"]


def test_evaluate_rejects_empty_seeds():
    with pytest.raises(ValueError, match="seed"):
        ro.evaluate(ENV_ID, {}, GoalSeeker(), [], trusted_env=True)


def test_evaluate_rejects_a_policy_that_does_not_fit_the_env():
    policy = GoalSeeker()
    policy.config = GoalSeekerConfig(obs_keys=("pos", "nope"))
    with pytest.raises(UserError, match="nope"):
        ro.evaluate(ENV_ID, {}, policy, [0], trusted_env=True)


def test_seed_ranges_are_disjoint_from_dataset_seeds():
    from polymimic.datasets.spec import MAX_DATASET_SEEDS

    assert MAX_DATASET_SEEDS <= ro.TRAIN_EVAL_SEED_START < ro.FINAL_EVAL_SEED_START
    assert ro.FINAL_EVAL_SEED_START < min(SPLIT_SEED_START.values())
