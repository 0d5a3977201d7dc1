"""What every simulated operator is, and the one function that records a demonstration.

An operator is a seeded, deterministic closed-loop script described by three orthogonal
parts: a *strategy* (a soft preference over the task's behaviours that depends on the
scene, revised now and then), a *style* (how a behaviour is executed: route, speeds,
pauses) and a *skill* (the human motor model's parameters, ``polymimic.operators.motor``,
mapped to robomimic's worse/okay/better). The task script decides where the hand goes;
the motor model decides how it moves there, the same way in every task.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from polymimic.datasets.episode import Episode
from polymimic.operators.motor import Hand, MotorSkill


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A soft, scene-dependent preference over behaviours, and how often it is revised.

    The probability of choosing behaviour ``b`` in a scene with utilities ``u_b(s)`` (from
    the task's ``scene_utilities``; all zero when the task has none) is::

        p(b | s) = w_b exp(scene_weight * u_b(s)) / sum_c w_c exp(scene_weight * u_c(s))

    with ``w_b`` the ``preferences`` (missing labels weigh 0). Utilities are bounded, so no
    scene makes a choice certain. With probability ``change_of_mind`` per episode the
    operator revises its intention once, at a step drawn uniformly in the first
    ``REVISE_WINDOW`` seconds, provided the script has not committed yet (for example, has
    not touched an object): the new intention is drawn from ``p(b | s)`` at that moment,
    excluding the current one. ``OperatorEpisode`` records the original intention, the
    final one and the step of the switch.
    """

    name: str
    preferences: Mapping[str, float]
    scene_weight: float = 1.0
    change_of_mind: float = 0.05

    def probabilities(
        self, utilities: Mapping[str, float] | None = None, exclude: str | None = None
    ) -> dict[str, float]:
        """``p(b | s)`` over the labels with a positive preference (see the class docstring)."""
        labels = sorted(k for k, w in self.preferences.items() if w > 0 and k != exclude)
        if not labels:
            return {}
        logits = np.log([float(self.preferences[k]) for k in labels])
        if utilities is not None:
            logits = logits + self.scene_weight * np.array([utilities.get(k, 0.0) for k in labels])
        weights = np.exp(logits - logits.max())
        return dict(zip(labels, (weights / weights.sum()).tolist(), strict=True))

    def draw(
        self,
        rng: np.random.Generator,
        utilities: Mapping[str, float] | None = None,
        exclude: str | None = None,
    ) -> str | None:
        """A behaviour drawn from :meth:`probabilities` (None when nothing is left)."""
        probabilities = self.probabilities(utilities, exclude)
        if not probabilities:
            return None
        labels = list(probabilities)
        return labels[int(rng.choice(len(labels), p=np.array(list(probabilities.values()))))]


#: Seconds from the start of an episode within which a change of mind can happen.
REVISE_WINDOW = 4.0


@dataclasses.dataclass(frozen=True)
class Skill:
    """An operator's skill: robomimic's quality label and the motor model's parameters.

    Lower skill is slower (Fitts slope, peak speed), noisier (endpoint and velocity noise,
    hence more corrective submovements), pauses more before contact and reacts later; see
    ``polymimic.operators.motor`` for the model and its sources. Mistakes follow from the
    noise where the scene is unforgiving (a misjudged contact point turns a block, an
    endpoint error knocks an obstacle or drops a cube).
    """

    quality: str = "better"
    motor: MotorSkill = MotorSkill()


