"""The ``aggregated`` section of ``eval_info.json``: episodes into metrics with intervals.

Behaviour statistics use the successful episodes only (D3IL, Jia et al., ICLR 2024). A
successful episode labelled ``other`` appears in the counts and the distribution but not in
the entropies, whose normaliser ``log |B|`` counts only the task's behaviours. The success interval accounts for the R rollouts of a context being
correlated (``intervals.clustered_success_interval``). Entropies are
``None`` ("n/a") when there are too few successes to estimate them
(``metrics.MIN_SUCCESSES_FOR_ENTROPY``); the number of successes is always printed beside
them; for the marginal entropy the count is of effective successes (divided by the design
effect). The conditional entropy averages over *all* protocol contexts, a context without a
success counting 0, as D3IL computes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from polymimic.eval import intervals, metrics


def aggregate(
    records: Sequence[Any],
    behaviours: Sequence[str],
    reference_distribution: Mapping[str, float] | None = None,
    contexts: Sequence[int] | None = None,
    task_id: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Summarise episodes (``EpisodeRecord``) into the ``aggregated`` dict.

    Args:
        records: the episodes.
        behaviours: the task's behaviour labels (without ``"other"``).
        reference_distribution: the dataset's mode distribution (its successful training
            demos); if given, ``kl_to_reference`` is ``KL(rollouts || dataset)``.
        contexts: the protocol's context indices (all S of them); None in seed mode, where
            each episode's env context stands in for it.
        task_id: names D3IL's combined score (``metrics.d3il_score``).
        seed: seed of the resampling intervals.
    """
    if not records:
        raise ValueError("aggregate needs at least one episode")
    successful = [r for r in records if r.success]
    known = set(behaviours)
    in_task = [r for r in successful if r.behaviour in known]
    labels = [r.behaviour for r in in_task]
    num_b = len(behaviours)
    success = metrics.success_rate([r.success for r in records])
    deff = _design_effect(records, contexts)
    entropy, entropy_ci = _entropy(labels, num_b, seed, deff)
    conditional, conditional_ci = _conditional(in_task, records, contexts, num_b, seed)
    distribution = metrics.behaviour_distribution([r.behaviour for r in successful], behaviours)
    kl = None
    if reference_distribution is not None and successful:
        kl = metrics.kl_divergence(distribution, reference_distribution)
    return {
        "num_episodes": len(records),
        "num_successes": len(successful),
        "success_rate": success,
        "success_rate_ci95": _success_interval(records, contexts),
        "design_effect": deff,
        "behaviour_counts": dict(Counter(r.behaviour for r in successful)),
        "behaviour_distribution": distribution,
        "num_behaviours": num_b,
        "behaviour_entropy": entropy,
        "behaviour_entropy_ci95": entropy_ci,
        "conditional_behaviour_entropy": conditional,
        "conditional_behaviour_entropy_ci95": conditional_ci,
        "kl_to_reference": kl,
        # D3IL scores the conditional entropy where contexts vary (protocol mode).
        "d3il_score": _d3il_score(
            task_id, success, conditional if contexts is not None else entropy, kl
        ),
        "num_invalid_action_episodes": sum(r.invalid_action for r in records),
        "mean_return": float(np.mean([r.episode_return for r in records])),
        "mean_length": float(np.mean([r.length for r in records])),
    }


def _by_context(records: Sequence[Any], contexts: Sequence[int]) -> list[list[bool]]:
    by_context: dict[int, list[bool]] = {c: [] for c in contexts}
    for r in records:
        by_context[r.context].append(r.success)
    return list(by_context.values())


def _design_effect(records: Sequence[Any], contexts: Sequence[int] | None) -> float:
    """Kish's design effect of the protocol's R rollouts per context (1 in seed mode)."""
    return 1.0 if contexts is None else intervals.design_effect(_by_context(records, contexts))


def _success_interval(records: Sequence[Any], contexts: Sequence[int] | None) -> list[float]:
    """Wilson over episodes in seed mode; over contexts' effective size in protocol mode."""
    if contexts is None:
        return list(metrics.wilson_interval(sum(r.success for r in records), len(records)))
    return list(intervals.clustered_success_interval(_by_context(records, contexts)))


def _d3il_score(
    task_id: str | None, success: float, entropy: float | None, kl: float | None
) -> float | None:
    family = metrics.d3il_task_family(task_id) if task_id else None
    return None if family is None else metrics.d3il_score(family, success, entropy, kl)


def _entropy(
    labels: list[str], num_b: int, seed: int, deff: float
) -> tuple[float | None, list | None]:
    """Plug-in normalised entropy and its Dirichlet-posterior 95% interval (or n/a).

    The posterior's counts are divided by the design effect: the successes of one context
    are correlated (a deterministic policy repeats one behaviour R times), and counting them
    as independent would make the interval far too narrow. The success indicator's design
    effect stands in for the behaviour labels' (exact for a deterministic policy, which is
    where it matters most).
    """
    # n/a below the threshold of *effective* successes: 48 successes of a deterministic
    # policy in 3 contexts are 3 observations of its behaviour choice, not 48.
    if not metrics.enough_successes(int(len(labels) / deff + 1e-9), num_b):
        return None, None
    counts = [labels.count(b) / deff for b in sorted(set(labels))]
    counts += [0.0] * (num_b - len(counts))  # unseen behaviours get posterior mass too
    low, high = intervals.dirichlet_entropy_interval(counts, num_b, seed=seed)
    return metrics.behaviour_entropy(labels, num_b), [low, high]


def _conditional(
    in_task: Sequence[Any],
    records: Sequence[Any],
    contexts: Sequence[int] | None,
    num_b: int,
    seed: int,
) -> tuple[float | None, list | None]:
    """D3IL's conditional entropy over all contexts, and a context-resampling interval."""
    if not metrics.enough_successes(len(in_task), num_b):
        return None, None
    key = "context" if contexts is not None else "env_context"
    all_contexts = list(contexts) if contexts is not None else sorted(
        {getattr(r, key) for r in records}, key=str
    )
    labels = [r.behaviour for r in in_task]
    of = [getattr(r, key) for r in in_task]
    value = metrics.conditional_behaviour_entropy(labels, of, num_b, all_contexts=all_contexts)
    low, high = intervals.conditional_entropy_interval(labels, of, num_b, all_contexts, seed=seed)
    return value, [low, high]
