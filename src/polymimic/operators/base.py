"""What every simulated operator is, and the one function that records a demonstration.

An operator is a seeded, deterministic closed-loop script described by three orthogonal
parts (DESIGN.md): a *strategy* (a preference over the task's behaviours, drawn per
episode and independent of the initial state), a *style* (how a behaviour is executed)
and a *skill* (time-correlated errors, mapped to robomimic's worse/okay/better).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from polymimic.datasets.episode import Episode


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A preference over behaviours: label -> probability (normalised on use)."""

    name: str
    preferences: Mapping[str, float]

    def draw(self, rng: np.random.Generator) -> str:
        labels = sorted(self.preferences)
        weights = np.array([self.preferences[k] for k in labels], dtype=np.float64)
        return labels[int(rng.choice(len(labels), p=weights / weights.sum()))]


@dataclasses.dataclass(frozen=True)
class Skill:
    """Time-correlated execution errors; ``quality`` is robomimic's worse/okay/better.

    Attributes:
        quality: "better", "okay" or "worse".
        drift: std (m) of the stationary Ornstein-Uhlenbeck offset added to the operator's
            aim point; correlated over ``drift_time`` steps, so BC cannot average it away.
        drift_time: correlation time of the drift, in control steps.
        hesitation: probability per phase change of pausing for a few steps.
    """

    quality: str = "better"
    drift: float = 0.0
    drift_time: float = 15.0
    hesitation: float = 0.0


class SkillNoise:
    """A ``Skill``'s time-correlated errors, drawn from the operator's episode rng."""

    def __init__(self, skill: Skill, rng: np.random.Generator) -> None:
        self.skill = skill
        self.rng = rng
        self.drift = np.zeros(2)

    def step_drift(self) -> np.ndarray:
        """Advance the Ornstein-Uhlenbeck aim offset (stationary std ``skill.drift``)."""
        if self.skill.drift <= 0:
            return self.drift
        decay = np.exp(-1.0 / self.skill.drift_time)
        noise = self.rng.standard_normal(2)
        self.drift = decay * self.drift + self.skill.drift * np.sqrt(1 - decay**2) * noise
        return self.drift

    def pause_length(self, steps: int) -> int:
        """``steps``, plus a few more when the operator hesitates at this phase change."""
        if self.skill.hesitation > 0 and self.rng.random() < self.skill.hesitation:
            steps += int(self.rng.integers(3, 12))
        return steps


class EpisodeScript(Protocol):
    """One episode's closed-loop controller, created for a chosen behaviour."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class Operator:
    """A member of the simulated population; ``make_script`` binds it to a task."""

    operator_id: str
    strategy: Strategy
    style: Any  # the task's style dataclass
    skill: Skill
    seed: int

    def episode_rng(self, episode_seed: int) -> np.random.Generator:
        # The operator's choices depend on its own seed and the episode seed only, so a
        # demo is reproducible on its own, in any order and in any worker process.
        return np.random.default_rng([self.seed, episode_seed])

    def labels(self) -> dict[str, Any]:
        style_name = getattr(self.style, "name", str(self.style))
        return {
            "operator": self.operator_id,
            "strategy": self.strategy.name,
            "style": style_name,
            "quality": self.skill.quality,
        }


def record_episode(
    env: gym.Env,
    operator: Operator,
    script_factory: Any,
    episode_seed: int,
    options: dict[str, Any] | None = None,
) -> Episode:
    """Run one operator episode on ``env`` (a TimeLimit-wrapped task) and record it.

    Args:
        env: the task environment, as ``gym.make`` returns it.
        operator: who demonstrates.
        script_factory: ``(operator, intended_behaviour, rng) -> EpisodeScript``.
        episode_seed: seeds both the env's initial state and the operator's choices.
        options: passed to ``env.reset``.
    """
    rng = operator.episode_rng(episode_seed)
    intended = operator.strategy.draw(rng)
    script: EpisodeScript = script_factory(operator, intended, rng)
    obs, info = env.reset(seed=episode_seed, options=options)
    unwrapped = env.unwrapped
    steps: list[dict[str, Any]] = []
    done = False
    while not done:
        state = unwrapped.get_state()
        action = np.asarray(script.act(obs), dtype=np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        steps.append(dict(obs=obs, next_obs=next_obs, action=action, reward=reward,
                          terminated=terminated, truncated=truncated, state=state))
        obs, done = next_obs, terminated or truncated
    attrs = {
        **operator.labels(),
        "seed": int(episode_seed),
        "intended_behaviour": intended,
        "behaviour": str(info["behaviour"]),
        "success": bool(info["success"]),
        "context": int(info.get("context", 0)),
    }
    return _stack_steps(steps, attrs)


def _stack_steps(steps: list[dict[str, Any]], attrs: dict[str, Any]) -> Episode:
    keys = steps[0]["obs"].keys()
    return Episode(
        obs={k: np.stack([s["obs"][k] for s in steps]) for k in keys},
        next_obs={k: np.stack([s["next_obs"][k] for s in steps]) for k in keys},
        actions=np.stack([s["action"] for s in steps]),
        rewards=np.array([s["reward"] for s in steps], dtype=np.float64),
        terminations=np.array([s["terminated"] for s in steps], dtype=bool),
        truncations=np.array([s["truncated"] for s in steps], dtype=bool),
        states=np.stack([s["state"] for s in steps]),
        attrs=attrs,
    )
