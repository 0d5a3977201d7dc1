"""Measure every task's scripted expert: success rate and behaviour frequencies.

    python scripts/expert_table.py --episodes 100 --out results/experts

Each task runs ``--episodes`` seeded episodes (seeds 0..N-1; tasks with more than six
behaviours run ``--many-episodes``) of the skill-free expert, asking for a balanced set of
behaviours (episode i asks for behaviour i mod |B|), one task per process. Writes ``<task>.json`` per task and
``table.md``; the issue's targets: success >= 95%, each behaviour >= 15% of a balanced set
(for many-behaviour tasks: >= 80% of behaviours seen).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

import polymimic
from polymimic.envs import TASK_IDS
from polymimic.io import atomic_write_json, library_versions
from polymimic.operators import expert_operator, record_episode, task_behaviours

MANY_BEHAVIOURS = 6


def measure_task(env_id: str, episodes: int, many_episodes: int) -> dict[str, Any]:
    """Run the expert on ``env_id`` and count successes and realised behaviours."""
    behaviours = task_behaviours(env_id)
    count = many_episodes if len(behaviours) > MANY_BEHAVIOURS else episodes
    env = gym.make(env_id)
    # A balanced request: episode i asks for behaviour i mod |B|, so every behaviour is
    # requested equally often and the frequencies measure the expert, not the dice.
    operators = [expert_operator(env_id, behaviours=(label,)) for label in behaviours]
    realised: collections.Counter[str] = collections.Counter()
    successes, matched, steps = 0, 0, 0
    start = time.perf_counter()
    for seed in range(count):
        operator = operators[seed % len(operators)]
        attrs = (episode := record_episode(env, operator, seed)).attrs
        successes += bool(attrs["success"])
        matched += attrs["behaviour"] == attrs["intended_behaviour"]
        realised[attrs["behaviour"]] += 1
        steps += len(episode.actions)
    return {
        "env_id": env_id,
        "episodes": count,
        "num_behaviours": len(behaviours),
        "success_rate": successes / count,
        "intended_realised_rate": matched / count,
        "behaviour_counts": {label: realised.get(label, 0) for label in (*behaviours, "other")},
        "behaviours_seen_fraction": sum(realised.get(b, 0) > 0 for b in behaviours) / len(behaviours),
        "mean_length": steps / count,
        "seconds": time.perf_counter() - start,
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| task | behaviours | episodes | success | behaviours seen | min share | frequencies |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        counts = row["behaviour_counts"]
        shares = [counts[b] / row["episodes"] for b in counts if b != "other"]
        freq = ", ".join(f"{b} {n / row['episodes']:.2f}" for b, n in counts.items() if n)
        lines.append(
            f"| {row['env_id']} | {row['num_behaviours']} | {row['episodes']} | "
            f"{row['success_rate']:.2f} | {row['behaviours_seen_fraction']:.2f} | "
            f"{min(shares):.2f} | {freq} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--many-episodes", type=int, default=200)
    parser.add_argument("--tasks", nargs="*", default=list(TASK_IDS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/experts"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [
            pool.submit(measure_task, task, args.episodes, args.many_episodes)
            for task in args.tasks
        ]
        rows = [future.result() for future in futures]
    for row in rows:
        row["versions"] = {**library_versions(), "polymimic": polymimic.__version__}
        name = row["env_id"].split("/")[-1]
        atomic_write_json(args.out / f"{name}.json", row)
    # The table holds every task measured into --out, this run's and earlier --tasks runs'.
    measured = {json.loads(p.read_text())["env_id"]: p for p in args.out.glob("*.json")}
    table = markdown_table([json.loads(measured[t].read_text()) for t in TASK_IDS if t in measured])
    command = "python scripts/expert_table.py " + " ".join(sys.argv[1:])
    (args.out / "table.md").write_text(f"$ {command}\n\n{table}")
    print(table)


if __name__ == "__main__":
    main()