#: robomimic's three quality tiers as motor skills: the starting point of every task's
#: calibration (a task may adjust them; its ``*_SKILLS`` table is what its operators use).
TIERS: dict[str, Skill] = {
    "better": Skill("better", MotorSkill(
        reaction_time=0.2, fitts_b=0.10, speed=1.0, endpoint_noise=0.03,
        velocity_noise=0.03, pause_chance=0.1,
    )),
    "okay": Skill("okay", MotorSkill(
        reaction_time=0.25, fitts_b=0.16, speed=0.8, endpoint_noise=0.07,
        velocity_noise=0.06, pause_chance=0.4, prediction=0.25,
    )),
    "worse": Skill("worse", MotorSkill(
        reaction_time=0.3, fitts_b=0.22, speed=0.65, endpoint_noise=0.12,
        velocity_noise=0.10, pause_chance=0.7, pause_time=0.8, prediction=0.0,
    )),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class MotionSpec:
    """How a task's actions move the hand: what the motor model needs to know."""

    dims: int  # motion components (the first ``dims`` of the action; x, y[, z])
    max_step: float  # m of desired-position change per step at |action| = 1
    dt: float  # control period (s)
    target_key: str = "tip_target"  # observation key of the controller's desired position
    # A yaw action (Stack): action component ``dims`` turns the desired tool yaw by
    # ``wrist_step`` rad per step at |action| = 1, clipped to +-``wrist_limit`` rad, from 0
    # at reset. 0: no yaw action. The wrist gets a hand of its own (``Hand.wrist``), whose
    # efference copy is the yaw it has commanded (the observation holds the measured yaw only).
    wrist_step: float = 0.0
    wrist_limit: float = 0.0


class EpisodeScript(Protocol):
    """One episode's closed-loop task script, created for a chosen behaviour.

    ``act`` returns the full action; its motion part comes from the ``Hand`` the script was
    given. ``revisable`` (optional, default False) says whether a change of mind is still
    possible (nothing committed yet); ``abandoned`` (optional, default False) that the
    operator gave the demo up, which ends the recording once the hand is at rest.
    """

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


class OperatorEpisode:
    """One episode of an operator: intention, change of mind, reaction delay and the hand.

    At the first observation the operator draws its intention from its strategy given the
    scene (``scene_utilities``) and builds the task script with a ``Hand`` (the motor
    model). Every step the hand is synced to the controller's desired position *now*, while
    the script sees the observation from ``reaction_time`` ago. A change of mind (see
    ``Strategy``) rebuilds the script for the new intention; the hand keeps moving.

    Draws: the intention, the change of mind and the script's own choices come from
    ``operator.episode_rng(episode_seed)``; the hand's noise from a generator of its own.
    """

    def __init__(
        self,
        operator: Operator,
        script_factory: Any,
        episode_seed: int,
        motion: MotionSpec,
        scene_utilities: Any = None,
    ) -> None:
        # A style blended per episode (``style_blend.BlendedStyle``) is resolved here, once,
        # so the script and a change of mind see one concrete style; plain styles pass.
        self.style_labels: dict[str, Any] = {}
        for_episode = getattr(operator.style, "for_episode", None)
        if for_episode is not None:
            style, self.style_labels = for_episode(operator.seed, episode_seed)
            operator = dataclasses.replace(operator, style=style)
        self.operator, self.factory, self.motion = operator, script_factory, motion
        self.utilities = scene_utilities
        self.rng = operator.episode_rng(episode_seed)
        hand_rng = np.random.default_rng([operator.seed, episode_seed, 1])
        skill = operator.skill.motor
        self.hand = Hand(skill, hand_rng, motion.dims, motion.max_step, motion.dt, operator.seed)
        self.wrist_yaw = 0.0  # the desired yaw the wrist has commanded (its efference copy)
        if motion.wrist_step > 0:
            wrist_rng = np.random.default_rng([operator.seed, episode_seed, 2])
            self.hand.wrist = Hand(skill, wrist_rng, 1, motion.wrist_step, motion.dt, operator.seed)
        self.seen: collections.deque[dict[str, np.ndarray]] = collections.deque(
            maxlen=skill.delay_steps(motion.dt) + 1
        )
        self.revise_at = -1
        if self.rng.random() < operator.strategy.change_of_mind:
            first = self.seen.maxlen + 1  # the operator has seen the scene by then
            window = max(int(REVISE_WINDOW / motion.dt), first + 1)
            self.revise_at = int(self.rng.integers(first, window))
        self.script: EpisodeScript | None = None
        self.original_intent = self.intent = ""
        self.switch_step = -1
        self.step = 0

    def _scene(self, obs: dict[str, np.ndarray]) -> Mapping[str, float] | None:
        return self.utilities(obs) if self.utilities is not None else None

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The operator's action for the current observation."""
        if not self.seen:  # before the first observation there is nothing older to see
            self.seen.extend([obs] * self.seen.maxlen)
        else:
            self.seen.append(obs)
        seen = self.seen[0]
        if self.script is None:
            self.intent = self.original_intent = str(
                self.operator.strategy.draw(self.rng, self._scene(seen))
            )
            self.script = self.factory(self.operator, self.intent, self.rng, self.hand)
        elif self.step == self.revise_at and getattr(self.script, "revisable", False):
            self._revise(seen)
        self.hand.sync(obs[self.motion.target_key])
        wrist = self.hand.wrist
        if wrist is not None:
            wrist.sync(np.array([self.wrist_yaw]))
        self.step += 1
        action = np.asarray(self.script.act(seen), dtype=np.float32)
        if wrist is not None:  # the env's own update of its desired yaw
            motion, limit = self.motion, self.motion.wrist_limit
            yaw = self.wrist_yaw + motion.wrist_step * float(action[motion.dims])
            self.wrist_yaw = min(max(yaw, -limit), limit)
        return action

    def _revise(self, seen: dict[str, np.ndarray]) -> None:
        new = self.operator.strategy.draw(self.rng, self._scene(seen), exclude=self.intent)
        if new is not None:
            self.intent, self.switch_step = new, self.step
            self.script = self.factory(self.operator, new, self.rng, self.hand)

    @property
    def abandoned(self) -> bool:
        """The operator gave the demo up (its script says so) and the hand has come to rest."""
        return bool(getattr(self.script, "abandoned", False)) and not self.hand.moving

    def labels(self) -> dict[str, Any]:
        """What the episode's intention was, and whether and when it changed."""
        return {
            "intended_behaviour": self.intent,
            "original_intent": self.original_intent,
            "switch_step": int(self.switch_step),
            **self.style_labels,
        }


def record_episode(
    env: gym.Env,
    operator: Operator,
    episode_seed: int,
    options: dict[str, Any] | None = None,
    family: str = "scripted",
) -> Episode:
    """Run one operator episode on ``env`` (a TimeLimit-wrapped task) and record it.

    Args:
        env: the task environment, as ``gym.make`` returns it (a task with operators).
        operator: who demonstrates.
        episode_seed: seeds both the env's initial state and the operator's choices.
        options: passed to ``env.reset``.
        family: the operator family whose scripts ``operator`` runs
            (``polymimic.operators.OPERATOR_FAMILIES``); its style must be that family's.
    """
    # Imported here: the package's __init__ imports this module to build its task table.
    from polymimic.operators import operator_family

    entry = operator_family(env.spec.id if env.spec is not None else "", family)
    episode = OperatorEpisode(
        operator, entry.script_factory, episode_seed, entry.motion, entry.scene_utilities
    )
    obs, info = env.reset(seed=episode_seed, options=options)
    unwrapped = env.unwrapped
    steps: list[dict[str, Any]] = []
    done = False
    while not done:
        state = unwrapped.get_state()
        action = episode.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        # An operator who gives up ends the demo there, as a person stops recording: a
        # truncation (the task is not over), not a terminal state.
        truncated = bool(truncated or (not terminated and episode.abandoned))
        steps.append(dict(obs=obs, next_obs=next_obs, action=action, reward=reward,
                          terminated=terminated, truncated=truncated, state=state))
        obs, done = next_obs, terminated or truncated
    attrs = {
        **operator.labels(),
        "seed": int(episode_seed),
        **episode.labels(),
        "behaviour": str(info["behaviour"]),
        "success": bool(info["success"]),
        "context": int(info.get("context", 0)),
        "submovements": int(episode.hand.onsets),
        "abandoned": bool(episode.abandoned),
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
