"""Per-quality-group success, length, jerk and realised behaviour (Markdown table).

    python scripts/quality_table.py DATASET.hdf5
    python scripts/quality_table.py --operators polymimic/Push-v0 [--episodes 30 --seed 1000]

The first form reads any polymimic dataset and groups its demos by their ``quality`` attr
(robomimic's better / okay / worse). The second records fresh episodes of the task's
``*_SKILLS`` operators (its expert style, a uniform strategy over its behaviours, episode
seeds ``seed .. seed + episodes - 1`` for every quality) without writing a dataset: the
measurement behind the skills' calibration.

Jerk is :func:`polymimic.datasets.diagnostics.rms_jerk` of the measured tip position
(``obs/tip_pos``, m/s^3) with dt the task's control period, read from its registered class
(``physics_timestep * substeps``, :func:`~polymimic.datasets.diagnostics.control_dt`);
without a ``tip_pos`` key, the actions' (action units/s^3). "Realised" is the share of
successful demos whose behaviour is the one the operator intended.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import multiprocessing
from typing import Any

import gymnasium as gym
import numpy as np

import polymimic  # noqa: F401  (registers the tasks)
from polymimic.datasets.diagnostics import END_EFFECTOR_KEY, control_dt, rms_jerk
from polymimic.datasets.hdf5 import _decode_attr, demo_names, open_dataset, read_env_args
from polymimic.operators import Operator, Strategy, record_episode, task_behaviours, task_operators
from polymimic.operators.align import ALIGN_SKILLS
from polymimic.operators.avoid import AVOID_SKILLS
from polymimic.operators.push import PUSH_SKILLS
from polymimic.operators.sort import SORT_SKILLS
from polymimic.operators.stack import STACK_SKILLS

QUALITIES = ("better", "okay", "worse")
TASK_SKILLS = {
    "polymimic/Push-v0": PUSH_SKILLS,
    "polymimic/Avoid-v0": AVOID_SKILLS,
    "polymimic/Align-v0": ALIGN_SKILLS,
    "polymimic/Sort2-v0": SORT_SKILLS,
    "polymimic/Sort4-v0": SORT_SKILLS,
    "polymimic/Sort6-v0": SORT_SKILLS,
    "polymimic/Stack-v0": STACK_SKILLS,
}
Group = dict[str, list]


def _new_groups() -> dict[str, Group]:
    return collections.defaultdict(lambda: collections.defaultdict(list))


def _add(group: Group, success: bool, path: np.ndarray, realised: bool | None) -> None:
    group["success"].append(success)
    group["length"].append(len(path))
    group["paths"].append(path)
    if success and realised is not None:
        group["realised"].append(realised)


def read_dataset(path: str) -> tuple[dict[str, Group], float | None, str]:
    """Per-quality groups of a dataset file, its control period and the jerk's source key."""
    groups = _new_groups()
    with open_dataset(path) as f:
        env_args = read_env_args(f)
        names = demo_names(f)
        source = END_EFFECTOR_KEY if END_EFFECTOR_KEY in f["data"][names[0]]["obs"] else "actions"
        for name in names:
            demo = f["data"][name]
            attrs = {k: _decode_attr(v) for k, v in demo.attrs.items()}
            path_array = demo["obs"][source][()] if source != "actions" else demo["actions"][()]
            realised = None
            if "behaviour" in attrs and "intended_behaviour" in attrs:
                realised = attrs["behaviour"] == attrs["intended_behaviour"]
            quality = str(attrs.get("quality", "(none)"))
            _add(groups[quality], bool(attrs.get("success", False)), path_array, realised)
    return groups, control_dt(env_args), source


def _record(job: tuple[str, str, int]) -> tuple[str, bool, np.ndarray, bool]:
    """One episode of the task's ``quality`` operator (runs in a worker process)."""
    env_id, quality, seed = job
    entry = task_operators(env_id)
    strategy = Strategy("uniform", {label: 1.0 for label in task_behaviours(env_id)})
    skill = TASK_SKILLS[env_id][quality]
    operator = Operator(quality, strategy, entry.expert_style, skill, seed=100)
    episode = record_episode(_env(env_id), operator, entry.script_factory, seed)
    realised = episode.attrs["behaviour"] == episode.attrs["intended_behaviour"]
    return quality, episode.attrs["success"], episode.obs[END_EFFECTOR_KEY], realised


_ENVS: dict[str, gym.Env] = {}


def _env(env_id: str) -> gym.Env:
    # One env per worker process and task: building one costs more than an episode.
    if env_id not in _ENVS:
        _ENVS[env_id] = gym.make(env_id)
    return _ENVS[env_id]


def record_operators(
    env_id: str, episodes: int, seed: int, workers: int
) -> tuple[dict[str, Group], float | None, str]:
    """Per-quality groups of freshly recorded episodes of a task's skill table."""
    jobs = [(env_id, q, seed + i) for q in TASK_SKILLS[env_id] for i in range(episodes)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        results = list(pool.map(_record, jobs, chunksize=4))
    groups = _new_groups()
    for quality, success, path, realised in results:
        _add(groups[quality], success, path, realised)
    return groups, control_dt({"env_name": env_id}), END_EFFECTOR_KEY


def table(groups: dict[str, Group], dt: float | None, source: str) -> str:
    """The Markdown table of per-quality success, length, jerk and realised behaviour."""
    units = ("m" if source != "actions" else "action units") + ("/s^3" if dt else "/step^3")
    lines = [
        f"| quality | demos | success | mean length (steps) | RMS jerk ({units}) | realised |",
        "|---|---|---|---|---|---|",
    ]
    order = [q for q in QUALITIES if q in groups] + sorted(set(groups) - set(QUALITIES))
    for quality in order:
        g = groups[quality]
        jerk = rms_jerk(g["paths"], dt or 1.0)
        realised = f"{np.mean(g['realised']):.2f}" if g["realised"] else "n/a"
        lines.append(
            f"| {quality} | {len(g['success'])} | {np.mean(g['success']):.3f} | "
            f"{np.mean(g['length']):.1f} | {jerk:.2f} | {realised} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", help="a polymimic HDF5 dataset")
    parser.add_argument("--operators", metavar="ENV_ID", choices=sorted(TASK_SKILLS),
                        help="record the task's skill table instead of reading a dataset")
    parser.add_argument("--episodes", type=int, default=30, help="episodes per quality")
    parser.add_argument("--seed", type=int, default=1000, help="first episode seed")
    parser.add_argument("--workers", type=int, default=2, help="processes for --operators")
    args = parser.parse_args(argv)
    if (args.dataset is None) == (args.operators is None):
        parser.error("give either a dataset or --operators ENV_ID")
    if args.operators:
        result: Any = record_operators(args.operators, args.episodes, args.seed, args.workers)
    else:
        result = read_dataset(args.dataset)
    print(table(*result))


if __name__ == "__main__":
    main()
