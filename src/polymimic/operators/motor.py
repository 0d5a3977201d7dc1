"""A human motor model: how every scripted operator's hand moves between via-points.

A task script decides *where* the hand should go next (an aim point, re-computed every
step from what the operator sees); this module decides *how* it gets there, the same way
for every task. It is a discrete-time version of the submovement models of human reaching:

* **Minimum-jerk submovements** (Flash & Hogan, 1985, J. Neurosci. 5:1688). A movement of
  displacement ``D`` lasting ``T`` follows ``x(t) = x0 + D s(t/T)`` with
  ``s(τ) = 10τ³ − 15τ⁴ + 6τ⁵``: a bell-shaped speed profile, zero velocity *and*
  acceleration at both ends, peak speed ``1.875 |D| / T``. So the commanded velocity never
  changes in a step; it ramps from rest over a fraction of the movement.
* **Superposition** (Flash & Henis, 1991, J. Cogn. Neurosci. 3:220): when the aim moves,
  a new submovement from the end of the current plan to the new aim is *added* to the ones
  still running, so re-aiming and curved routes stay smooth. A new one can start at most
  every ``refractory`` seconds (the psychological refractory period, ~0.1–0.2 s).
* **Path curvature**: human point-to-point paths are gently curved, not straight. Each
  submovement adds a lateral bump ``L b(τ)``, ``b(τ) = 16 τ²(1 − τ)²`` (zero velocity at
  both ends), ``L`` perpendicular to ``D`` with size ``curvature · |D|`` (a per-operator
  handedness bias plus a per-movement random part).
* **Duration: Fitts' law** (Fitts, 1954; Shannon form, MacKenzie, 1992):
  ``T = a + b · log2(1 + |D| / W)`` with ``W`` the tolerance the script needs at the aim,
  and never faster than the style's peak speed allows (``T ≥ 1.875 |D| / v_peak``).
  Lower skill has a larger ``b`` and a lower peak speed: it is slower.
* **Signal-dependent noise** (Harris & Wolpert, 1998, Nature 394:780): the executed
  displacement misses the aim by a Gaussian endpoint error whose standard deviation grows
  with the amplitude (``endpoint_noise · |D|`` along the movement, ``lateral_ratio`` times
  that across it: endpoint scatter is elongated along the movement, Gordon et al., 1994),
  and the velocity carries smooth noise proportional to the planned speed.
* **Corrective submovements** (Meyer et al., 1988, Psychol. Rev. 95:340): the hand does not
  know its endpoint error until it sees where the movement ended, ``reaction_time`` after
  it ended; if the miss is larger than the script's tolerance it starts a correction. More
  endpoint noise (lower skill) means more corrections and longer demonstrations.
* **Perception/reaction delay** of 150–300 ms (Welford, 1980): the *script* is shown the
  observation from ``reaction_time`` ago (``OperatorEpisode`` in ``operators/base.py``);
  the hand keeps an efference copy of its own commanded position, so the delay does not
  destabilise it (the planner works from where it *sent* the hand, as the intermittent
  controllers of Gawthrop et al., 2011, do).
* **Continuous guidance in contact** (:meth:`Hand.track`): while pushing an object,
  people steer continuously under visual guidance rather than in discrete aimed movements
  (slow, visually guided movements show continuous corrections; Elliott et al., 2010,
  Psychol. Bull. 136:1023). ``track`` drives the hand towards a moving aim at a velocity
  proportional to the remaining error (time constant ``tracking_time``, capped at the
  style's speed), smoothed by a first-order filter (``smoothing_time``) so the velocity
  never jumps.
* **Pauses triggered by the scene**: when the script announces that the next movement makes
  contact (a push begins, a grasp descends), a lower-skill operator may stop and look first
  (probability ``pause_chance``, exponentially distributed length with mean
  ``pause_time``). Nothing pauses on a timer.
* **Variability**: each episode draws a speed factor (log-normal, ``episode_speed_sd``);
  each operator (its seed) draws a speed factor and a curvature bias of its own.

Everything is drawn from the generator passed in, so an episode is deterministic given the
operator's seed and the episode seed. The output is the task's normalised motion action:
the change of the controller's desired position this step divided by the task's
``max_step``, clipped to ``[-1, 1]``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

#: Peak speed of a minimum-jerk movement in units of |D| / T.
MIN_JERK_PEAK = 1.875
#: A movement never lasts less than this many control steps (a 50 ms step: 0.15 s).
MIN_STEPS = 3.0
#: How much faster ``Hand.track`` closes an error across the travel direction than along it.
LATERAL_SPEEDUP = 6.0


def min_jerk(tau: float) -> float:
    """``s(τ) = 10τ³ − 15τ⁴ + 6τ⁵`` for τ clipped to [0, 1]: minimum-jerk progress."""
    tau = min(max(tau, 0.0), 1.0)
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)


def bump(tau: float) -> float:
    """``b(τ) = 16 τ² (1 − τ)²`` for τ clipped to [0, 1]: the lateral curvature profile."""
    tau = min(max(tau, 0.0), 1.0)
    return 16.0 * tau * tau * (1.0 - tau) ** 2


@dataclasses.dataclass(frozen=True)
class MotorSkill:
    """The motor part of an operator's skill (see the module docstring for the model).

    Attributes:
        reaction_time: perception/reaction delay (s): the script sees the scene this late
            and an endpoint error is noticed this long after the movement ends.
        fitts_a: Fitts' law intercept (s).
        fitts_b: Fitts' law slope (s per bit).
        speed: multiplies the style's peak speeds.
        endpoint_noise: endpoint error standard deviation per metre of amplitude, along the
            movement.
        lateral_ratio: across-movement endpoint error as a fraction of the along-movement one.
        velocity_noise: standard deviation of the velocity noise per unit of planned speed.
        noise_time: correlation time of the velocity noise (s); the noise is an
            Ornstein-Uhlenbeck process smoothed once more, so it has little power above
            ``1 / (2π noise_time)``.
        curvature: standard deviation of a submovement's lateral bump per unit amplitude.
        refractory: shortest time between two submovement onsets (s).
        pause_chance: probability of stopping before a movement that makes contact.
        pause_time: mean length of such a pause (s).
        max_pause: longest such pause (s); the exponential draw is cut there (a task whose
            contacts come often may cap its hesitations so that none looks like a
            deadlock).
        episode_speed_sd: standard deviation of the log of the per-episode speed factor.
        operator_speed_sd: standard deviation of the log of the per-operator speed factor.
        operator_curvature: standard deviation of the per-operator curvature bias.
        tracking_time: time constant (s) of the continuous guidance in contact (``track``):
            the hand closes the error to its aim at ``error / tracking_time``.
        smoothing_time: time constant (s) of the filter on the tracking velocity.
        prediction: fraction of the reaction time over which the script extrapolates an
            object it sees moving (an internal forward model offsetting the delay: Nijhawan
            1994; Wolpert & Flanagan 2001; it improves with practice, so it falls with
            skill). 0 steers from where things were seen.
    """

    reaction_time: float = 0.2
    fitts_a: float = 0.15
    fitts_b: float = 0.12
    speed: float = 1.0
    endpoint_noise: float = 0.03
    lateral_ratio: float = 0.5
    velocity_noise: float = 0.03
    noise_time: float = 0.15
    curvature: float = 0.06
    refractory: float = 0.15
    pause_chance: float = 0.0
    pause_time: float = 0.6
    max_pause: float = math.inf
    episode_speed_sd: float = 0.1
    operator_speed_sd: float = 0.08
    operator_curvature: float = 0.05
    tracking_time: float = 0.3
    smoothing_time: float = 0.1
    prediction: float = 0.5

    def delay_steps(self, dt: float) -> int:
        """The reaction time in whole control steps."""
        return max(int(round(self.reaction_time / dt)), 0)


@dataclasses.dataclass
class Submovement:
    """One minimum-jerk movement in progress (lengths in m, times in control steps)."""

    displacement: np.ndarray  # executed, endpoint error included
    lateral: np.ndarray  # the curvature bump's peak offset
    duration: float
    error: np.ndarray  # the part of ``displacement`` the operator does not know about
    elapsed: float = 0.0

    def progress(self) -> float:
        return self.elapsed / self.duration

    def remaining(self) -> np.ndarray:
        """Displacement still to come (the bump returns to zero by the end)."""
        tau = self.progress()
        return self.displacement * (1.0 - min_jerk(tau)) - self.lateral * bump(tau)

    def advance(self) -> np.ndarray:
        """Move one step; the displacement made in it."""
        before = self.progress()
        self.elapsed += 1.0
        after = self.progress()
        return self.displacement * (min_jerk(after) - min_jerk(before)) + self.lateral * (
            bump(after) - bump(before)
        )

    @property
    def finished(self) -> bool:
        return self.elapsed >= self.duration


class Hand:
    """One episode of an operator's hand: turns aim points into smooth motion actions.

    The owner (``OperatorEpisode``) calls :meth:`sync` with the controller's desired
    position at the start of every step; the task script then calls one of :meth:`move`
    (an aimed movement), :meth:`track` (continuous guidance in contact) or :meth:`hold`
    exactly once and returns its result as the motion part of the action.
    """

    def __init__(
        self,
        skill: MotorSkill,
        rng: np.random.Generator,
        dims: int,
        max_step: float,
        dt: float,
        operator_seed: int = 0,
    ) -> None:
        self.skill, self.rng, self.dims = skill, rng, dims
        self.max_step, self.dt = max_step, dt
        operator_rng = np.random.default_rng([operator_seed, 0x4D4F544F])
        operator_speed = math.exp(skill.operator_speed_sd * operator_rng.standard_normal())
        self.curvature_bias = skill.operator_curvature * operator_rng.standard_normal()
        episode_speed = math.exp(skill.episode_speed_sd * rng.standard_normal())
        self.speed_factor = skill.speed * operator_speed * episode_speed
        self.refractory = max(skill.refractory / dt, 1.0)
        self.reveal_delay = skill.delay_steps(dt)
        self.position = np.zeros(dims)
        self.moves: list[Submovement] = []
        self.hidden: list[tuple[float, np.ndarray]] = []  # (step it is noticed, error)
        self.step = 0
        self.last_onset = -math.inf
        self.pause_left = 0
        self.contact = False
        self.noise = np.zeros(dims)
        self.noise_smooth = np.zeros(dims)
        self.track_velocity = np.zeros(dims)  # m per step, from ``track``
        self.onsets = 0  # submovements started (a measure of corrections)
        # A second hand for the wrist's rotation (one dimension, radians), where the task
        # has a yaw action: ``OperatorEpisode`` makes it from ``MotionSpec.wrist_step``.
        self.wrist: Hand | None = None

    # ------------------------------------------------------------------ state
    def sync(self, commanded: np.ndarray) -> None:
        """Take the controller's desired position now (the hand's efference copy)."""
        self.position = np.asarray(commanded, dtype=np.float64)[: self.dims].copy()

    def planned_end(self) -> np.ndarray:
        """Where the hand will come to rest if no new submovement starts.

        (A tracking velocity still decaying adds a few millimetres; it is left out.)
        """
        end = self.position.copy()
        for move in self.moves:
            end += move.remaining()
        return end

    def believed_end(self) -> np.ndarray:
        """The planned end minus the endpoint errors the operator has not noticed yet."""
        end = self.planned_end()
        for _, error in self.hidden:
            end -= error
        for move in self.moves:
            end -= move.error
        return end

    @property
    def moving(self) -> bool:
        return bool(self.moves) or float(np.linalg.norm(self.track_velocity)) > 1e-4

    @property
    def paused(self) -> bool:
        return self.pause_left > 0

    # ------------------------------------------------------------------ acting
    def move(
        self, aim: np.ndarray, speed: float, tolerance: float, contact: bool = False
    ) -> np.ndarray:
        """This step's motion action towards ``aim``.

        Args:
            aim: where the script wants the hand (``dims`` components, m).
            speed: the style's peak speed for this kind of movement (m per step).
            tolerance: how close to ``aim`` is good enough (Fitts' ``W``, m): a new
                submovement starts only when the believed end misses ``aim`` by more.
            contact: whether this movement makes contact (a push, a grasp); the first step
                of a contact phase may start a pause.
        """
        self._notice_errors()
        if contact and not self.contact:
            self._maybe_pause()
        self.contact = contact
        if self.pause_left > 0:
            self.pause_left -= 1
        else:
            self._plan(np.asarray(aim, dtype=np.float64)[: self.dims], speed, tolerance)
        return self._advance()

    def hold(self) -> np.ndarray:
        """This step's motion with no new aim: running submovements finish, then rest."""
        self._notice_errors()
        self.contact = False
        self.pause_left = max(self.pause_left - 1, 0)
        return self._advance()

    def track(
        self, aim: np.ndarray, speed: float, along: np.ndarray | None = None,
        contact: bool = True,
    ) -> np.ndarray:  # fmt: skip
        """This step's motion under continuous guidance towards a moving ``aim``.

        The desired velocity is ``(aim - planned end) / tracking_time``, capped at ``speed``
        (m per step); the hand's tracking velocity follows it through a first-order filter,
        so the velocity never jumps. Running submovements finish on top of it. Given the
        travel direction ``along`` (a unit vector), the error across it is closed
        ``LATERAL_SPEEDUP`` times faster and is not capped: steering a pushed object
        matters more than how fast it goes.
        """
        self._notice_errors()
        if contact and not self.contact:
            self._maybe_pause()
        self.contact = contact
        desired = np.zeros(self.dims)
        if self.pause_left > 0:
            self.pause_left -= 1
        else:
            error = np.asarray(aim, dtype=np.float64)[: self.dims] - self.planned_end()
            across = np.zeros(self.dims)
            if along is not None:
                unit_along = np.asarray(along, dtype=np.float64)[: self.dims]
                across = error - float(np.dot(error, unit_along)) * unit_along
                error = error - across
            desired = error * (self.dt / self.skill.tracking_time)
            norm = float(np.linalg.norm(desired))
            peak = speed * self.speed_factor
            if norm > peak:
                desired *= peak / norm
            desired += across * min(LATERAL_SPEEDUP * self.dt / self.skill.tracking_time, 1.0)
        return self._advance(desired)

    def pause(self, seconds: float) -> None:
        """Stop starting new movements for ``seconds`` (running ones finish)."""
        self.pause_left = max(self.pause_left, int(round(seconds / self.dt)))

    # ------------------------------------------------------------------ internals
    def _maybe_pause(self) -> None:
        skill = self.skill
        if skill.pause_chance > 0 and self.rng.random() < skill.pause_chance:
            seconds = min(self.rng.exponential(skill.pause_time), skill.max_pause)
            self.pause(max(seconds, 2 * self.dt))

    def _notice_errors(self) -> None:
        self.hidden = [(when, e) for when, e in self.hidden if when > self.step]

    def _plan(self, aim: np.ndarray, speed: float, tolerance: float) -> None:
        if self.step - self.last_onset < self.refractory:
            return
        displacement = aim - self.believed_end()
        amplitude = float(np.linalg.norm(displacement))
        if amplitude <= tolerance:
            return
        self.moves.append(self._submovement(displacement, amplitude, speed, tolerance))
        self.last_onset = self.step
        self.onsets += 1

    def _submovement(
        self, displacement: np.ndarray, amplitude: float, speed: float, tolerance: float
    ) -> Submovement:
        skill = self.skill
        along = displacement / amplitude
        error = skill.endpoint_noise * amplitude * self.rng.standard_normal() * along
        across = self._perpendicular(along)
        error = error + (
            skill.lateral_ratio * skill.endpoint_noise * amplitude * self.rng.standard_normal()
        ) * across
        curvature = self.curvature_bias + skill.curvature * self.rng.standard_normal()
        fitts = (skill.fitts_a + skill.fitts_b * math.log2(1.0 + amplitude / max(tolerance, 1e-4)))
        peak = max(speed * self.speed_factor, 1e-4)
        duration = max(fitts / self.dt, MIN_JERK_PEAK * amplitude / peak, MIN_STEPS)
        return Submovement(
            displacement=displacement + error,
            lateral=curvature * amplitude * across,
            duration=duration,
            error=error,
        )

    def _perpendicular(self, along: np.ndarray) -> np.ndarray:
        """A unit vector across the movement (in the horizontal plane where possible); zero
        for a one-dimensional hand (a wrist's rotation has no across)."""
        if self.dims == 1:
            return np.zeros(1)
        if self.dims >= 2 and math.hypot(along[0], along[1]) > 1e-6:
            across = np.zeros(self.dims)
            across[0], across[1] = -along[1], along[0]
            return across / np.linalg.norm(across)
        across = np.zeros(self.dims)
        across[0] = 1.0
        return across

    def _advance(self, tracking: np.ndarray | None = None) -> np.ndarray:
        """One step: running submovements plus the (filtered) tracking velocity, plus noise.

        ``tracking`` is the desired tracking velocity (m per step); None (``move``,
        ``hold``) lets the tracking velocity decay to zero through the same filter.
        """
        target = tracking if tracking is not None else np.zeros(self.dims)
        blend = min(self.dt / max(self.skill.smoothing_time, 1e-6), 1.0)
        self.track_velocity = self.track_velocity + blend * (target - self.track_velocity)
        step = self.track_velocity.copy()
        for move in self.moves:
            step += move.advance()
        for move in self.moves:
            if move.finished:
                self.hidden.append((self.step + self.reveal_delay, move.error))
        self.moves = [move for move in self.moves if not move.finished]
        step += self._velocity_noise(float(np.linalg.norm(step)))
        self.step += 1
        return np.clip(step / self.max_step, -1.0, 1.0).astype(np.float32)

    def _velocity_noise(self, speed: float) -> np.ndarray:
        """Smooth noise proportional to the planned speed (twice-filtered OU process)."""
        skill = self.skill
        if skill.velocity_noise <= 0:
            return np.zeros(self.dims)
        decay = math.exp(-self.dt / skill.noise_time)
        innovation = math.sqrt(1.0 - decay * decay) * self.rng.standard_normal(self.dims)
        self.noise = decay * self.noise + innovation
        self.noise_smooth = decay * self.noise_smooth + (1.0 - decay) * self.noise
        # For a unit-variance AR(1) input with coefficient d, the second filter's output has
        # variance (1 + d²) / (1 + d)²: rescale to unit variance.
        scale = (1.0 + decay) / math.sqrt(1.0 + decay * decay)
        return skill.velocity_noise * speed * scale * self.noise_smooth


#: The experts' hand: the same smooth movements, without noise, pauses or variability.
EXPERT_MOTOR = MotorSkill(
    reaction_time=0.15,
    endpoint_noise=0.0,
    velocity_noise=0.0,
    curvature=0.0,
    episode_speed_sd=0.0,
    operator_speed_sd=0.0,
    operator_curvature=0.0,
)
