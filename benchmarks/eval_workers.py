"""Evaluation throughput: episodes per minute with 1 worker against 2, trained policy in the loop.

    python benchmarks/eval_workers.py --checkpoint RUN/checkpoints/last [--repeats 5]
        [--contexts 8 --rollouts 4] [--json out.json]

Runs the same protocol (default: the task's ``cpu`` protocol, 8 contexts x 4 rollouts)
serially (``SyncVectorEnv``, one process) and over 2 spawned workers (``AsyncVectorEnv``),
interleaved, ``--repeats`` times each, torch on one thread; reports the median episodes/min,
the ratio, and the worker start-up time (paid once per evaluation, included in the totals).
Checks on every run that both give identical per-episode results. Target (evaluation issue):
>= 1.5x on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from polymimic.eval.protocol import protocol
from polymimic.eval.rollout import evaluate_protocol
from polymimic.eval.vector import make_vector_env
from polymimic.policies.checkpoint import load_checkpoint, read_checkpoint_config


def start_up_seconds(env_id: str, workers: int) -> float:
    """Time to make the vector env and reset every worker once (spawn + imports)."""
    start = time.perf_counter()
    vec = make_vector_env(env_id, {}, workers)
    vec.reset(seed=0)
    elapsed = time.perf_counter() - start
    vec.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--contexts", type=int, default=None)
    parser.add_argument("--rollouts", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    policy = load_checkpoint(args.checkpoint)
    env_id = read_checkpoint_config(args.checkpoint)["env_args"]["env_name"]
    proto = protocol(env_id, "cpu", args.contexts, args.rollouts)
    rates: dict[int, list[float]] = {1: [], 2: []}
    reference = None
    for _ in range(args.repeats):
        for workers in (1, 2):
            start = time.perf_counter()
            info = evaluate_protocol({}, policy, proto, workers=workers)
            rates[workers].append(proto.num_episodes / (time.perf_counter() - start) * 60)
            reference = reference or info["per_episode"]
            assert info["per_episode"] == reference, "results depend on the worker count"
    result = {
        "env_id": env_id, "episodes": proto.num_episodes, "repeats": args.repeats,
        "mean_length": statistics.mean(e["length"] for e in reference),
        "episodes_per_min": {w: statistics.median(r) for w, r in rates.items()},
        "all_runs": rates,
        "start_up_s": {w: start_up_seconds(env_id, w) for w in (1, 2)},
    }  # fmt: skip
    result["ratio"] = result["episodes_per_min"][2] / result["episodes_per_min"][1]
    print(f"{env_id}, {proto.num_episodes} episodes (mean length {result['mean_length']:.0f}), "
          f"median of {args.repeats}:")  # fmt: skip
    for workers in (1, 2):
        print(f"  {workers} worker(s): {result['episodes_per_min'][workers]:.1f} episodes/min, "
              f"start-up {result['start_up_s'][workers]:.2f} s")  # fmt: skip
    print(f"  ratio 2/1: {result['ratio']:.2f}x (identical per-episode results on every run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
