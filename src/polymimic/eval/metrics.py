"""Evaluation metrics: success rates with intervals and D3IL's behaviour-diversity measures.

Plain functions on sequences and arrays. Nothing here imports an environment or a simulator,
so the same functions score rollouts, datasets and leaderboard submissions alike. Intervals
live in :mod:`polymimic.eval.intervals` and are re-exported here.

References:
    Jia et al., "Towards Diverse Behaviors: A Benchmark for Imitation Learning with Human
    Demonstrations" (D3IL), ICLR 2024 -- behaviour entropy, context-conditional entropy, the
    KL divergence between rollout and dataset mode distributions, and the combined
    model-selection scores.
    Miller, "Note on the bias of information estimates", 1955 -- the plug-in entropy's
    downward bias, about (m - 1) / (2 N) nats with m observed categories.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from polymimic.envs.labels import OTHER_BEHAVIOUR  # re-exported; envs own the label

# Intervals live in polymimic.eval.intervals, which imports this module; they are re-exported
# lazily (PEP 562) so that ``metrics.wilson_interval`` keeps working without an import cycle.
_INTERVAL_EXPORTS = frozenset(
    {
        "JEFFREYS_PRIOR", "across_seed_interval", "behaviour_entropy_interval",
        "bootstrap_interval", "bootstrap_mean_interval", "conditional_entropy_interval",
        "dirichlet_entropy_interval", "interquartile_mean", "wilson_interval",
    }
)


def __getattr__(name: str) -> Any:
    """Resolve the re-exported interval names on first use (see ``_INTERVAL_EXPORTS``)."""
    if name in _INTERVAL_EXPORTS:
        from polymimic.eval import intervals

        return getattr(intervals, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # the interval names of _INTERVAL_EXPORTS are also importable from here
    "D3IL_TASK_FAMILIES", "DATASET_PSEUDOCOUNT", "KL_EPS", "MIN_SUCCESSES_FOR_ENTROPY",
    "OTHER_BEHAVIOUR", "behaviour_distribution", "behaviour_entropy",
    "conditional_behaviour_entropy", "counts_over_behaviours", "d3il_score", "d3il_task_family",
    "dataset_behaviour_distribution", "enough_successes", "entropy_or_none", "kl_divergence",
    "min_successes_for_entropy", "normalised_entropy", "per_context_entropies", "success_rate",
]

# Entropies rest on at least max(MIN_SUCCESSES_FOR_ENTROPY, |B|) successful rollouts, else
# they are reported as None ("n/a"). Why both terms:
#  * |B|: with N < |B| successes at most N behaviours can appear, so the plug-in entropy is
#    capped at log_|B| N < 1 -- it measures the sample size, not the policy. At N >= |B| the
#    data also outweigh the Jeffreys prior of the credible interval (|B| / 2 pseudo-counts).
#  * 5: for the two-behaviour tasks (Sort2, Align) the |B| term alone would accept N = 2,
#    where the entropy can only be 0 or 1. Below 5 the plug-in takes at most three values
#    and Miller's bias (m - 1) / (2 N ln |B|) is 0.18 or more of the [0, 1] range.
MIN_SUCCESSES_FOR_ENTROPY = 5


def normalised_entropy(probabilities: np.ndarray, num_behaviours: int) -> np.ndarray:
    """``-sum_b p(b) log_{|B|} p(b)`` along the last axis, with ``0 log 0 = 0``.

    Args:
        probabilities: array ``(..., K)`` whose last axis sums to one (``K <= |B|``).
        num_behaviours: ``|B|``, the base of the logarithm.

    Returns:
        Array of shape ``probabilities.shape[:-1]``; zeros when ``num_behaviours <= 1``.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if num_behaviours <= 1:
        return np.zeros(p.shape[:-1])
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.maximum(0.0, -terms.sum(axis=-1) / math.log(num_behaviours))


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


