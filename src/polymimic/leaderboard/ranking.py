"""Ranking: verified success first, ties broken by conditional behaviour entropy.

Only verified entries rank; claimed numbers never do. Success is the benchmark's first
question; among equally successful policies the one that keeps more of the demonstrators'
behaviours per context ranks higher (the conditional entropy, D3IL's diversity measure where
contexts vary). D3IL's combined score per task is shown beside them, not used for ranking.
A remaining tie goes to the earlier submission.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

RANK_COLUMNS = ("verified success", "conditional behaviour entropy")


def rank_key(row: Any) -> tuple[float, float, float]:
    conditional = row.conditional_entropy if row.conditional_entropy is not None else -1.0
    return (-row.success_rate, -conditional, row.submitted_at.timestamp())


def ranked(rows: Iterable[Any]) -> list[Any]:
    """The verified rows, best first."""
    return sorted((r for r in rows if r.status == "verified" and r.success_rate is not None),
                  key=rank_key)


def by_task(rows: Iterable[Any]) -> dict[str, list[Any]]:
    """Ranked verified rows per task, tasks in name order."""
    tasks: dict[str, list[Any]] = {}
    for row in rows:
        tasks.setdefault(row.task, []).append(row)
    return {task: ranked(tasks[task]) for task in sorted(tasks)}
