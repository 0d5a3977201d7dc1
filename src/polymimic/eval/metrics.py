"""Evaluation metrics: success rates with intervals and D3IL's behaviour-diversity measures.

Plain functions on sequences and arrays. Nothing here imports an environment or a simulator,
so the same functions score rollouts, datasets and leaderboard submissions alike.

References:
    Jia et al., "Towards Diverse Behaviors: A Benchmark for Imitation Learning with Human
    Demonstrations" (D3IL), ICLR 2024 -- behaviour entropy, context-conditional entropy and the
    KL divergence between rollout and dataset mode distributions.
    Wilson, "Probable inference, the law of succession, and statistical inference", JASA 1927
    -- the score interval for a binomial proportion.
    Efron & Tibshirani, "An Introduction to the Bootstrap", 1993 -- the percentile bootstrap.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np

OTHER_BEHAVIOUR = "other"
"""Label of outcomes that match none of a task's behaviours (the env contract's ``other``)."""


def success_rate(successes: Sequence[bool] | np.ndarray) -> float:
    """Fraction of successful episodes: ``SR = (1/N) sum_i 1[success_i]``.

    Args:
        successes: one boolean per episode.

    Returns:
        The success rate in [0, 1].

    Raises:
        ValueError: if there are no episodes (a rate over nothing is undefined, and a silent
            0.0 would look like a failed policy).
    """
    values = np.asarray(successes, dtype=bool)
    if values.size == 0:
        raise ValueError("success_rate needs at least one episode")
    return float(values.mean())


def _normal_quantile(confidence: float) -> float:
    """Two-sided standard normal quantile z with P(|Z| <= z) = confidence."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial success rate (Wilson 1927).

    With ``p = successes / n`` and ``z`` the two-sided normal quantile of ``confidence``::

        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
        CI     = [centre - half, centre + half]

    Unlike the normal (Wald) interval it stays inside [0, 1] and does not collapse to a point
    at 0/n or n/n, which matters for the small rollout counts of robot evaluation.

    Args:
        successes: number of successful episodes.
        n: number of episodes.
        confidence: coverage of the interval.

    Returns:
        ``(lower, upper)``; ``(0.0, 1.0)`` when ``n == 0`` (no evidence either way).

    Raises:
        ValueError: if ``successes`` is outside ``[0, n]``.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = _normal_quantile(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    # Exact bounds at the extremes: floating error would otherwise give e.g. -1e-17.
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def behaviour_distribution(
    labels: Sequence[Hashable], behaviours: Sequence[Hashable]
) -> dict[str, float]:
    """Empirical distribution of behaviour labels: ``p(b) = count(b) / N``.

    Labels that are not among ``behaviours`` are pooled under ``"other"`` so that the
    fractions always sum to one over the returned keys (when ``N > 0``).

    Args:
        labels: one label per episode (usually only the successful ones, as in D3IL).
        behaviours: the task's behaviour labels, in the order the result should list them.

    Returns:
        ``{behaviour: fraction}`` for every behaviour, then ``"other"``; all zeros when
        ``labels`` is empty.
    """
    known = [str(b) for b in behaviours]
    keys = known if OTHER_BEHAVIOUR in known else [*known, OTHER_BEHAVIOUR]
    counts = Counter(str(label) if str(label) in known else OTHER_BEHAVIOUR for label in labels)
    total = sum(counts.values())
    return {key: (counts[key] / total if total else 0.0) for key in keys}


def _entropy_from_counts(counts: Sequence[int] | np.ndarray, num_behaviours: int) -> float:
    """``-sum_b p(b) log_{|B|} p(b)`` for a vector of counts (zero counts contribute 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0 or num_behaviours <= 1:
        return 0.0
    p = counts[counts > 0] / total
    return float(max(0.0, -(p * np.log(p)).sum() / math.log(num_behaviours)))


def behaviour_entropy(labels: Sequence[Hashable], num_behaviours: int) -> float:
    """D3IL's normalised behaviour entropy (Jia et al., ICLR 2024, Sec. 4)::

        H(beta) = - sum_{b in B} p(b) log_{|B|} p(b)

    with ``p(b)`` the fraction of the given (successful) rollouts that took behaviour ``b``.
    Taking the logarithm to base ``|B|`` normalises it to [0, 1]: 1 when every behaviour is
    equally frequent, 0 when the learner collapsed onto a single behaviour.

    Args:
        labels: behaviour label of each successful rollout (D3IL counts successes only).
        num_behaviours: ``|B|``, the number of behaviours the task admits.

    Returns:
        The entropy in [0, 1]. By convention 0.0 when there are no labels (nothing to be
        diverse about) and when ``num_behaviours == 1`` (``log_1`` is undefined; a
        single-behaviour task has no diversity to measure).

    Raises:
        ValueError: if ``num_behaviours < 1`` or the labels hold more distinct values than
            ``num_behaviours`` (the normalisation would then exceed 1).
    """
    if num_behaviours < 1:
        raise ValueError(f"num_behaviours must be >= 1, got {num_behaviours}")
    counts = Counter(labels)
    if len(counts) > num_behaviours:
        raise ValueError(
            f"{len(counts)} distinct labels {sorted(map(str, counts))} but num_behaviours="
            f"{num_behaviours}; drop labels outside the task's behaviours (e.g. 'other') first"
        )
    return _entropy_from_counts(list(counts.values()), num_behaviours)


def conditional_behaviour_entropy(
    labels: Sequence[Hashable], contexts: Sequence[Hashable], num_behaviours: int
) -> float:
    """D3IL's context-conditional behaviour entropy, a Monte-Carlo estimate over contexts::

        H(beta | s0) ~= (1 / S0) sum_{s0} [ - sum_b p(b | s0) log_{|B|} p(b | s0) ]

    where ``S0`` is the number of distinct initial-state contexts present and ``p(b | s0)``
    is the fraction of the rollouts from context ``s0`` that took behaviour ``b``. It is high
    only when the learner varies its behaviour *from the same start*, which the marginal
    entropy cannot tell apart from a context-to-behaviour lookup table.

    Args:
        labels: behaviour label of each successful rollout.
        contexts: the initial-state context id of each of those rollouts.
        num_behaviours: ``|B|``.

    Returns:
        The average per-context entropy in [0, 1]; 0.0 when there are no labels.

    Raises:
        ValueError: if ``labels`` and ``contexts`` differ in length.
    """
    if len(labels) != len(contexts):
        raise ValueError(f"{len(labels)} labels but {len(contexts)} contexts")
    by_context: dict[Hashable, list[Hashable]] = defaultdict(list)
    for label, context in zip(labels, contexts, strict=True):
        by_context[context].append(label)
    if not by_context:
        return 0.0
    per_context = [behaviour_entropy(group, num_behaviours) for group in by_context.values()]
    return float(np.mean(per_context))


def bootstrap_interval(
    statistic: Callable[[list], float],
    values: Sequence,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(values)`` (Efron & Tibshirani 1993).

    Draws ``n_resamples`` samples of ``len(values)`` items with replacement from ``values``
    using ``numpy.random.default_rng(seed)``, evaluates ``statistic`` on each, and returns the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those estimates.

    Args:
        statistic: maps a list of items to a number (e.g. ``behaviour_entropy`` with
            ``num_behaviours`` bound).
        values: the observed items (labels, ``(label, context)`` pairs, numbers ...).
        n_resamples: bootstrap replicates.
        seed: seed of the resampling, so an interval is reproducible.
        confidence: coverage of the interval.

    Returns:
        ``(lower, upper)``; ``(s, s)`` with ``s = statistic([])`` when ``values`` is empty.
    """
    _normal_quantile(confidence)  # validates the range with the same message
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    items = list(values)
    if not items:
        point = float(statistic([]))
        return point, point
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(items), size=(n_resamples, len(items)))
    estimates = np.array([statistic([items[i] for i in row]) for row in indices])
    alpha = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(estimates, [alpha, 1.0 - alpha])
    return float(lower), float(upper)


