"""How far apart a style pair acts: action disagreement at matched states.

"Conflicting" styles act differently in the same state. Measured per task and style
distance ``d`` (``datasets.style_pairs``) like this:

1. For each episode seed, operator ``a`` and operator ``b`` at distance ``d`` each record
   one *expert* demo from the same initial state: the noise-free hand (``EXPERT_MOTOR``),
   so what differs is the style, not motor noise (with the pair's own ``better`` hand,
   two demos of one style already disagree by about as much as the full pair: noise
   makes each demo's actions differ at every step). ``b`` is given ``a``'s operator seed,
   so both draw the same intention, change of mind and route jitter: at ``d = 0`` the
   two demos are identical and the measure is exactly 0.
2. Observations are flattened (every key, sorted by name) and standardised per dimension
   with the mean and standard deviation of ``a``'s demos over all seeds (a fixed scale
   for every ``d``; dimensions constant in ``a``'s demos are dropped).
3. Each state of one demo is matched to its nearest state (Euclidean) in the other demo
   of the same seed; the disagreement is the mean absolute action difference at matched
   states, per action component, averaged over both directions (b to a and a to b) and
   over seeds.

Simple on purpose: no learned classifier, and it needs only the two demos of each seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from polymimic.datasets.episode import Episode
from polymimic.datasets.style_pairs import style_pair_spec
from polymimic.operators import record_episode
from polymimic.operators.base import Skill
from polymimic.operators.motor import EXPERT_MOTOR

CHUNK = 128  # states per block of the exact distance matrix (memory: CHUNK x T x D)


def flat_obs(episode: Episode) -> np.ndarray:
    """(T, D): every observation key of each step, keys in sorted order."""
    parts = [np.asarray(episode.obs[k], dtype=np.float64).reshape(len(episode), -1)
             for k in sorted(episode.obs)]  # fmt: skip
    return np.concatenate(parts, axis=1)


def _one_way(x: np.ndarray, y: np.ndarray, ax: np.ndarray, ay: np.ndarray) -> float:
    """Mean |a_x - a_y(nearest y state)| over x's states, per action component.

    Distances are exact differences (chunked), not the expanded |x|^2 + |y|^2 - 2xy, whose
    rounding would match a state to a near-copy of itself; exact ties (a hand at rest
    repeats its observation while its action changes) go to the state nearest in time.
    """
    nearest = np.empty(len(x), dtype=np.int64)
    lag = np.arange(len(y), dtype=np.float64)
    for start in range(0, len(x), CHUNK):
        rows = x[start : start + CHUNK]
        squared = ((rows[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        steps = np.arange(start, start + len(rows), dtype=np.float64)[:, None]
        tied = squared <= squared.min(axis=1, keepdims=True)
        nearest[start : start + len(rows)] = np.argmin(
            np.where(tied, np.abs(lag[None, :] - steps), np.inf), axis=1
        )
    return float(np.abs(ax - ay[nearest]).mean())


def matched_disagreement(
    pairs: Sequence[tuple[Episode, Episode]], mean: np.ndarray, std: np.ndarray
) -> list[float]:
    """Per pair of demos (a, b) of one seed: the symmetric matched-state disagreement."""
    keep = std > 1e-9
    values = []
    for ep_a, ep_b in pairs:
        za = ((flat_obs(ep_a) - mean) / np.where(keep, std, 1.0))[:, keep]
        zb = ((flat_obs(ep_b) - mean) / np.where(keep, std, 1.0))[:, keep]
        aa, ab = ep_a.actions.astype(np.float64), ep_b.actions.astype(np.float64)
        values.append(0.5 * (_one_way(zb, za, ab, aa) + _one_way(za, zb, aa, ab)))
    return values


def action_disagreement(
    task: str, distances: Iterable[float], seeds: Iterable[int]
) -> dict[str, Any]:
    """Matched-state action disagreement of ``task``'s style pair at each distance.

    Returns:
        ``{"task", "seeds", "distances": {d: {"mean", "per_seed", "b_categorical"}}}``;
        ``b_categorical`` counts which style's categorical fields b's demos used.
    """
    seeds, distances = list(seeds), [float(d) for d in distances]
    spec = style_pair_spec(task, 0.0)
    env = gym.make(spec.env_id, **spec.env_kwargs)
    try:
        expert = Skill("better", EXPERT_MOTOR)
        base = dataclasses.replace(spec.operators[0], skill=expert)
        demos_a = [record_episode(env, base, seed) for seed in seeds]
        stacked = np.concatenate([flat_obs(ep) for ep in demos_a])
        mean, std = stacked.mean(0), stacked.std(0)
        result: dict[str, Any] = {"task": task, "seeds": seeds, "distances": {}}
        for d in distances:
            other = style_pair_spec(task, d).operators[1]
            # The same draws as a, and the expert hand (step 1).
            matched = dataclasses.replace(other, seed=base.seed, skill=expert)
            demos_b = [record_episode(env, matched, seed) for seed in seeds]
            per_seed = matched_disagreement(list(zip(demos_a, demos_b, strict=True)), mean, std)
            used = [str(ep.attrs.get("style_categorical", ep.attrs["style"])) for ep in demos_b]
            result["distances"][d] = {
                "mean": float(np.mean(per_seed)),
                "per_seed": per_seed,
                "b_categorical": {name: used.count(name) for name in sorted(set(used))},
            }
    finally:
        env.close()
    return result
