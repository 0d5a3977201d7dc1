"""The ``aggregated`` section of ``eval_info.json``: episodes into metrics with intervals.

Behaviour statistics use the successful episodes only (D3IL, Jia et al., ICLR 2024). A
successful episode labelled ``other`` appears in the counts and the distribution but not in
the entropies, whose normaliser ``log |B|`` counts only the task's behaviours. The success interval accounts for the R rollouts of a context being
correlated (``intervals.clustered_success_interval``). Entropies are
``None`` ("n/a") when there are too few successes to estimate them
(``metrics.MIN_SUCCESSES_FOR_ENTROPY``); the number of successes is always printed beside
them. The conditional entropy averages over *all* protocol contexts, a context without a
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
    entropy, entropy_ci = _entropy(labels, num_b, seed)
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
        "behaviour_counts": dict(Counter(r.behaviour for r in successful)),
        "behaviour_distribution": distribution,
        "num_behaviours": num_b,
        "behaviour_entropy": entropy,
        "behaviour_entropy_ci95": entropy_ci,
        "conditional_behaviour_entropy": conditional,
        "conditional_behaviour_entropy_ci95": conditional_ci,
        "kl_to_reference": kl,
        "d3il_score": _d3il_score(task_id, success, entropy, kl),
        "num_invalid_action_episodes": sum(r.invalid_action for r in records),
        "mean_return": float(np.mean([r.episode_return for r in records])),
        "mean_length": float(np.mean([r.length for r in records])),
    }


def _success_interval(records: Sequence[Any], contexts: Sequence[int] | None) -> list[float]:
    """Wilson over episodes in seed mode; over contexts' effective size in protocol mode."""
    if contexts is None:
        return list(metrics.wilson_interval(sum(r.success for r in records), len(records)))
    by_context: dict[int, list[bool]] = {c: [] for c in contexts}
    for r in records:
        by_context[r.context].append(r.success)
    return list(intervals.clustered_success_interval(list(by_context.values())))


def _d3il_score(
    task_id: str | None, success: float, entropy: float | None, kl: float | None
) -> float | None:
    family = metrics.d3il_task_family(task_id) if task_id else None
    return None if family is None else metrics.d3il_score(family, success, entropy, kl)


def _entropy(labels: list[str], num_b: int, seed: int) -> tuple[float | None, list | None]:
    """Plug-in normalised entropy and its Dirichlet-posterior 95% interval (or n/a)."""
    if not metrics.enough_successes(len(labels), num_b):
        return None, None
    counts = [labels.count(b) for b in sorted(set(labels))]
    counts += [0] * (num_b - len(counts))  # unseen behaviours get posterior mass too
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
