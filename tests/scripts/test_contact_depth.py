"""``scripts/contact_depth.py``: penetration read from MuJoCo's contacts, and still stretches."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import polymimic  # noqa: F401

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "contact_depth.py"


@pytest.fixture(scope="module")
def contact_depth():
    spec = importlib.util.spec_from_file_location("contact_depth", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_cube_pushed_into_the_table_reads_its_depth(contact_depth) -> None:
    env = gym.make("polymimic/Stack-v1")
    env.reset(seed=0)
    model, data = env.unwrapped.model, env.unwrapped.data
    objects = contact_depth.free_body_geoms(model)
    assert objects == {model.geom(f"{b}_block").id for b in ("red", "green", "blue")}
    mujoco.mj_forward(model, data)
    resting = contact_depth.penetration(data, objects)
    assert resting < 0.001  # a cube resting on the table barely touches it
    qpos = env.unwrapped._block_qpos[0]  # red: x, y, z, quaternion
    data.qpos[qpos[2]] -= 0.008  # 8 mm into the table
    mujoco.mj_forward(model, data)
    assert contact_depth.penetration(data, objects) == pytest.approx(0.008 + resting, abs=5e-4)


def test_longest_still_stretch_counts_steps_without_motion(contact_depth) -> None:
    moving = np.cumsum(np.full((30, 2, 3), 0.01), axis=0)  # 1 cm per step
    assert contact_depth.longest_still_stretch(moving) == 0
    positions = np.concatenate([moving, np.repeat(moving[-1:], 12, axis=0), moving + 1])
    assert contact_depth.longest_still_stretch(positions) == 12
    jitter = positions.copy()
    jitter[31:41] += 0.002  # tremor below STILL does not break a still stretch
    assert contact_depth.longest_still_stretch(jitter) == 12
