"""Hand-made dataset files for tests (imported by tests and by ``conftest.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from polymimic.datasets.hdf5 import FORMAT_VERSION


def write_demo_file(
    path: Path,
    demos: dict[str, dict[str, np.ndarray]],
    masks: dict[str, list[str]] | None = None,
    env_args: dict | None = None,
) -> Path:
    """Write a complete polymimic-format file whose demos hold the given arrays.

    ``demos[name]`` maps ``"obs/<key>"`` and ``"actions"`` to arrays (more keys are written
    as given); the arrays every demo must have (rewards, dones, terminations, truncations,
    states, next_obs) are filled in. Demo names are kept as given (e.g. ``demo_10``), which
    ``write_dataset`` does not do; that is what the hand-written test files need.
    """
    env_args = env_args or {
        "env_name": "polymimic/Push-v1", "type": 2, "env_kwargs": {}, "env_version": "0.1.0",
    }
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(env_args)
        data.attrs["polymimic_format_version"] = FORMAT_VERSION
        data.attrs["polymimic_metadata"] = json.dumps({"versions": {}})
        total = 0
        for name, arrays in demos.items():
            steps = len(arrays["actions"])
            full = {
                "rewards": np.zeros(steps), "dones": np.zeros(steps, dtype=np.int64),
                "terminations": np.zeros(steps, dtype=bool),
                "truncations": np.zeros(steps, dtype=bool), "states": np.zeros((steps, 3)),
                **{f"next_{k}": v for k, v in arrays.items() if k.startswith("obs/")},
                **arrays,
            }
            for key, value in full.items():
                f.create_dataset(f"data/{name}/{key}", data=value)
            data[name].attrs["num_samples"] = steps
            total += steps
        data.attrs["total"] = total
        for key, names in (masks or {}).items():
            f.create_dataset(f"mask/{key}", data=np.array([n.encode() for n in names]))
    return path


def random_demos(seed: int = 0, count: int = 4, steps: int = 20) -> dict[str, dict[str, np.ndarray]]:
    """``count`` demos of Gaussian ``obs/tip_pos`` (2), ``obs/block_red`` (4) and actions (2)."""
    rng = np.random.default_rng(seed)
    return {
        f"demo_{i}": {
            "obs/tip_pos": rng.normal(size=(steps, 2)),
            "obs/block_red": rng.normal(size=(steps, 4)),
            "actions": rng.normal(size=(steps, 2)),
        }
        for i in range(count)
    }
