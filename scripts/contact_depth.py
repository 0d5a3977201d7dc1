"""How deep objects interpenetrate in a dataset's demos, measured from MuJoCo's contacts.

    python scripts/contact_depth.py DATASET.hdf5 [--every 1] [--out results/contacts/stack.json]

Every recorded state of every demo (``data/demo_*/states``, every ``--every``-th) is
restored with ``reset_to`` (which runs ``mj_forward``, so MuJoCo's collision detection
fills ``data.contact``); a contact's ``dist < 0`` is its penetration depth. Only contacts
that involve a free object (a cube, a block, a box) are counted: the arm's own links and
the table's fixed geoms are not what a learner sees. Reports per demo the deepest
penetration and how many steps exceed 2 and 5 mm, and over the file the maximum, the 99th
percentile of the per-demo maxima and the demos over 5 mm (the issue's bound for Stack), with
the geom pair of each such demo's deepest contact.

Also reports, for successful demos, the longest stretch (steps) in which no object moved
more than 5 mm and the hand did not move more than 5 mm either (a script deadlock: nothing
happens while the clock runs).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np

import polymimic  # noqa: F401  (registers the tasks)
from polymimic.datasets.reader import demo_names, open_dataset, read_env_args
from polymimic.io import atomic_write_json, library_versions

STILL = 0.005  # m: below this, over a stretch, nothing moved


def free_body_geoms(model: mujoco.MjModel) -> set[int]:
    """Geoms of bodies that hang on a free joint (the task's movable objects)."""
    free_bodies = {
        int(model.jnt_bodyid[j]) for j in range(model.njnt)
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE
    }  # fmt: skip
    return {g for g in range(model.ngeom) if int(model.geom_bodyid[g]) in free_bodies}


def penetration(data: mujoco.MjData, objects: set[int]) -> float:
    """Deepest penetration (m, >= 0) among the contacts that touch an object."""
    return deepest_contact(data, objects)[0]


def deepest_contact(data: mujoco.MjData, objects: set[int]) -> tuple[float, tuple[int, int]]:
    """(depth, geom pair) of the deepest contact touching an object; (0, (-1, -1)) if none."""
    deepest, pair = 0.0, (-1, -1)
    for contact in data.contact[: data.ncon]:
        if (contact.geom1 in objects or contact.geom2 in objects) and contact.dist < -deepest:
            deepest, pair = -float(contact.dist), (int(contact.geom1), int(contact.geom2))
    return deepest, pair


def pair_name(model: mujoco.MjModel, pair: tuple[int, int]) -> str:
    """``geom1/geom2`` by name (or id where unnamed); ``none`` for no contact."""
    if pair[0] < 0:
        return "none"
    return "/".join(model.geom(g).name or str(g) for g in sorted(pair))


def longest_still_stretch(positions: np.ndarray) -> int:
    """Longest run of steps over which every tracked point stayed within ``STILL`` (m)
    of where the run began. ``positions``: (T, K, 3) per step and point."""
    best, start = 0, 0
    for t in range(1, len(positions)):
        if np.any(np.linalg.norm(positions[t] - positions[start], axis=-1) > STILL):
            start = t
        best = max(best, t - start)
    return best


def measure(path: Path, every: int) -> dict:
    with open_dataset(path) as f:
        env_id = read_env_args(f)["env_name"]
        env = gym.make(env_id)
        env.reset(seed=0)
        model, data = env.unwrapped.model, env.unwrapped.data
        objects = free_body_geoms(model)
        object_bodies = sorted({int(model.geom_bodyid[g]) for g in objects})
        demos = {}
        for name in demo_names(f):
            demo = f["data"][name]
            states = demo["states"][()]
            depths, points, pairs = [], [], []
            for state in states[::every]:
                env.unwrapped.reset_to(state)
                depth, pair = deepest_contact(data, objects)
                depths.append(depth)
                pairs.append(pair)
                points.append(np.vstack([data.xpos[object_bodies], data.site("tip").xpos]))
            depths = np.array(depths)
            demos[name] = {
                "success": bool(demo.attrs.get("success", False)),
                "max_mm": 1000 * float(depths.max()),
                "deepest_pair": pair_name(model, pairs[int(np.argmax(depths))]),
                "steps_over_2mm": int((depths > 0.002).sum()) * every,
                "steps_over_5mm": int((depths > 0.005).sum()) * every,
                "longest_still_steps": longest_still_stretch(np.array(points)) * every,
            }
    maxima = np.array([d["max_mm"] for d in demos.values()])
    still = [d["longest_still_steps"] for d in demos.values() if d["success"]]
    return {
        "file": str(path), "env_id": env_id, "demos": len(demos), "every": every,
        "max_mm": float(maxima.max()), "p99_of_demo_max_mm": float(np.quantile(maxima, 0.99)),
        "median_of_demo_max_mm": float(np.median(maxima)),
        "demos_over_5mm": int((maxima > 5.0).sum()),
        "deepest_pairs_over_5mm": dict(collections.Counter(
            d["deepest_pair"] for d in demos.values() if d["max_mm"] > 5.0
        ).most_common()),
        "longest_still_steps_in_successful_demos": int(max(still)) if still else None,
        "successful_demos_with_100_still_steps": int(sum(s >= 100 for s in still)),
        "versions": library_versions(), "per_demo": demos,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--every", type=int, default=1, help="measure every k-th state")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    result = measure(args.dataset, args.every)
    summary = {k: v for k, v in result.items() if k != "per_demo"}
    print(json.dumps(summary, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
