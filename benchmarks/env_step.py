"""Env steps/s with state observations and a random policy, against raw MuJoCo physics.

For each task: time ``env.step`` (random actions, resets on episode end) and, on the same
compiled model in the same run, one ``mujoco.mj_step(model, data, nstep=K)`` call per
control step with the task's own K substeps. The ratio env/physics is what our Python
layer (IK, observations, bookkeeping) costs on top of the simulation.

    python benchmarks/env_step.py [--steps 3000]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import mujoco
import numpy as np

import polymimic  # noqa: F401
from polymimic.envs import TASK_IDS


def time_env(env_id: str, steps: int) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def time_physics(env_id: str, steps: int) -> float:
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    model, data, substeps = env.model, env.data, env.substeps
    start = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(model, data, nstep=substeps)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'task':24s} {'K':>3s} {'env steps/s':>12s} {'physics steps/s':>16s} {'ratio':>6s}")
    for env_id in TASK_IDS:
        # Interleave and take the best of a few repeats to damp noise from other processes.
        env_rate = max(time_env(env_id, args.steps) for _ in range(args.repeats))
        phys_rate = max(time_physics(env_id, args.steps) for _ in range(args.repeats))
        k = gym.make(env_id).unwrapped.substeps
        print(f"{env_id:24s} {k:3d} {env_rate:12.0f} {phys_rate:16.0f} {phys_rate / env_rate:6.2f}x")


if __name__ == "__main__":
    main()
