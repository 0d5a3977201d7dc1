"""Intervals for the evaluation metrics: Wilson, bootstraps and Dirichlet posteriors.

Plain numpy on top of the point estimates of :mod:`polymimic.eval.metrics` (which re-exports
every public name here lazily, so ``metrics.wilson_interval`` etc. keep working); nothing
here imports an environment or a simulator. Seeded ``numpy.random.default_rng`` throughout,
so every interval is reproducible.

References:
    Wilson, "Probable inference, the law of succession, and statistical inference", JASA 1927
    -- the score interval for a binomial proportion.
    Efron & Tibshirani, "An Introduction to the Bootstrap", 1993 -- the percentile bootstrap.
    Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice"
    (rliable), NeurIPS 2021 -- the stratified bootstrap over runs within each task and the
    interquartile mean (IQM) as a robust aggregate across runs.
    Jeffreys, "An invariant form for the prior probability in estimation problems", 1946;
    Brown, Cai & DasGupta, "Interval Estimation for a Binomial Proportion", Stat. Sci. 2001
    -- the Jeffreys prior Dir(1/2, ..., 1/2) and the good coverage of its intervals.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable, Sequence
from typing import Literal

import numpy as np

from polymimic.eval import metrics

JEFFREYS_PRIOR = 0.5
"""Dirichlet concentration of the Jeffreys prior, Dir(1/2, ..., 1/2)."""


def check_confidence(confidence: float) -> None:
    """Raise ``ValueError`` unless ``0 < confidence < 1``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def percentile_bounds(estimates: np.ndarray, confidence: float) -> tuple[float, float]:
    """The ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles of ``estimates``."""
    check_confidence(confidence)
    alpha = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(np.asarray(estimates, dtype=np.float64), [alpha, 1.0 - alpha])
    return float(lower), float(upper)


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


def design_effect(outcomes_by_context: Sequence[Sequence[float]]) -> float:
    """Kish's design effect of R rollouts per context (cluster sampling, Kish 1965)::

        DEFF = 1 + (R - 1) * ICC
        ICC  = (MSB - MSW) / (MSB + (R - 1) * MSW), clipped to [0, 1]   (one-way ANOVA)
        MSB  = R * sum_c (mean_c - mean)^2 / (S - 1)
        MSW  = sum_c sum_r (y_cr - mean_c)^2 / (S * (R - 1))

    The R rollouts of one context start from the same state, so they are correlated: a
    deterministic policy repeats one outcome R times (ICC = 1, DEFF = R) and its N = S*R
    episodes carry only S observations' worth of evidence. With no spread at all (every
    outcome equal) the ICC cannot be estimated and is taken as 1, the cautious choice.

    Args:
        outcomes_by_context: S lists of R outcomes (0/1 successes), equal R.
    """
    groups = [np.asarray(g, dtype=np.float64) for g in outcomes_by_context]
    s, r = len(groups), len(groups[0]) if groups else 0
    if r <= 1 or s <= 1 or any(len(g) != r for g in groups):
        return float(max(r, 1)) if s == 1 else 1.0
    means = np.array([g.mean() for g in groups])
    msb = r * float(((means - means.mean()) ** 2).sum()) / (s - 1)
    msw = float(sum(((g - g.mean()) ** 2).sum() for g in groups)) / (s * (r - 1))
    if msb + (r - 1) * msw == 0.0:
        return float(r)
    icc = min(max((msb - msw) / (msb + (r - 1) * msw), 0.0), 1.0)
    return 1.0 + (r - 1) * icc


def clustered_success_interval(
    successes_by_context: Sequence[Sequence[bool]], confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson interval of the success rate with the effective sample size ``N / DEFF``.

    The usual correction for cluster sampling: the Wilson score interval (Wilson 1927) of
    the pooled rate ``p`` computed as if ``N / DEFF`` independent episodes had been seen
    (``design_effect``). With independent rollouts (DEFF = 1) it is the plain Wilson
    interval over all episodes; with a deterministic policy it is the Wilson interval over
    the S contexts.
    """
    outcomes = [np.asarray(g, dtype=np.float64) for g in successes_by_context]
    total = sum(len(g) for g in outcomes)
    if total == 0:
        return 0.0, 1.0
    rate = float(sum(g.sum() for g in outcomes)) / total
    n_eff = total / design_effect(outcomes)
    return wilson_interval(rate * n_eff, n_eff, confidence)


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
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those estimates. A
    plug-in statistic never leaves the range of values the sample can produce, so this
    interval cannot give weight to outcomes the sample lacks.

    Args:
        statistic: maps a list of items to a number.
        values: the observed items (labels, ``(label, context)`` pairs, numbers ...).
        n_resamples: bootstrap replicates.
        seed: seed of the resampling, so an interval is reproducible.
        confidence: coverage of the interval.

    Returns:
        ``(lower, upper)``; ``(s, s)`` with ``s = statistic([])`` when ``values`` is empty.
    """
    check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    items = list(values)
    if not items:
        point = float(statistic([]))
        return point, point
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(items), size=(n_resamples, len(items)))
    estimates = np.array([statistic([items[i] for i in row]) for row in indices])
    return percentile_bounds(estimates, confidence)


