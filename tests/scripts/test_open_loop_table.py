"""``scripts/open_loop_table.py``: the expert is asked for every behaviour in every pattern."""

from __future__ import annotations

import collections
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "open_loop_table.py"


@pytest.fixture(scope="module")
def open_loop_table():
    spec = importlib.util.spec_from_file_location("open_loop_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("contexts", "rollouts", "env_contexts", "behaviours"),
                         [(60, 1, 6, 6), (60, 1, 20, 20), (8, 4, 6, 6), (30, 1, 4, 4)])
def test_expert_requests_cover_pattern_behaviour_pairs(
    open_loop_table, contexts: int, rollouts: int, env_contexts: int, behaviours: int
) -> None:
    pairs = collections.Counter(
        (c % env_contexts, open_loop_table.expert_request(c, r, rollouts, env_contexts, behaviours))
        for c in range(contexts) for r in range(rollouts)
    )
    # Each pattern meets as many behaviours as its episodes allow (c R + r alone gave one).
    visits = collections.Counter(c % env_contexts for c in range(contexts))
    assert len(pairs) == sum(min(v * rollouts, behaviours) for v in visits.values())
    asked = collections.Counter(b for _, b in pairs.elements())
    assert max(asked.values()) - min(asked.values()) <= max(visits.values()) * rollouts // 2
