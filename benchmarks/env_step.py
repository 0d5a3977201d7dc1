"""Env steps/s with state observations and a random policy, against raw MuJoCo physics.

For each task, in one run on the same compiled model:

* **env**: ``env.step`` through ``gym.make``'s wrappers with uniform random actions,
  resetting at episode ends; the joint targets the env sends to the arm are recorded.
* **physics**: the same episodes replayed in raw MuJoCo: restore each episode's initial
  state, then per control step write the recorded ``ctrl`` and call
  ``mujoco.mj_step(model, data, nstep=K)`` once, K being the task's documented substeps.
  Replaying the same controls makes the physics do the same work (same motions, same
  contacts) as inside the env, so the ratio env/physics is what polymimic's Python layer
  (action handling, IK, observations, bookkeeping, Gymnasium wrappers) costs on top.

The two alternate in chunks of ``--chunk`` control steps, so a change of machine load hits
both alike; the ratio is total env time / total physics time (the median per-chunk ratio is
printed beside it). Target: ratio <= 1.25.

    python benchmarks/env_step.py [--steps 3000] [--chunk 100] [--tasks ...]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from polymimic.envs import TASK_IDS
from polymimic.io import library_versions

_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
Episode = tuple[np.ndarray, np.ndarray]  # (initial integration state, ctrl per step)


def _snapshot(env: gym.Env) -> np.ndarray:
    unwrapped = env.unwrapped
    state = np.empty(mujoco.mj_stateSize(unwrapped.model, _SPEC))
    mujoco.mj_getState(unwrapped.model, unwrapped.data, state, _SPEC)
    return state


def time_env_chunk(env: gym.Env, actions: np.ndarray) -> tuple[float, list[Episode]]:
    """Seconds for ``env.step`` over ``actions`` (resets included), and the episodes run."""
    data = env.unwrapped.data
    episodes: list[Episode] = []
    ctrls, start_state, elapsed = [], _snapshot(env), 0.0
    for action in actions:
        begin = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - begin
        ctrls.append(data.ctrl.copy())  # what the physics just ran with
        if terminated or truncated:
            episodes.append((start_state, np.array(ctrls)))
            begin = time.perf_counter()
            env.reset()
            elapsed += time.perf_counter() - begin
            ctrls, start_state = [], _snapshot(env)
    if ctrls:
        episodes.append((start_state, np.array(ctrls)))
    return elapsed, episodes


def time_physics_chunk(model: mujoco.MjModel, data: mujoco.MjData, substeps: int,
                       episodes: list[Episode]) -> float:
    """Seconds to replay the recorded controls with one ``mj_step(nstep=K)`` each."""
    elapsed = 0.0
    for start_state, ctrls in episodes:
        mujoco.mj_setState(model, data, start_state, _SPEC)
        mujoco.mj_forward(model, data)
        begin = time.perf_counter()
        for ctrl in ctrls:
            data.ctrl[:] = ctrl
            mujoco.mj_step(model, data, nstep=substeps)
        elapsed += time.perf_counter() - begin
    return elapsed


def measure(env_id: str, steps: int, chunk: int) -> dict[str, Any]:
    """Interleave env chunks and their physics replays so load changes hit both alike."""
    env = gym.make(env_id)
    env.reset(seed=0)
    replay = gym.make(env_id).unwrapped  # a second copy of the same compiled model
    rng = np.random.default_rng(0)
    env_time, physics_time, ratios = 0.0, 0.0, []
    for begin in range(0, steps, chunk):
        actions = rng.uniform(-1, 1, (min(chunk, steps - begin), *env.action_space.shape))
        elapsed, episodes = time_env_chunk(env, actions.astype(np.float32))
        physics = time_physics_chunk(replay.model, replay.data, replay.substeps, episodes)
        env_time, physics_time = env_time + elapsed, physics_time + physics
        ratios.append(elapsed / physics)
    return {
        "env_id": env_id,
        "substeps": replay.substeps,
        "env_steps_per_s": steps / env_time,
        "physics_steps_per_s": steps / physics_time,
        "ratio": env_time / physics_time,
        "median_chunk_ratio": float(np.median(ratios)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=100, help="steps per interleaved chunk")
    parser.add_argument("--tasks", nargs="*", default=list(TASK_IDS))
    parser.add_argument("--json", help="also write the rows and library versions here")
    args = parser.parse_args()
    print(
        f"{'task':22s} {'K':>3s} {'env steps/s':>12s} {'physics steps/s':>16s} {'ratio':>6s} "
        f"{'median chunk ratio':>18s}"
    )
    rows = []
    for env_id in args.tasks:
        row = measure(env_id, args.steps, args.chunk)
        rows.append(row)
        print(
            f"{env_id:22s} {row['substeps']:3d} {row['env_steps_per_s']:12.0f} "
            f"{row['physics_steps_per_s']:16.0f} {row['ratio']:6.2f}x "
            f"{row['median_chunk_ratio']:17.2f}x",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "versions": library_versions()}, f, indent=2)


if __name__ == "__main__":
    main()
