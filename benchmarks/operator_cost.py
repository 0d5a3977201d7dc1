"""What the simulated operators cost on top of the env: recording against replaying.

For each task, the first operator of its named dataset records ``--episodes`` demos
(``record_episode``: the script, the human motor model and the env); then the same demos'
actions are replayed through ``env.step`` from the same resets. Both run in one process on
the same env, alternating per episode so a change of machine load hits both alike. The
ratio recording / replay is what the operator layer (plus the state capture that
recording does) costs per env step.

    python benchmarks/operator_cost.py [--episodes 10] [--tasks ...]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import polymimic  # noqa: F401  (registers the tasks)
from polymimic.datasets.registry import DATASETS
from polymimic.operators import record_episode


def measure(name: str, episodes: int) -> tuple[str, int, float, float]:
    """(env id, steps, recording seconds, replay seconds) for one named dataset."""
    spec = DATASETS[name]
    env = gym.make(spec.env_id)
    operator = spec.operators[0]
    record_time = replay_time = 0.0
    steps = 0
    for index in range(episodes):
        seed = spec.episode_seed(0, index)
        start = time.perf_counter()
        episode = record_episode(env, operator, seed)
        record_time += time.perf_counter() - start
        start = time.perf_counter()
        env.reset(seed=seed)
        for action in episode.actions:
            env.step(np.asarray(action))
        replay_time += time.perf_counter() - start
        steps += len(episode)
    return spec.env_id, steps, record_time, replay_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--tasks", nargs="*", default=sorted(DATASETS))
    args = parser.parse_args()
    print(f"{'dataset':36s} {'steps':>7s} {'record steps/s':>15s} {'replay steps/s':>15s} ratio")
    for name in args.tasks:
        env_id, steps, record, replay = measure(name, args.episodes)
        print(f"{name:36s} {steps:7d} {steps / record:15.0f} {steps / replay:15.0f} "
              f"{record / replay:5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