def behaviour_entropy_interval(
    labels: Sequence[Hashable],
    num_behaviours: int,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of :func:`behaviour_entropy` over the rollouts.

    Resamples the successful rollouts' labels with replacement (see
    :func:`bootstrap_interval`). The plug-in entropy is biased low at small N, so the
    interval can sit below the point estimate; it still shows how many rollouts the number
    rests on, which is what REFERENCES.md asks to report.

    Returns:
        ``(lower, upper)`` in [0, 1]; ``(0.0, 0.0)`` when there are no labels.
    """

    def entropy(sample: list) -> float:
        return behaviour_entropy(sample, num_behaviours)

    return bootstrap_interval(entropy, labels, n_resamples, seed, confidence)


def _as_aligned_arrays(
    p: Mapping[str, float] | Sequence[float] | np.ndarray,
    q: Mapping[str, float] | Sequence[float] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Two probability vectors over the same support (union of keys for mappings)."""
    if isinstance(p, Mapping) != isinstance(q, Mapping):
        raise TypeError("p and q must both be mappings or both be sequences")
    if isinstance(p, Mapping) and isinstance(q, Mapping):
        keys = list(dict.fromkeys([*p, *q]))
        p_arr = np.array([p.get(k, 0.0) for k in keys], dtype=np.float64)
        q_arr = np.array([q.get(k, 0.0) for k in keys], dtype=np.float64)
    else:
        p_arr = np.asarray(p, dtype=np.float64)
        q_arr = np.asarray(q, dtype=np.float64)
    if p_arr.shape != q_arr.shape or p_arr.ndim != 1:
        raise ValueError(f"p and q must be 1-D of equal length, got {p_arr.shape}, {q_arr.shape}")
    for name, arr in (("p", p_arr), ("q", q_arr)):
        if (arr < 0).any() or arr.sum() <= 0:
            raise ValueError(f"{name} must be non-negative with a positive sum, got {arr}")
    return p_arr / p_arr.sum(), q_arr / q_arr.sum()


def kl_divergence(
    p: Mapping[str, float] | Sequence[float] | np.ndarray,
    q: Mapping[str, float] | Sequence[float] | np.ndarray,
    eps: float = 1e-12,
) -> float:
    """Kullback-Leibler divergence between two mode distributions, in nats::

        KL(p || q) = sum_b p(b) ln( p(b) / max(q(b), eps) )

    As in D3IL's Sorting/Stacking results, ``p`` is the rollouts' mode distribution and ``q``
    the dataset's: the divergence is large when the learner takes behaviours the data rarely
    shows, or over-weights one. Terms with ``p(b) = 0`` contribute 0; ``eps`` keeps a mode
    the reference never shows finite (about ``p(b) * 27.6`` nats at the default) instead of
    infinite. Both inputs are normalised to sum to one first.

    Args:
        p: rollout distribution, a ``{label: probability}`` mapping or a vector.
        q: reference (dataset) distribution, of the same kind; mappings are aligned by key
            and a key missing from one side counts as probability 0.
        eps: floor on ``q``.

    Returns:
        ``KL(p || q) >= 0``.
    """
    p_arr, q_arr = _as_aligned_arrays(p, q)
    support = p_arr > 0
    ratio = p_arr[support] / np.maximum(q_arr[support], eps)
    return float(max(0.0, (p_arr[support] * np.log(ratio)).sum()))
