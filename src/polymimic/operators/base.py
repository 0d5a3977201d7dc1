"""What every simulated operator is, and the one function that records a demonstration.

An operator is a seeded, deterministic closed-loop script described by three orthogonal
parts: a *strategy* (a preference over the task's behaviours, drawn per
episode and independent of the initial state), a *style* (how a behaviour is executed)
and a *skill* (time-correlated errors, mapped to robomimic's worse/okay/better).
"""

from __future__ import annotations

import collections
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
    """Time-correlated, state-dependent execution errors; ``quality`` is robomimic's label.

    Two families of error. ``drift`` and ``hesitation`` live inside each task's script (the
    aim point wanders, the operator pauses at a phase change). The others are task-generic:
    ``record_episode`` wraps any task script in a :class:`SkilledScript` that applies them
    to what the script sees and to the motion part of what it commands (see that class for
    the formulas). At their defaults the wrapper is not used and demos are unchanged.

    Attributes:
        quality: "better", "okay" or "worse".
        drift: std (m) of the stationary Ornstein-Uhlenbeck offset added to the operator's
            aim point; correlated over ``drift_time`` steps, so BC cannot average it away.
        drift_time: correlation time of the drift, in control steps.
        hesitation: probability per phase change of pausing for a few steps.
        reaction_delay: control steps of perception latency: the script acts on the
            observation from this many steps ago (closed-loop with latency overshoots).
            The scripts step onto nearby targets in one step (deadbeat), which a delay
            destabilises: 1 step gives overshoot and correction, 2 or more steps a limit
            cycle about each target that mostly runs into the time limit.
        overshoot: mean relative gain error of the motion command (0.2: moves 20% too far
            per step, then corrects).
        gain_noise: std of the log-gain's Ornstein-Uhlenbeck process around ``1 + overshoot``.
        gain_time: correlation time of the log-gain, in control steps.
        action_noise: std of each motion component's additive noise per unit of commanded
            speed (action units at a unit-norm motion command; none when still).
        noise_time: correlation time of the additive noise, in control steps.
        fumble: probability per episode of one slip: a burst of strong unintended motion.
        fumble_size: norm of the slip's motion (action units) while it lasts.
        fumble_steps: how many control steps the slip lasts.
    """

    quality: str = "better"
    drift: float = 0.0
    drift_time: float = 15.0
    hesitation: float = 0.0
    reaction_delay: int = 0
    overshoot: float = 0.0
    gain_noise: float = 0.0
    gain_time: float = 20.0
    action_noise: float = 0.0
    noise_time: float = 5.0
    fumble: float = 0.0
    fumble_size: float = 0.8
    fumble_steps: int = 6

    @property
    def perturbs_actions(self) -> bool:
        """Whether the task-generic errors (the :class:`SkilledScript` wrapper) apply."""
        return bool(
            self.reaction_delay > 0
            or self.overshoot != 0
            or self.gain_noise > 0
            or self.action_noise > 0
            or self.fumble > 0
        )


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


