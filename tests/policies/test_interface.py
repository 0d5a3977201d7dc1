"""The learner interface and the one loop: several optimisers, schedules, the step hook,
declared batches, normalisation modes, batched inference with per-environment queues."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from demo_files import write_demo_file
from polymimic.datasets.windows import BatchSpec, WindowDataset
from polymimic.policies import registered_policies
from polymimic.policies.base import Policy, PolicyConfig, policy_class, register_policy
from polymimic.policies.checkpoint import load_checkpoint, save_checkpoint
from polymimic.policies.normalize import Normalizer
from polymimic.policies.optim import OptimizerSpec, adamw_with_schedule
from polymimic.policies.train import TrainConfig, train


@dataclasses.dataclass
class TwoHeadConfig(PolicyConfig):
    ema_decay: float = 0.9  # EMA of the actor's weights, updated in on_step_end


@register_policy
class TwoHeadPolicy(Policy):
    """An actor-critic-shaped learner: a critic stepped every step with a cosine schedule,
    an actor every second step, an EMA of the actor and a hook counter in buffers."""

    name = "test_two_head"
    config_class = TwoHeadConfig

    def __init__(self, config: TwoHeadConfig) -> None:
        super().__init__(config)
        self.actor = nn.Sequential(nn.Linear(config.obs_dim, 16), nn.ReLU(), nn.Linear(16, config.action_dim))
        self.critic = nn.Sequential(
            nn.Linear(config.obs_dim + config.action_dim, 16), nn.ReLU(), nn.Linear(16, 1)
        )
        self.register_buffer("ema", torch.cat([p.detach().flatten() for p in self.actor.parameters()]))
        self.register_buffer("hook_calls", torch.zeros((), dtype=torch.int64))

    def batch_spec(self) -> BatchSpec:
        return BatchSpec({"obs": (0,), "actions": (0,), "rewards": (0,), "next_obs": (0,)})

    def configure_optimizers(self, num_training_steps: int) -> list[OptimizerSpec]:
        critic = adamw_with_schedule(
            "critic", self.critic.parameters(), 3e-3, 0.0, "cosine", 3, num_training_steps
        )
        actor = OptimizerSpec("actor", torch.optim.Adam(self.actor.parameters(), lr=1e-3), every=2)
        return [critic, actor]

    def compute_loss(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, torch.Tensor]:
        obs = self.normalize_obs(batch["obs"][:, 0])
        action = self.normalize_action(batch["actions"][:, 0])
        if optimizer == "critic":
            q = self.critic(torch.cat([obs, action], -1))[:, 0]
            return {"loss": ((q - batch["rewards"][:, 0]) ** 2).mean()}
        q = self.critic(torch.cat([obs, self.actor(obs)], -1))
        return {"loss": -q.mean() + 0.1 * ((self.actor(obs) - action) ** 2).mean()}

    def on_step_end(self, step: int) -> None:
        flat = torch.cat([p.detach().flatten() for p in self.actor.parameters()])
        self.ema.mul_(self.config.ema_decay).add_(flat, alpha=1 - self.config.ema_decay)
        self.hook_calls += 1

    def predict_chunk(self, obs_window, generators):
        return self.unnormalize_action(self.actor(self.normalize_obs(obs_window[:, -1])))[:, None]


@dataclasses.dataclass
class ChunkConfig(PolicyConfig):
    pass


@register_policy
class ChunkPolicy(Policy):
    """Predicts a chunk of 3 actions, action k = k + the window's last observation sum, plus
    a noise draw from the environment's generator when one is given."""

    name = "test_chunk"
    config_class = ChunkConfig

    def __init__(self, config: ChunkConfig) -> None:
        super().__init__(config)
        self.calls: list[int] = []  # batch sizes predict_chunk was called with

    def predict_chunk(
        self, obs_window: torch.Tensor, generators: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        self.calls.append(len(obs_window))
        base = obs_window.sum(dim=(1, 2))[:, None] + torch.arange(3.0)[None]
        if generators is not None:
            base = base + torch.stack([torch.rand((), generator=g) for g in generators])[:, None]
        return base[..., None].expand(-1, -1, self.config.action_dim)


@pytest.fixture(scope="module")
def rl_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    demos = {}
    for i in range(3):
        obs = rng.normal(size=(15, 3))
        demos[f"demo_{i}"] = {
            "obs/x": obs, "actions": rng.normal(size=(15, 2)), "rewards": obs[:, 0] ** 2,
        }  # fmt: skip
    return write_demo_file(tmp_path_factory.mktemp("rl") / "rl.hdf5", demos, {"train": list(demos)})


class Interrupted(Exception):
    pass


class CrashingDataset:
    """Serves ``dataset``'s batches, then raises while fetching batch ``crash_at``."""

    def __init__(self, dataset: WindowDataset, crash_at: int) -> None:
        self.dataset, self.crash_at, self.fetched = dataset, crash_at, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def get_batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        self.fetched += 1
        if self.fetched == self.crash_at:
            raise Interrupted
        return self.dataset.get_batch(indices)


def make_two_head(dataset: WindowDataset) -> TwoHeadPolicy:
    torch.manual_seed(0)
    policy = TwoHeadPolicy(TwoHeadConfig(obs_keys=("x",), obs_dim=3, action_dim=2))
    policy.set_normalization(dataset.stats())
    return policy


def config(**overrides: object) -> TrainConfig:
    values = dict(batch_size=8, log_every=1, save_every=5, progress_bar=False, device="cpu")
    return TrainConfig(**{**values, **overrides})


def state(policy: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


def test_two_optimisers_schedule_and_ema_resume_exactly(rl_file: Path, tmp_path: Path) -> None:
    probe = make_two_head(WindowDataset(rl_file, ("x",), filter_key=None))
    dataset = WindowDataset(rl_file, ("x",), filter_key=None, spec=probe.batch_spec())
    straight = make_two_head(dataset)
    train(straight, dataset, config(num_steps=12), tmp_path / "straight")
    interrupted = make_two_head(dataset)
    with pytest.raises(Interrupted):  # killed during step 7; the last checkpoint is step 5
        train(interrupted, CrashingDataset(dataset, 7), config(num_steps=12), tmp_path / "resumed")
    fresh = make_two_head(dataset)  # a new process would start from fresh weights
    train(fresh, dataset, config(num_steps=12, resume=True), tmp_path / "resumed")
    for key, value in state(straight).items():
        torch.testing.assert_close(state(fresh)[key], value, rtol=0, atol=0, msg=key)
    assert int(fresh.hook_calls) == 12  # once per step, and its count survived the resume
    logs = [
        [json.loads(line) for line in (tmp_path / run / "train_log.jsonl").read_text().splitlines()]
        for run in ("straight", "resumed")
    ]
    timing = ("steps_per_s", "train_wall_s")  # wall-clock measurements, not reproducible
    without_speed = [[{k: v for k, v in line.items() if k not in timing} for line in log]
                     for log in logs]  # fmt: skip
    # The interrupted run logged steps 1-6, the resumed one 6-12 again: same losses and lr.
    assert [line["step"] for line in logs[1]] == [1, 2, 3, 4, 5, 6, *range(6, 13)]
    assert without_speed[1][6:] == without_speed[0][5:]
    assert {"critic/loss", "actor/loss"} <= set(logs[0][1]) and "actor/loss" not in logs[0][0]
    lrs = [line["lr"] for line in logs[0]]
    assert lrs[0] < lrs[2] and lrs[-1] < lrs[3]  # warm-up, then cosine decay


def test_ema_is_in_the_checkpoint(rl_file: Path, tmp_path: Path) -> None:
    probe = make_two_head(WindowDataset(rl_file, ("x",), filter_key=None))
    dataset = WindowDataset(rl_file, ("x",), filter_key=None, spec=probe.batch_spec())
    policy = make_two_head(dataset)
    before = policy.ema.clone()
    train(policy, dataset, config(num_steps=4), tmp_path / "run")
    loaded = load_checkpoint(tmp_path / "run" / "checkpoints" / "last")
    assert not torch.equal(loaded.ema, before)
    torch.testing.assert_close(loaded.ema, policy.ema, rtol=0, atol=0)
    assert int(loaded.hook_calls) == 4


def test_min_max_normalisation_round_trips_to_minus_one_one() -> None:
    rng = np.random.default_rng(1)
    data = rng.uniform(-3, 5, size=(200, 4)).astype(np.float32)
    data[:, 3] = 2.0  # a constant dimension
    stats = {"mean": data.mean(0), "std": data.std(0), "min": data.min(0), "max": data.max(0)}
    normalizer = Normalizer(4, "min_max")
    normalizer.set_stats(stats)
    x = torch.from_numpy(data)
    normalized = normalizer.normalize(x)
    assert normalized[:, :3].min() == pytest.approx(-1.0, abs=1e-6)
    assert normalized[:, :3].max() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(normalized[:, 3] == 0.0)
    torch.testing.assert_close(normalizer.unnormalize(normalized), x, rtol=1e-6, atol=1e-6)
    none = Normalizer(4, "none")
    none.set_stats(stats)
    assert torch.equal(none.normalize(x), x)
    with pytest.raises(ValueError, match="unknown normalisation 'z'"):
        Normalizer(4, "z")


def test_normalisation_mode_travels_in_the_checkpoint(tmp_path: Path) -> None:
    config_ = ChunkConfig(obs_dim=2, action_dim=1, action_horizon=3, n_action_steps=3,
                          action_normalization="min_max")  # fmt: skip
    policy = ChunkPolicy(config_)
    stats = {"mean": np.zeros(1), "std": np.ones(1), "min": np.array([-4.0]), "max": np.array([2.0])}
    policy.action_normalizer.set_stats(stats)
    save_checkpoint(policy, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config.action_normalization == "min_max"
    assert loaded.action_normalizer.offset.item() == -1.0
    assert loaded.action_normalizer.scale.item() == 3.0


def test_batched_predict_action_equals_single_calls(rl_file: Path) -> None:
    dataset = WindowDataset(rl_file, ("x",), filter_key=None)
    policy = make_two_head(dataset).eval()
    obs = dataset.obs[:7]
    batched = policy.predict_action(obs)
    singles = []
    for row in obs:
        policy.reset()
        singles.append(policy.predict_action(row[None])[0])
    assert batched.shape == (7, 2)
    np.testing.assert_allclose(batched, np.stack(singles), rtol=1e-6, atol=1e-7)


def test_per_environment_queues_and_reset() -> None:
    policy = ChunkPolicy(ChunkConfig(obs_dim=1, action_dim=1, obs_horizon=2, action_horizon=3,
                                     n_action_steps=3))  # fmt: skip
    obs = np.array([[1.0], [10.0]], dtype=np.float32)
    first = policy.predict_action(obs)  # both fresh: history [o, o], chunk starts at 2*o
    np.testing.assert_array_equal(first[:, 0], [2.0, 20.0])
    np.testing.assert_array_equal(policy.predict_action(obs)[:, 0], [3.0, 21.0])  # from queue
    assert policy.calls == [2]
    policy.reset([1])  # env 1 only: its queue and history are gone, env 0 keeps its chunk
    after = policy.predict_action(np.array([[5.0], [7.0]], dtype=np.float32))
    assert after[0, 0] == 4.0  # env 0: third action of its first chunk
    assert after[1, 0] == 14.0  # env 1: new chunk from a fresh history [7, 7]
    assert policy.calls == [2, 1]  # only the environment with an empty queue was predicted
    nxt = policy.predict_action(np.array([[6.0], [8.0]], dtype=np.float32))
    assert nxt[0, 0] == 11.0 and nxt[1, 0] == 15.0  # env 0 new chunk from history [5, 6]
    policy.reset()
    assert policy.predict_action(np.array([[1.0]], dtype=np.float32))[0, 0] == 2.0


def test_per_environment_generators_make_draws_independent_of_the_batch() -> None:
    policy = ChunkPolicy(ChunkConfig(obs_dim=1, action_dim=1))
    obs = np.zeros((3, 1), dtype=np.float32)
    together = policy.predict_action(obs, [torch.Generator().manual_seed(s) for s in (5, 6, 7)])
    policy.reset()
    alone = policy.predict_action(obs[:1], [torch.Generator().manual_seed(6)])
    assert alone[0, 0] == together[1, 0] and together[0, 0] != together[1, 0]
    with pytest.raises(ValueError, match="2 generators for 3 environments"):
        policy.reset()
        policy.predict_action(obs, [torch.Generator(), torch.Generator()])


@pytest.mark.parametrize(
    "name", [n for n in registered_policies() if not n.startswith("test_")]
)
def test_every_learner_refuses_a_config_without_dataset_dims(name: str) -> None:
    cls = policy_class(name)
    with pytest.raises(ValueError, match="obs_dim and action_dim"):
        cls(cls.config_class(obs_dim=0, action_dim=2))