def dirichlet_entropy_interval(
    counts: Sequence[int] | np.ndarray,
    num_behaviours: int | None = None,
    prior: float = JEFFREYS_PRIOR,
    n_samples: int = 4000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Equal-tailed credible interval of the normalised entropy under a Dirichlet posterior.

    With ``n_b`` successes of behaviour ``b`` among the ``|B|`` behaviours (unseen ones
    count 0) and a symmetric prior ``Dir(prior, ..., prior)``, the posterior of the
    behaviour distribution is ``Dir(n_1 + prior, ..., n_|B| + prior)``. Draws ``n_samples``
    vectors ``p`` from it (``numpy.random.default_rng(seed)``), computes
    ``H(p) = -sum_b p(b) log_{|B|} p(b)`` for each, and returns their percentile bounds.

    Unlike the bootstrap, every behaviour -- observed or not -- keeps posterior mass, so the
    interval can rise above the plug-in estimate (which is biased low at small N). Being
    equal-tailed it never reaches exactly 1: for a uniform policy (8 successes, |B| = 4) the
    upper bound is typically 0.92-0.99.

    Args:
        counts: successes per behaviour (any order); shorter than ``|B|`` is zero-padded.
        num_behaviours: ``|B|``; ``len(counts)`` when None.
        prior: symmetric Dirichlet concentration; the default 0.5 is the Jeffreys prior.
        n_samples: posterior draws.
        seed: seed of the draws.
        confidence: posterior mass of the interval.

    Returns:
        ``(lower, upper)`` in [0, 1]; ``(0.0, 0.0)`` when ``|B| <= 1``.
    """
    check_confidence(confidence)
    counts_arr = np.asarray(counts, dtype=np.float64)
    num_b = counts_arr.size if num_behaviours is None else num_behaviours
    if counts_arr.ndim != 1 or (counts_arr < 0).any() or counts_arr.size > num_b:
        raise ValueError(f"counts must be 1-D, non-negative, at most |B|={num_b}: {counts_arr}")
    if prior <= 0 or n_samples < 1:
        raise ValueError(f"need prior > 0 and n_samples >= 1, got {prior}, {n_samples}")
    if num_b <= 1:
        return 0.0, 0.0
    alphas = np.concatenate([counts_arr, np.zeros(num_b - counts_arr.size)]) + prior
    samples = np.random.default_rng(seed).dirichlet(alphas, size=n_samples)
    return percentile_bounds(metrics.normalised_entropy(samples, num_b), confidence)


def bootstrap_mean_interval(
    values: Sequence[float] | np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (vectorised).

    Used to resample whole units (e.g. test contexts) whose per-unit value is already
    computed: the mean of a resample of units is the mean of their values.

    Returns:
        ``(lower, upper)``; ``(0.0, 0.0)`` when ``values`` is empty.
    """
    check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_resamples, arr.size))].mean(axis=1)
    return percentile_bounds(means, confidence)


