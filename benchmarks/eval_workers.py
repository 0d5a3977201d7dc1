"""Evaluation throughput: episodes per minute with 1 worker against 2, trained policy in the loop.

    python benchmarks/eval_workers.py --checkpoint RUN/checkpoints/last [--repeats 5]
        [--protocol full --contexts 8 --rollouts 16] [--json out.json]

Runs the same protocol (default: the first 8 contexts x 16 rollouts of the ``full`` one)
in one process and over 2 spawned worker processes (``polymimic.eval.pool``), interleaved,
``--repeats`` times each, torch on one thread; reports the median episodes/min, the ratio,
and the workers' start-up time (paid once per evaluation, included in the totals). Also
times one vector step of Gymnasium's ``AsyncVectorEnv`` with 2 envs against one env
in-process: the per-step inter-process cost that rules it out here.
Checks on every run that both give identical per-episode results. Target (evaluation issue):
>= 1.5x on a 2-core machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import multiprocessing
import statistics
import time

import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from polymimic.eval import pool
from polymimic.eval.protocol import protocol
from polymimic.eval.rollout import evaluate_protocol
from polymimic.eval.worker import make_slot_env
from polymimic.policies.checkpoint import load_checkpoint, read_checkpoint_config


def start_up_seconds(env_id: str, policy: object) -> float:
    """Time to start 2 worker processes and have each ready (spawn, imports, env, policy)."""
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("spawn"), initializer=pool._init_worker,
        initargs=(env_id, {}, False, policy),
    ) as executor:  # fmt: skip
        list(executor.map(abs, [1, 2]))
    return time.perf_counter() - start


def vector_step_ms(env_id: str, workers: int, steps: int = 500) -> float:
    """Milliseconds per step of ``workers`` envs: Sync in-process (1) or AsyncVectorEnv."""
    fns = [functools.partial(make_slot_env, env_id, {}, k, False) for k in range(workers)]
    mode = AutoresetMode.DISABLED
    vec = SyncVectorEnv(fns, autoreset_mode=mode) if workers == 1 else AsyncVectorEnv(
        fns, context="spawn", autoreset_mode=mode)
    vec.reset(seed=[0] * workers)
    actions = np.zeros((workers, *vec.single_action_space.shape))
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = vec.step(actions)
        if (terminated | truncated).any():
            vec.reset(seed=[0] * workers, options={"reset_mask": terminated | truncated})
    elapsed = (time.perf_counter() - start) / steps * 1e3
    vec.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--protocol", default="full")
    parser.add_argument("--contexts", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=16)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    policy = load_checkpoint(args.checkpoint)
    env_id = read_checkpoint_config(args.checkpoint)["env_args"]["env_name"]
    proto = protocol(env_id, args.protocol, args.contexts, args.rollouts)
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
        "worker_start_up_s": start_up_seconds(env_id, policy),
        "vector_step_ms": {"sync_1_env": vector_step_ms(env_id, 1),
                           "async_2_envs": vector_step_ms(env_id, 2)},
    }  # fmt: skip
    result["ratio"] = result["episodes_per_min"][2] / result["episodes_per_min"][1]
    print(f"{env_id}, {proto.num_episodes} episodes (mean length {result['mean_length']:.0f}), "
          f"median of {args.repeats}:")  # fmt: skip
    for workers in (1, 2):
        print(f"  {workers} worker(s): {result['episodes_per_min'][workers]:.1f} episodes/min")
    print(f"  ratio 2/1: {result['ratio']:.2f}x (identical per-episode results on every run)")
    print(f"  start-up of 2 workers: {result['worker_start_up_s']:.2f} s (included above)")
    steps = result["vector_step_ms"]
    print(f"  one vector step: SyncVectorEnv 1 env {steps['sync_1_env']:.3f} ms, "
          f"AsyncVectorEnv 2 envs {steps['async_2_envs']:.3f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
