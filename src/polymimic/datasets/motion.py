"""How demonstrations move: the statistics that say whether an operator moves like a person.

Plain functions on arrays (no simulator, no files), used by ``scripts/operator_stats.py``
and ``scripts/quality_table.py``. ``positions`` are (T, D) end-effector positions sampled
every ``dt`` seconds; velocities are their first differences divided by ``dt``.

What human movement looks like, and so what these measure:

* smooth, bell-shaped speed profiles with little power at high frequency (human voluntary
  movement has most of its power below ~2–3 Hz: :func:`high_frequency_fraction`;
  :func:`sparc`, the spectral arc length of Balasubramanian et al., 2015, J. NeuroEng.
  Rehabil. 12:112, per movement segment);
* few direction reversals at speed (:func:`reversal_fraction`);
* bounded accelerations (:func:`acceleration_percentile`);
* visible variability between one person's demonstrations of one behaviour, beyond what
  the initial state explains (:func:`residual_variation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Speed (m/s) below which the hand counts as at rest (movement segmentation, reversals).
REST_SPEED = 0.01
#: A movement segment must last at least this many samples to get a SPARC value.
MIN_SEGMENT = 6


def velocities(positions: np.ndarray, dt: float) -> np.ndarray:
    """``(p[t+1] - p[t]) / dt``: (T-1, D)."""
    return np.diff(np.asarray(positions, dtype=np.float64), axis=0) / dt


def mean_speed(positions: np.ndarray, dt: float) -> float:
    """Path length over duration: ``sum_t |p[t+1] - p[t]| / ((T - 1) dt)``."""
    v = velocities(positions, dt)
    return float(np.linalg.norm(v, axis=1).mean()) if len(v) else float("nan")


def path_length(positions: np.ndarray) -> float:
    """``sum_t |p[t+1] - p[t]|`` (m)."""
    return float(np.linalg.norm(np.diff(np.asarray(positions, np.float64), axis=0), axis=1).sum())


def band_power(signals: Sequence[np.ndarray], dt: float, cutoff: float) -> tuple[float, float]:
    """(power above ``cutoff`` Hz, total power) pooled over signals and their components.

    Each (T, D) signal has its per-component mean removed; its periodogram is
    ``|rfft|^2`` per component. The zero-frequency bin is left out of the total.
    """
    high = total = 0.0
    for signal in signals:
        x = np.asarray(signal, dtype=np.float64)
        x = x.reshape(len(x), -1)
        if len(x) < 4:
            continue
        x = x - x.mean(axis=0)
        power = np.abs(np.fft.rfft(x, axis=0)) ** 2
        freqs = np.fft.rfftfreq(len(x), d=dt)
        total += float(power[1:].sum())
        high += float(power[freqs > cutoff].sum())
    return high, total


def high_frequency_fraction(signals: Sequence[np.ndarray], dt: float, cutoff: float = 3.0) -> float:
    """Fraction of the signals' power above ``cutoff`` Hz (mean removed, per component).

    ``sum P(f > cutoff) / sum P(f > 0)`` pooled over every component of every signal, with
    ``P`` the periodogram (see :func:`band_power`). For a tip-velocity signal, thrashing and
    one-step jumps show up as power near the Nyquist frequency (10 Hz at 20 Hz control).
    """
    high, total = band_power(signals, dt, cutoff)
    return high / total if total > 0 else float("nan")


def movement_segments(speed: np.ndarray, rest: float = REST_SPEED) -> list[tuple[int, int]]:
    """[start, stop) index ranges where ``speed > rest``, at least ``MIN_SEGMENT`` long."""
    moving = np.concatenate([[False], np.asarray(speed) > rest, [False]])
    edges = np.flatnonzero(np.diff(moving.astype(np.int8)))
    pairs = zip(edges[::2], edges[1::2], strict=True)
    return [(int(a), int(b)) for a, b in pairs if b - a >= MIN_SEGMENT]


def sparc(speed: np.ndarray, dt: float, pad_level: int = 4, cutoff: float = 10.0,
          threshold: float = 0.05) -> float:  # fmt: skip
    """Spectral arc length of one movement's speed profile (Balasubramanian et al., 2015).

    With ``M(f)`` the magnitude of the zero-padded Fourier transform of the speed,
    normalised to ``M(0) = 1``, and ``[0, f_c]`` the band up to ``cutoff`` Hz shrunk to
    the last frequency where ``M >= threshold``::

        SPARC = - integral_0^{f_c} sqrt((1 / f_c)^2 + (dM / df)^2) df

    A single minimum-jerk movement scores about -1.6; every extra sub-movement or tremor
    makes it more negative.
    """
    speed = np.asarray(speed, dtype=np.float64)
    n_fft = 2 ** (math.ceil(math.log2(len(speed))) + pad_level)
    freqs = np.arange(n_fft) / (n_fft * dt)
    magnitude = np.abs(np.fft.fft(speed, n_fft))
    if magnitude.max() <= 0:
        return float("nan")
    magnitude = magnitude / magnitude.max()
    band = freqs <= cutoff
    freqs, magnitude = freqs[band], magnitude[band]
    above = np.flatnonzero(magnitude >= threshold)
    freqs, magnitude = freqs[: above[-1] + 1], magnitude[: above[-1] + 1]
    if len(freqs) < 2:
        return float("nan")
    step_f = np.diff(freqs) / (freqs[-1] - freqs[0])
    return float(-np.sum(np.sqrt(step_f**2 + np.diff(magnitude) ** 2)))


def segment_sparc(positions: np.ndarray, dt: float) -> list[float]:
    """SPARC of every movement segment (between rests) of one path."""
    speed = np.linalg.norm(velocities(positions, dt), axis=1)
    return [sparc(speed[a:b], dt) for a, b in movement_segments(speed)]


def reversal_fraction(positions: np.ndarray, dt: float, min_speed: float = 0.02) -> float:
    """Fraction of steps whose velocity points against the previous one, both at speed.

    A step ``t`` reverses when ``v_t . v_{t-1} < 0`` and both speeds exceed ``min_speed``
    (m/s); the fraction is over all steps with a predecessor.
    """
    v = velocities(positions, dt)
    if len(v) < 2:
        return float("nan")
    fast = np.linalg.norm(v, axis=1) > min_speed
    reverse = (np.sum(v[1:] * v[:-1], axis=1) < 0) & fast[1:] & fast[:-1]
    return float(reverse.mean())


def acceleration_percentile(paths: Sequence[np.ndarray], dt: float, q: float = 99.0) -> float:
    """The ``q``-th percentile of ``|v[t+1] - v[t]| / dt`` pooled over paths (m/s^2)."""
    values = [
        np.linalg.norm(np.diff(velocities(p, dt), axis=0), axis=1) / dt for p in paths if len(p) > 2
    ]
    return float(np.percentile(np.concatenate(values), q)) if values else float("nan")


def residual_variation(values: np.ndarray, features: np.ndarray) -> float:
    """Variation of ``values`` not explained linearly by ``features``, relative to the mean.

    ``sqrt(mean(e_i^2)) / mean(values)`` with ``e_i`` the leave-one-out residuals of an
    ordinary least-squares fit with intercept (``e_i = r_i / (1 - h_ii)``, ``h`` the hat
    matrix): out-of-sample, so a fit with as many features as demos cannot explain the
    variation away. Constant feature columns are dropped; needs more demos than features
    + 2 (NaN otherwise).
    """
    y = np.asarray(values, dtype=np.float64)
    x = np.asarray(features, dtype=np.float64).reshape(len(y), -1)
    x = x[:, np.ptp(x, axis=0) > 1e-9] if x.size else x
    design = np.hstack([np.ones((len(y), 1)), x])
    if len(y) < design.shape[1] + 2:
        return float("nan")
    pinv = np.linalg.pinv(design)
    residual = y - design @ (pinv @ y)
    leverage = np.einsum("ij,ji->i", design, pinv)
    loo = residual / np.maximum(1.0 - leverage, 1e-6)
    return float(np.sqrt(np.mean(loo**2)) / np.mean(y))
