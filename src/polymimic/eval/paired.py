"""Paired comparison of two evaluations run with the same protocol (same contexts, same seeds).

Two policies -- or one policy with two samplers, e.g. DDIM-10 and DDPM-100 -- evaluated with
one protocol meet the same S stored initial states and, rollout for rollout, the same seeds.
Pairing episode ``(c, r)`` of one with episode ``(c, r)`` of the other removes the spread of
difficulty across contexts from the comparison, so far fewer episodes pin the difference
down than two unpaired success rates would.

Statistic, with ``y_cr`` and ``z_cr`` the two success indicators of rollout ``r`` of
context ``c`` (S contexts, R rollouts each)::

    d_c  = (1 / R) * sum_r (y_cr - z_cr)          per-context difference
    diff = (1 / S) * sum_c d_c                    = success(A) - success(B)

Its interval is the percentile bootstrap over *contexts* (Efron & Tibshirani 1993),
resampling whole contexts because the R rollouts of one context are correlated (they start
from one state): the cluster bootstrap, the paired analogue of the clustered intervals in
``polymimic.eval.intervals``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from polymimic.eval.intervals import bootstrap_mean_interval

#: protocol fields that must agree for two evaluations to be paired
PAIRED_PROTOCOL_FIELDS = (
    "task_id", "split", "num_contexts", "rollouts_per_context", "version", "contexts_sha256",
)


def _episodes(info: Mapping[str, Any], which: str) -> dict[tuple[int, int], bool]:
    outcomes = {}
    for episode in info.get("per_episode") or []:
        key = (episode.get("context"), episode.get("rollout"))
        if None in key:
            raise ValueError(f"evaluation {which} was not run with a protocol (no context/"
                             "rollout indices): pair only protocol evaluations")  # fmt: skip
        outcomes[(int(key[0]), int(key[1]))] = bool(episode["success"])
    return outcomes


def paired_success_difference(
    info_a: Mapping[str, Any],
    info_b: Mapping[str, Any],
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """``success(A) - success(B)`` over paired episodes, with a context-bootstrap interval.

    Args:
        info_a, info_b: two ``eval_info.json`` dicts of one protocol (same task, split,
            S, R, protocol version and stored contexts).
        n_resamples, seed, confidence: of the bootstrap over contexts.

    Returns:
        ``difference``, ``interval``, ``success_a``, ``success_b``, ``pairs``, ``contexts``,
        ``a_only`` / ``b_only`` (pairs where only A / only B succeeded).

    Raises:
        ValueError: evaluations of different protocols, or episode sets that differ.
    """
    protocols = [info.get("protocol") or {} for info in (info_a, info_b)]
    for field in PAIRED_PROTOCOL_FIELDS:
        if protocols[0].get(field) != protocols[1].get(field):
            raise ValueError(
                f"the evaluations differ in protocol {field} ({protocols[0].get(field)!r} vs "
                f"{protocols[1].get(field)!r}): rerun both with the same --protocol, "
                "--contexts and --rollouts"
            )
    a, b = _episodes(info_a, "A"), _episodes(info_b, "B")
    if set(a) != set(b) or not a:
        raise ValueError(f"the evaluations hold different episodes ({len(a)} vs {len(b)}, "
                         f"{len(set(a) ^ set(b))} unmatched): pairing needs the same ones")  # fmt: skip
    contexts = sorted({c for c, _ in a})
    per_context = np.array([
        np.mean([float(a[k]) - float(b[k]) for k in a if k[0] == c]) for c in contexts
    ])  # fmt: skip
    low, high = bootstrap_mean_interval(per_context, n_resamples, seed, confidence)
    return {
        "difference": float(per_context.mean()),
        "interval": [low, high],
        "confidence": confidence,
        "success_a": float(np.mean(list(a.values()))),
        "success_b": float(np.mean([b[k] for k in a])),
        "pairs": len(a),
        "contexts": len(contexts),
        "a_only": sum(a[k] and not b[k] for k in a),
        "b_only": sum(b[k] and not a[k] for k in a),
    }
