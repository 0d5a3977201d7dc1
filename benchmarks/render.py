"""Headless 96x96 camera rendering speed per task and camera, and image-observation steps/s.

    python benchmarks/render.py [--frames 500] [--size 96] [--tasks ...]

For each task: frames/s of ``mujoco.Renderer`` at ``--size`` x ``--size`` for the front and
wrist cameras (the renderer the env's image observations use, scene updated every frame),
and env steps/s in ``obs_mode="rgb"`` with the front camera against ``obs_mode="state"``.
Target (task-suite issue): >= 200 frames/s for one 96x96 camera on a 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np

from polymimic.envs import TASK_IDS


def frames_per_second(env_id: str, camera: str, size: int, frames: int) -> float:
    env = gym.make(env_id, render_mode="rgb_array", render_height=size, render_width=size,
                   render_camera=camera).unwrapped
    env.reset(seed=0)
    env.render()  # create the GL context outside the timed loop
    start = time.perf_counter()
    for _ in range(frames):
        env.render()
    rate = frames / (time.perf_counter() - start)
    env.close()
    return rate


def steps_per_second(env_id: str, steps: int, **kwargs: object) -> float:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, *env.action_space.shape))
    start = time.perf_counter()
    for action in actions.astype(np.float32):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--tasks", nargs="*", default=list(TASK_IDS))
    args = parser.parse_args()
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}, {args.size}x{args.size}")
    print(f"{'task':22s} {'front fps':>10s} {'wrist fps':>10s} {'rgb steps/s':>12s} "
          f"{'state steps/s':>14s}")
    for env_id in args.tasks:
        front = frames_per_second(env_id, "front", args.size, args.frames)
        wrist = frames_per_second(env_id, "wrist", args.size, args.frames)
        rgb = steps_per_second(env_id, args.frames, obs_mode="rgb", cameras=("front",),
                               camera_height=args.size, camera_width=args.size)
        state = steps_per_second(env_id, args.frames)
        print(f"{env_id:22s} {front:10.0f} {wrist:10.0f} {rgb:12.0f} {state:14.0f}", flush=True)


if __name__ == "__main__":
    main()
