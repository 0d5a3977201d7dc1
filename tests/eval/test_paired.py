"""Paired success difference of two protocol evaluations (``polymimic.eval.paired``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from polymimic.eval.paired import paired_success_difference


def info(successes: np.ndarray, **protocol: Any) -> dict[str, Any]:
    """An eval_info dict with S x R outcomes ``successes[c, r]``."""
    s, r = successes.shape
    return {
        "protocol": {"task_id": "polymimic/Push-v1", "split": "test", "num_contexts": s,
                     "rollouts_per_context": r, "version": 3, "contexts_sha256": "ab",
                     **protocol},
        "per_episode": [{"context": c, "rollout": k, "success": bool(successes[c, k])}
                        for c in range(s) for k in range(r)],
    }  # fmt: skip


def test_difference_counts_pairs_and_its_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(0)
    # Context difficulty shared by both (paired), A 10 points better on average.
    p = rng.uniform(0.1, 0.8, size=(40, 1))
    a = rng.uniform(size=(40, 8)) < p + 0.1
    b = rng.uniform(size=(40, 8)) < p
    got = paired_success_difference(info(a), info(b))
    assert got["difference"] == pytest.approx(a.mean() - b.mean())
    assert got["success_a"] == pytest.approx(a.mean()) and got["pairs"] == 320
    assert got["a_only"] == int((a & ~b).sum()) and got["b_only"] == int((b & ~a).sum())
    low, high = got["interval"]
    assert low < got["difference"] < high and low < 0.1 < high
    # The order of the arguments flips the sign and the interval.
    flipped = paired_success_difference(info(b), info(a))
    assert flipped["difference"] == pytest.approx(-got["difference"])
    assert flipped["interval"][0] == pytest.approx(-high, abs=0.01)


def test_the_interval_resamples_contexts_not_episodes() -> None:
    """Every context either all-A or all-B: 4 contexts are 4 observations, not 64 episodes,
    so the interval must be wide (an episode bootstrap would give about +-0.2)."""
    a = np.repeat(np.array([[1], [1], [0], [0]], dtype=bool), 16, axis=1)
    b = ~a
    got = paired_success_difference(info(a), info(b))
    assert got["difference"] == 0.0
    low, high = got["interval"]
    assert low <= -0.5 and high >= 0.5


def test_identical_evaluations_differ_by_exactly_zero() -> None:
    a = np.random.default_rng(1).uniform(size=(10, 5)) < 0.5
    got = paired_success_difference(info(a), info(a))
    assert got["difference"] == 0.0 and got["interval"] == [0.0, 0.0]


def test_different_protocols_or_episodes_are_refused() -> None:
    a = np.ones((4, 2), dtype=bool)
    with pytest.raises(ValueError, match="contexts_sha256"):
        paired_success_difference(info(a), info(a, contexts_sha256="cd"))
    with pytest.raises(ValueError, match="num_contexts"):
        paired_success_difference(info(a), info(np.ones((3, 2), dtype=bool)))
    missing = info(a)
    missing["per_episode"].pop()
    with pytest.raises(ValueError, match="different episodes"):
        paired_success_difference(info(a), missing)
    seeds_only = info(a)
    for episode in seeds_only["per_episode"]:
        episode["context"] = None
    with pytest.raises(ValueError, match="protocol"):
        paired_success_difference(seeds_only, info(a))