def counts_over_behaviours(labels: Sequence[Hashable], num_behaviours: int) -> np.ndarray:
    """Successes per behaviour, zero-padded to ``|B|`` entries (label order is irrelevant)."""
    if num_behaviours < 1:
        raise ValueError(f"num_behaviours must be >= 1, got {num_behaviours}")
    counts = Counter(labels)
    if len(counts) > num_behaviours:
        raise ValueError(
            f"{len(counts)} distinct labels {sorted(map(str, counts))} but num_behaviours="
            f"{num_behaviours}; drop labels outside the task's behaviours (e.g. 'other') first"
        )
    padded = np.zeros(num_behaviours)
    padded[: len(counts)] = list(counts.values())
    return padded


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
        single-behaviour task has no diversity to measure). Use :func:`entropy_or_none` to
        report None ("n/a") when there are too few successes to trust the number.

    Raises:
        ValueError: if ``num_behaviours < 1`` or the labels hold more distinct values than
            ``num_behaviours`` (the normalisation would then exceed 1).
    """
    counts = counts_over_behaviours(labels, num_behaviours)
    if counts.sum() == 0:
        return 0.0
    return float(normalised_entropy(counts / counts.sum(), num_behaviours))


def conditional_behaviour_entropy(
    labels: Sequence[Hashable],
    contexts: Sequence[Hashable],
    num_behaviours: int,
    all_contexts: Sequence[Hashable] | None = None,
) -> float:
    """D3IL's context-conditional behaviour entropy (Jia et al., ICLR 2024, Sec. 4)::

        H(beta | s0) ~= (1 / S) sum_{s0} [ - sum_b p(b | s0) log_{|B|} p(b | s0) ]

    averaged over *all* ``S`` test contexts, where ``p(b | s0)`` is the fraction of the
    successful rollouts from ``s0`` that took behaviour ``b``; a context without a successful
    rollout contributes 0. It is high only when the learner varies its behaviour *from the
    same start*, which the marginal entropy cannot tell apart from a context-to-behaviour
    lookup table. Example: S = 3, context 0 has successes ``a, b`` (1.0 over |B| = 2),
    context 1 ``a, a`` (0.0), context 2 none (0.0): ``H = 1/3``.

    Args:
        labels: behaviour label of each successful, in-task rollout (no ``"other"``).
        contexts: the initial-state context id of each of those rollouts.
        num_behaviours: ``|B|``.
        all_contexts: the protocol's ``S`` test contexts (duplicates ignored), including those
            where nothing succeeded. If None, the distinct values of ``contexts`` are used:
            an approximation that drops zero-success contexts and so overestimates D3IL's
            value (1/2 instead of 1/3 in the example above).

    Returns:
        The average per-context entropy in [0, 1]; 0.0 when there are no contexts at all.

    Raises:
        ValueError: if ``labels`` and ``contexts`` differ in length, or a context is missing
            from ``all_contexts``.
    """
    per_context = per_context_entropies(labels, contexts, num_behaviours, all_contexts)
    return float(per_context.mean()) if per_context.size else 0.0


def per_context_entropies(
    labels: Sequence[Hashable],
    contexts: Sequence[Hashable],
    num_behaviours: int,
    all_contexts: Sequence[Hashable] | None,
) -> np.ndarray:
    """Entropy of the successes of each context (0 for those without any), one per context."""
    if len(labels) != len(contexts):
        raise ValueError(f"{len(labels)} labels but {len(contexts)} contexts")
    by_context: dict[Hashable, list[Hashable]] = defaultdict(list)
    for label, context in zip(labels, contexts, strict=True):
        by_context[context].append(label)
    universe = list(dict.fromkeys(contexts if all_contexts is None else all_contexts))
    missing = set(by_context) - set(universe)
    if missing:
        raise ValueError(f"contexts {sorted(map(str, missing))} are not in all_contexts")
    return np.array(
        [behaviour_entropy(by_context.get(c, []), num_behaviours) for c in universe],
        dtype=np.float64,
    )


def min_successes_for_entropy(num_behaviours: int) -> int:
    """Fewest successes an entropy is reported on: ``max(MIN_SUCCESSES_FOR_ENTROPY, |B|)``.

    See the comment at :data:`MIN_SUCCESSES_FOR_ENTROPY` for the reasons.
    """
    return max(MIN_SUCCESSES_FOR_ENTROPY, num_behaviours)


def enough_successes(num_successes: int, num_behaviours: int) -> bool:
    """Whether ``num_successes >= min_successes_for_entropy(num_behaviours)``."""
    return num_successes >= min_successes_for_entropy(num_behaviours)


def entropy_or_none(
    labels: Sequence[Hashable],
    num_behaviours: int,
    contexts: Sequence[Hashable] | None = None,
    all_contexts: Sequence[Hashable] | None = None,
) -> float | None:
    """The behaviour entropy, or None ("n/a") when it rests on too few successes.

    Returns None if ``len(labels) < min_successes_for_entropy(num_behaviours)``; otherwise
    :func:`behaviour_entropy` when ``contexts`` is None, else
    :func:`conditional_behaviour_entropy` (D3IL's rule, over ``all_contexts``). Note that the
    conditional entropy also needs several rollouts per context (one success per context
    always gives 0); choosing that count is the evaluation protocol's job.

    Args:
        labels: behaviour label of each successful, in-task rollout.
        num_behaviours: ``|B|``.
        contexts: the context of each of those rollouts, for the conditional entropy.
        all_contexts: the protocol's test contexts (see :func:`conditional_behaviour_entropy`).
    """
    if not enough_successes(len(labels), num_behaviours):
        return None
    if contexts is None:
        return behaviour_entropy(labels, num_behaviours)
    return conditional_behaviour_entropy(labels, contexts, num_behaviours, all_contexts)


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
        if (arr < 0).any() or not np.isfinite(arr).all() or arr.sum() <= 0:
            raise ValueError(f"{name} must be finite, non-negative, with a positive sum: {arr}")
    return p_arr / p_arr.sum(), q_arr / q_arr.sum()


# Additive smoothing of the reference distribution inside kl_divergence. Tiny on purpose:
# it only keeps a behaviour the reference never shows finite (about p(b) * 27.6 nats).
# Build the reference with dataset_behaviour_distribution, whose Laplace pseudo-count is
# the count-based smoothing rule; this eps then changes nothing visible.
KL_EPS = 1e-12
DATASET_PSEUDOCOUNT = 1.0  # Laplace's rule of succession: add one demo of every behaviour


def kl_divergence(
    p: Mapping[str, float] | Sequence[float] | np.ndarray,
    q: Mapping[str, float] | Sequence[float] | np.ndarray,
    eps: float = KL_EPS,
) -> float:
    """``KL(rollouts || dataset)`` between two mode distributions, in nats::

        q_eps(b)  = (q(b) + eps) / (1 + K eps)          (K = size of the aligned support)
        KL(p || q) = sum_b p(b) ln( p(b) / q_eps(b) )

    Direction as in D3IL's Sorting/Stacking results: ``p`` is the rollouts' mode distribution
    and ``q`` the dataset's, so the divergence is large when the learner takes behaviours the
    data rarely shows, or over-weights one. Both inputs are normalised to sum to one first;
    terms with ``p(b) = 0`` contribute 0. The additive ``eps`` (then renormalised, so
    ``q_eps`` is a distribution) keeps a behaviour the dataset never shows finite but large,
    ``p(b) ln(p(b) / eps)``, instead of infinite.

    Args:
        p: rollout distribution, a ``{label: probability}`` mapping or a vector (counts ok).
        q: dataset distribution, of the same kind (ideally from
            :func:`dataset_behaviour_distribution`); mappings are aligned by key and a key
            missing from one side counts as probability 0.
        eps: additive smoothing of ``q`` (``>= 0``; 0 gives ``inf`` for unseen modes).

    Returns:
        ``KL(p || q) >= 0``.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    p_arr, q_arr = _as_aligned_arrays(p, q)
    q_eps = (q_arr + eps) / (1.0 + q_arr.size * eps)
    support = p_arr > 0
    with np.errstate(divide="ignore"):
        terms = p_arr[support] * np.log(p_arr[support] / q_eps[support])
    return float(max(0.0, terms.sum()))


def dataset_behaviour_distribution(
    labels: Sequence[Hashable],
    behaviours: Sequence[Hashable] | None = None,
    pseudocount: float = DATASET_PSEUDOCOUNT,
) -> dict[str, float]:
    """The dataset's mode distribution, the reference ``q`` of :func:`kl_divergence`::

        q(b) = (n_b + c) / (N + K c)      (Laplace's rule with the default c = 1)

    over ``K`` keys: the task's ``behaviours`` then ``"other"`` (unknown labels are pooled
    under it, as in :func:`behaviour_distribution`), or only the labels seen when
    ``behaviours`` is None (then unseen behaviours get no pseudo-count). The pseudo-count
    makes a behaviour the dataset lacks cost about ``p(b) ln(p(b) (N + K))`` nats in the KL
    instead of infinity.

    Pass the labels of the SUCCESSFUL TRAINING demos only (``mask/train`` episodes whose
    ``success`` is True): the learner is compared with what it was trained to imitate. The
    caller does that filtering.

    Returns:
        ``{key: probability}``.

    Raises:
        ValueError: if ``pseudocount < 0``, or the distribution is empty (no labels and no
            pseudo-counts).
    """
    if pseudocount < 0:
        raise ValueError(f"pseudocount must be >= 0, got {pseudocount}")
    if behaviours is None:
        keys = list(dict.fromkeys(str(label) for label in labels))
    else:
        known = [str(b) for b in behaviours]
        keys = known if OTHER_BEHAVIOUR in known else [*known, OTHER_BEHAVIOUR]
    counts = Counter(label if label in keys else OTHER_BEHAVIOUR for label in map(str, labels))
    total = sum(counts.values()) + pseudocount * len(keys)
    if total <= 0:
        raise ValueError("no labels and no pseudo-counts: the distribution is undefined")
    return {key: (counts[key] + pseudocount) / total for key in keys}


D3IL_TASK_FAMILIES: dict[str, str] = {
    "polymimic/Avoid-v1": "avoiding",
    "polymimic/Push-v1": "pushing",
    "polymimic/Align-v1": "aligning",
    "polymimic/Sort2-v1": "sorting",
    "polymimic/Sort4-v1": "sorting",
    "polymimic/Sort6-v1": "sorting",
    "polymimic/Stack-v1": "stacking",
}
"""polymimic task id -> the D3IL task it reproduces."""


def d3il_task_family(env_id: str) -> str | None:
    """The D3IL task family of a polymimic task id, or None for a task D3IL lacks."""
    return D3IL_TASK_FAMILIES.get(env_id)


def d3il_score(
    task_family: str,
    success_rate: float | None,
    entropy: float | None,
    kl: float | None = None,
) -> float | None:
    """D3IL's combined model-selection score (Jia et al., ICLR 2024)::

        avoiding:           0.8 * SR + 0.2 * H
        pushing, aligning:  0.5 * (SR + H)
        sorting:            SR - KL

    ``H`` is the entropy the task reports (the context-conditional one where contexts vary).
    D3IL defines no combined score for stacking: it reports SR, entropy and KL separately,
    so for ``"stacking"`` this returns None rather than inventing a weighting.

    Args:
        task_family: a family (``"avoiding"`` ...) or a polymimic task id
            (``"polymimic/Sort4-v1"``), mapped by :data:`D3IL_TASK_FAMILIES`.
        success_rate: SR in [0, 1].
        entropy: H in [0, 1] (None when it was not reported, see :func:`entropy_or_none`).
        kl: ``KL(rollouts || dataset)`` in nats; only sorting uses it.

    Returns:
        The score, or None when the family has no score or an input it needs is None.

    Raises:
        ValueError: for an unknown family or task id.
    """
    family = D3IL_TASK_FAMILIES.get(task_family, task_family)
    if family not in ("avoiding", "pushing", "aligning", "sorting", "stacking"):
        raise ValueError(f"unknown D3IL task family or task id {task_family!r}")
    if family == "stacking" or success_rate is None:
        return None
    if family == "sorting":
        return None if kl is None else success_rate - kl
    if entropy is None:
        return None
    weight = 0.8 if family == "avoiding" else 0.5
    return weight * success_rate + (1.0 - weight) * entropy
