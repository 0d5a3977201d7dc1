"""One table: the open-loop baseline beside the scripted expert on the same initial states.

    python scripts/open_loop_table.py --eval-dir results/open_loop --out results/open_loop

Reads the ``<Task>/eval_info.json`` files that ``polymimic eval --open-loop`` wrote into
``--eval-dir`` (see ``results/open_loop/run.sh``), and for each runs the task's scripted
expert (``operators.expert_operator``, noise-free hand) on the same protocol contexts: the
protocol's context ``c`` is the state ``reset(seed=seed_start + c, options={"context": c mod
num_contexts})`` (``eval.protocol.make_context_states``), so ``record_episode`` with that
seed and those options starts the expert from exactly that state; the script checks the
expert's first state against the stored one bit for bit and refuses to go on otherwise.
Rollout ``r`` of context ``c`` asks for behaviour ``(c * R + r) mod |B|`` (a balanced
request, as ``scripts/expert_table.py``). Success intervals for both come from the same
``eval.aggregate.aggregate`` (clustered by context).

Writes ``<Task>.expert.json`` per task, ``table.json`` and ``table.md``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import polymimic  # noqa: F401  (registers the tasks)
from polymimic.envs import TASK_IDS
from polymimic.eval.aggregate import aggregate
from polymimic.eval.protocol import SPLIT_SEED_START, Protocol, load_contexts
from polymimic.eval.rollout import EpisodeRecord
from polymimic.io import atomic_write_json, library_versions
from polymimic.operators import expert_operator, record_episode, task_behaviours


def expert_request(context: int, rollout: int, rollouts: int, env_contexts: int,
                   num_behaviours: int) -> int:
    """The behaviour (index) the expert is asked for in a protocol episode.

    ``(c mod n + (c // n) R + r) mod |B|`` with ``n`` the task's own contexts (patterns):
    pattern k's j-th visit asks for the R behaviours after those of its earlier visits, so
    each pattern meets as many behaviours as its episodes allow and the behaviours stay
    balanced. ``c R + r`` alone paired each pattern with one behaviour whenever ``n R`` is
    a multiple of ``|B|`` (Sort4: pattern k was always asked for order k).
    """
    n = max(env_contexts, 1)
    return (context % n + (context // n) * rollouts + rollout) % num_behaviours


def expert_on_contexts(protocol_dict: dict[str, Any]) -> dict[str, Any]:
    """The expert's episodes on a protocol's contexts, aggregated like an evaluation."""
    fields = {k: protocol_dict[k] for k in
              ("name", "task_id", "split", "num_contexts", "rollouts_per_context", "version")}
    protocol_ = Protocol(**fields)
    env_id, start = protocol_.task_id, SPLIT_SEED_START[protocol_.split]
    env = gym.make(env_id)
    states, digest = load_contexts(protocol_, env.unwrapped.state_size)
    if digest != protocol_dict["contexts_sha256"]:
        raise SystemExit(f"{env_id}: stored contexts changed since the evaluation")
    behaviours = task_behaviours(env_id)
    num_env_contexts = int(getattr(env.unwrapped, "num_contexts", 1))
    records, started = [], time.perf_counter()
    for c, state in enumerate(states):
        for r in range(protocol_.rollouts_per_context):
            label = behaviours[expert_request(c, r, protocol_.rollouts_per_context,
                                              num_env_contexts, len(behaviours))]
            operator = expert_operator(env_id, behaviours=(label,))
            episode = record_episode(env, operator, start + c, {"context": c % num_env_contexts})
            if not np.array_equal(episode.states[0], state):
                raise SystemExit(f"{env_id}: the expert's episode {c} does not start from the "
                                 "stored context state; the protocol's contexts changed")
            attrs = episode.attrs
            records.append(EpisodeRecord(
                context=c, rollout=r, env_context=int(attrs["context"]), seed=start + c,
                success=bool(attrs["success"]), behaviour=str(attrs["behaviour"]),
                episode_return=float(np.sum(episode.rewards)), length=len(episode.actions),
                terminated=bool(episode.terminations[-1]), truncated=bool(episode.truncations[-1]),
            ))  # fmt: skip
    env.close()
    agg = aggregate(records, behaviours, None, list(range(protocol_.num_contexts)), env_id)
    return {
        "env_id": env_id,
        "protocol": protocol_dict,
        "operator": "expert_operator (noise-free hand), behaviour (c*R + r) mod |B| requested",
        "per_episode": [r.to_dict() for r in records],
        "aggregated": agg,
        "seconds": time.perf_counter() - started,
    }


def _ci(agg: dict[str, Any]) -> str:
    low, high = agg["success_rate_ci95"]
    return f"{agg['success_rate']:.2f} ({low:.2f}-{high:.2f})"


def row_of(eval_info: dict[str, Any], expert: dict[str, Any]) -> dict[str, Any]:
    ol, protocol_ = eval_info["open_loop"], eval_info["protocol"]
    agg = eval_info["aggregated"]
    successes = {e["context"] for e in eval_info["per_episode"] if e["success"]}
    return {
        "task": eval_info["env"]["id"],
        "protocol": f"{protocol_['name']} {protocol_['num_contexts']}x"
        f"{protocol_['rollouts_per_context']}",
        "open_loop_success": agg["success_rate"],
        "open_loop_success_ci95": agg["success_rate_ci95"],
        "open_loop_contexts_solved": len(successes),
        "expert_success": expert["aggregated"]["success_rate"],
        "expert_success_ci95": expert["aggregated"]["success_rate_ci95"],
        "num_demos": ol["num_demos"],
        "filter_key": ol["filter_key"],
        "distance_stats": ol["distance_stats"],
        "distance_dims": len(eval_info["policy"]["config"]["distance_dims"]),
        "open_loop_text": _ci(agg),
        "expert_text": _ci(expert["aggregated"]),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| task | protocol | open-loop success (95% CI) | contexts solved | expert success "
        "(95% CI) | demos | dims | nearest-demo distance min / median / max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        d = row["distance_stats"]
        lines.append(
            f"| {row['task']} | {row['protocol']} | {row['open_loop_text']} | "
            f"{row['open_loop_contexts_solved']} | {row['expert_text']} | {row['num_demos']} | "
            f"{row['distance_dims']} | {d['min']:.2f} / {d['median']:.2f} / {d['max']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    infos = {}
    for task in TASK_IDS:
        path = args.eval_dir / task.split("/")[-1] / "eval_info.json"
        if path.is_file():
            infos[task] = json.loads(path.read_text())
    if not infos:
        raise SystemExit(f"no <Task>/eval_info.json under {args.eval_dir}")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = {t: pool.submit(expert_on_contexts, info["protocol"]) for t, info in infos.items()}
        experts = {t: f.result() for t, f in futures.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for task, info in infos.items():
        atomic_write_json(args.out / f"{task.split('/')[-1]}.expert.json", experts[task])
        rows.append(row_of(info, experts[task]))
    command = "python scripts/open_loop_table.py " + " ".join(sys.argv[1:])
    atomic_write_json(args.out / "table.json", {"command": command, "rows": rows,
                                                "versions": library_versions()})
    table = markdown(rows)
    (args.out / "table.md").write_text(f"$ {command}\n\n{table}")
    print(table)


if __name__ == "__main__":
    main()