def interquartile_mean(scores: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    """Interquartile mean (rliable's ``aggregate_iqm``): the mean of the middle 50 %.

    Sorts the values pooled over ``axis`` (all of them by default), drops
    ``floor(0.25 * N)`` from each end and averages the rest -- the same cut as
    ``scipy.stats.trim_mean(x, 0.25)``. E.g. ``[0, 1, 2, 3, 4, 5, 6, 100]``: N = 8, drop 2
    from each end, IQM = mean(2, 3, 4, 5) = 3.5.
    """
    arr = np.asarray(scores, dtype=np.float64)
    axes = tuple(range(arr.ndim)) if axis is None else axis
    keep = [d for d in range(arr.ndim) if d not in axes]
    pooled = np.transpose(arr, [*keep, *axes]).reshape(*[arr.shape[d] for d in keep], -1)
    n = pooled.shape[-1]
    cut = int(0.25 * n)
    return np.sort(pooled, axis=-1)[..., cut : n - cut].mean(axis=-1)


def across_seed_interval(
    scores: np.ndarray | Sequence[Sequence[float]],
    statistic: Literal["mean", "iqm"] = "mean",
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Stratified percentile bootstrap over training seeds (rliable's method, Agarwal 2021).

    ``scores[i, j]`` is the score of training seed ``i`` on stratum ``j``: a task (the
    suite-level aggregate rliable computes) or, for one task, a test context (per-seed,
    per-context success, so that seeds x contexts are resampled). Each replicate redraws
    the ``num_seeds`` rows *independently within every column* (stratum) with replacement,
    so every stratum keeps its share of the aggregate; the statistic is then evaluated on
    the replicate. The point estimate is the statistic of ``scores`` itself.

    Statistic: ``"mean"`` (default) -- ``(1/(n m)) sum_ij scores[i, j]``, what D3IL's tables
    report across seeds, so numbers stay comparable with the paper; ``"iqm"`` -- the
    interquartile mean over all ``n m`` values (:func:`interquartile_mean`), rliable's robust
    aggregate for many tasks x seeds.

    Args:
        scores: array ``(num_seeds, num_strata)``; a 1-D array is one stratum.
        statistic: ``"mean"`` or ``"iqm"``.
        n_resamples: bootstrap replicates (seeded ``numpy.random.default_rng(seed)``).
        seed: seed of the resampling.
        confidence: coverage of the interval.

    Returns:
        ``(point, lower, upper)``.

    Raises:
        ValueError: on an empty or non-finite matrix or an unknown statistic.
    """
    check_confidence(confidence)
    arr = np.asarray(scores, dtype=np.float64)
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"scores must be a finite non-empty (seeds, strata) matrix: {arr}")
    if statistic not in ("mean", "iqm"):
        raise ValueError(f"statistic must be 'mean' or 'iqm', got {statistic!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    num_seeds, num_strata = arr.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, num_seeds, size=(n_resamples, num_seeds, num_strata))
    replicates = arr[rows, np.arange(num_strata)]  # (n_resamples, num_seeds, num_strata)
    if statistic == "mean":
        point, estimates = arr.mean(), replicates.mean(axis=(1, 2))
    else:
        point, estimates = interquartile_mean(arr), interquartile_mean(replicates, axis=(1, 2))
    lower, upper = percentile_bounds(estimates, confidence)
    return float(point), lower, upper


def behaviour_entropy_interval(
    labels: Sequence[Hashable],
    num_behaviours: int,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    method: Literal["dirichlet", "bootstrap"] = "dirichlet",
    prior: float = JEFFREYS_PRIOR,
) -> tuple[float, float]:
    """Interval for ``metrics.behaviour_entropy`` of the successful, in-task rollouts.

    ``method="dirichlet"`` (default): a Bayesian credible interval. Posterior
    ``Dir(n_1 + prior, ..., n_|B| + prior)`` over all ``|B|`` behaviours (unseen ones have
    ``n_b = 0``), prior Jeffreys ``Dir(1/2, ..., 1/2)`` unless ``prior`` says otherwise;
    ``n_resamples`` seeded posterior draws, percentiles of their normalised entropies (see
    :func:`dirichlet_entropy_interval`). It gives mass to behaviours the sample missed, so it
    can rise above the plug-in estimate: 3:2 successes over |B| = 4 give a plug-in 0.485 but
    the interval (0.41, 0.93). With no labels it is the prior's interval (no evidence).

    ``method="bootstrap"``: percentile bootstrap of the labels (see
    :func:`bootstrap_interval`); it stays inside what the sample can produce (``(0, 0)``
    when one behaviour was seen), so it understates the uncertainty at small N.

    Returns:
        ``(lower, upper)`` in [0, 1].
    """
    if method == "bootstrap":
        return bootstrap_interval(
            lambda sample: metrics.behaviour_entropy(sample, num_behaviours),
            labels,
            n_resamples,
            seed,
            confidence,
        )
    if method != "dirichlet":
        raise ValueError(f"method must be 'dirichlet' or 'bootstrap', got {method!r}")
    counts = metrics.counts_over_behaviours(labels, num_behaviours)
    return dirichlet_entropy_interval(counts, num_behaviours, prior, n_resamples, seed, confidence)


def conditional_entropy_interval(
    labels: Sequence[Hashable],
    contexts: Sequence[Hashable],
    num_behaviours: int,
    all_contexts: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Context-resampling percentile bootstrap of D3IL's conditional entropy.

    Each replicate draws ``S`` whole contexts with replacement from the ``S`` test contexts
    (``all_contexts``, zero-success ones included) and recomputes
    ``(1/S) sum_{s0 drawn} H(beta | s0)`` with each context's own successes. It captures
    the variation between contexts, not the sampling noise of the few rollouts within one.

    Args:
        labels, contexts, num_behaviours, all_contexts: as in
            ``metrics.conditional_behaviour_entropy``.
        n_resamples: bootstrap replicates; seed: their seed; confidence: coverage.

    Returns:
        ``(lower, upper)`` in [0, 1]; ``(0.0, 0.0)`` when there are no contexts.
    """
    per_context = metrics.per_context_entropies(labels, contexts, num_behaviours, all_contexts)
    return bootstrap_mean_interval(per_context, n_resamples, seed, confidence)