class SkilledScript:
    """A task script executed by an operator with latency, gain errors, noise and slips.

    With ``m_t`` the script's motion command (the action components in ``motion_dims``; a
    gripper command is passed through untouched), the executed motion is::

        m'_t = clip(g_t * m_t + action_noise * |m_t| * n_t + f_t, -1, 1)
        g_t  = (1 + overshoot) * exp(l_t)

    * **reaction delay**: the script is given ``obs[max(t - reaction_delay, 0)]`` (a FIFO
      filled with the first observation at the start), while the env executes now;
    * **gain** ``g_t``: ``l_t`` is a stationary Ornstein-Uhlenbeck process (std
      ``gain_noise``, correlation time ``gain_time`` steps), so an operator moves
      consistently too far (or short) for a while; a script that steps onto its target
      overshoots and corrects on the next steps;
    * **noise** ``n_t``: independent unit-variance OU processes per motion component
      (correlation time ``noise_time``). The error is *state-dependent*: its std is
      proportional to the commanded speed ``|m_t|`` (Euclidean norm), as human motor noise
      grows with movement speed (Harris & Wolpert, 1998), and it vanishes when still. The
      gain error is proportional to ``|m_t|`` by construction;
    * **slip** ``f_t``: with probability ``fumble`` per episode, at the first moving step at
      or after a step drawn uniformly in the first half of the time limit, a constant
      motion of norm ``fumble_size`` in a random direction for ``fumble_steps`` steps.

    OU processes start from their stationary distribution and advance every step, moving or
    not, so their correlation is in time. All draws come from ``rng``, a generator of the
    wrapper's own: the script's draws are the same as without the wrapper.
    """

    def __init__(
        self,
        script: EpisodeScript,
        skill: Skill,
        rng: np.random.Generator,
        motion_dims: tuple[int, ...],
        horizon: int,
    ) -> None:
        """Args:
        script: the task script to execute.
        skill: the operator's skill.
        rng: the wrapper's own generator.
        motion_dims: indices of the action's motion components.
        horizon: the episode's time limit in steps (a slip happens in its first half).
        """
        self.script, self.skill, self.rng = script, skill, rng
        self.motion = np.asarray(motion_dims, dtype=np.intp)
        self.seen: collections.deque[dict[str, np.ndarray]] = collections.deque(
            maxlen=skill.reaction_delay + 1
        )
        self.log_gain = skill.gain_noise * rng.standard_normal() if skill.gain_noise > 0 else 0.0
        dims = len(self.motion)
        self.noise = rng.standard_normal(dims) if skill.action_noise > 0 else np.zeros(dims)
        self.fumble_at, self.fumble_left = -1, 0
        self.fumble_motion = np.zeros(dims)
        if skill.fumble > 0 and rng.random() < skill.fumble:
            self.fumble_at = int(rng.integers(0, max(horizon // 2, 1)))
            self.fumble_left = skill.fumble_steps
            direction = rng.standard_normal(dims)
            self.fumble_motion = skill.fumble_size * direction / np.linalg.norm(direction)
        self.step = 0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The script's action on the delayed observation, with the skill's errors applied."""
        if not self.seen:  # before the first observation there is nothing older to see
            self.seen.extend([obs] * self.seen.maxlen)
        else:
            self.seen.append(obs)
        action = np.array(self.script.act(self.seen[0]), dtype=np.float64)
        motion = action[self.motion]
        speed = float(np.linalg.norm(motion))
        gain = (1.0 + self.skill.overshoot) * np.exp(self._advance_gain())
        motion = gain * motion + self.skill.action_noise * speed * self._advance_noise()
        slipping = self.fumble_left < self.skill.fumble_steps  # a slip, once begun, goes on
        if self.fumble_left > 0 and self.step >= self.fumble_at and (speed > 0 or slipping):
            motion = motion + self.fumble_motion
            self.fumble_left -= 1
        action[self.motion] = np.clip(motion, -1.0, 1.0)
        self.step += 1
        return action.astype(np.float32)

    def _advance_gain(self) -> float:
        """One step of the log-gain's OU process (stationary std ``gain_noise``)."""
        if self.skill.gain_noise > 0:
            decay = np.exp(-1.0 / self.skill.gain_time)
            innovation = np.sqrt(1.0 - decay**2) * self.rng.standard_normal()
            self.log_gain = decay * self.log_gain + self.skill.gain_noise * innovation
        return self.log_gain

    def _advance_noise(self) -> np.ndarray:
        """One step of the unit-variance OU noise, one process per motion component."""
        if self.skill.action_noise > 0:
            decay = np.exp(-1.0 / self.skill.noise_time)
            innovation = np.sqrt(1.0 - decay**2) * self.rng.standard_normal(len(self.motion))
            self.noise = decay * self.noise + innovation
        return self.noise


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


def episode_script(
    operator: Operator,
    script_factory: Any,
    episode_seed: int,
    horizon: int,
    motion_dims: tuple[int, ...],
) -> tuple[str, EpisodeScript]:
    """The behaviour an operator intends for one episode and the script that executes it.

    The intention and the script's draws come from ``operator.episode_rng(episode_seed)``;
    a skill's perturbations from a generator of their own, so the script's draws are the
    same with and without them.
    """
    rng = operator.episode_rng(episode_seed)
    intended = operator.strategy.draw(rng)
    script: EpisodeScript = script_factory(operator, intended, rng)
    if operator.skill.perturbs_actions:
        wrapper_rng = np.random.default_rng([operator.seed, episode_seed, 1])
        script = SkilledScript(script, operator.skill, wrapper_rng, motion_dims, horizon)
    return intended, script


def record_episode(
    env: gym.Env,
    operator: Operator,
    script_factory: Any,
    episode_seed: int,
    options: dict[str, Any] | None = None,
    motion_dims: tuple[int, ...] | None = None,
) -> Episode:
    """Run one operator episode on ``env`` (a TimeLimit-wrapped task) and record it.

    Args:
        env: the task environment, as ``gym.make`` returns it.
        operator: who demonstrates.
        script_factory: ``(operator, intended_behaviour, rng) -> EpisodeScript``.
        episode_seed: seeds both the env's initial state and the operator's choices.
        options: passed to ``env.reset``.
        motion_dims: the action components the skill's gain and noise act on; by default
            the task's ``TaskOperators.motion_dims`` (all components for other envs).
    """
    horizon = int(getattr(env.spec, "max_episode_steps", None) or 1000)
    dims = motion_dims if motion_dims is not None else _task_motion_dims(env)
    intended, script = episode_script(operator, script_factory, episode_seed, horizon, dims)
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


def _task_motion_dims(env: gym.Env) -> tuple[int, ...]:
    """The motion components of ``env``'s actions, from its ``TaskOperators`` entry."""
    # Imported here: the package's __init__ imports this module to build that table.
    from polymimic.operators import TASK_OPERATORS

    entry = TASK_OPERATORS.get(env.spec.id) if env.spec is not None else None
    if entry is not None and entry.motion_dims is not None:
        return entry.motion_dims
    return tuple(range(int(np.prod(env.action_space.shape))))


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
