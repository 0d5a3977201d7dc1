"""Per-quality-group success, length, jerk and realised behaviour (Markdown table).

    python scripts/quality_table.py DATASET.hdf5
    python scripts/quality_table.py --operators polymimic/Push-v1 [--episodes 30 --seed 1000]
    python scripts/quality_table.py --population polymimic/push/multi-operator-v1 [--episodes 20]

The first form reads any polymimic dataset and groups its demos by their ``quality`` attr
(robomimic's better / okay / worse). The second records fresh episodes of the task's
``*_SKILLS`` operators (its expert style, a uniform strategy over its behaviours, episode
seeds ``seed .. seed + episodes - 1`` for every quality) without writing a dataset: the
measurement behind the skills' calibration. The third records the first demos of every
operator of a named dataset exactly as generation would (one row per operator).

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
from polymimic.datasets import motion
from polymimic.datasets.diagnostics import END_EFFECTOR_KEY, control_dt, rms_jerk
from polymimic.datasets.hdf5 import _decode_attr, demo_names, open_dataset, read_env_args
from polymimic.datasets.registry import dataset_spec
from polymimic.operators import Operator, Strategy, record_episode, task_behaviours, task_operators
from polymimic.operators.align import ALIGN_SKILLS, ALIGN_STYLES
from polymimic.operators.avoid import AVOID_SKILLS, AVOID_STYLES
from polymimic.operators.push import PUSH_SKILLS, PUSH_STYLES
from polymimic.operators.sort import SORT_STYLES, sort_skills
from polymimic.operators.stack import STACK_SKILLS, STACK_STYLES

QUALITIES = ("better", "okay", "worse")
TASK_SKILLS = {
    "polymimic/Push-v1": PUSH_SKILLS,
    "polymimic/Avoid-v1": AVOID_SKILLS,
    "polymimic/Align-v1": ALIGN_SKILLS,
    "polymimic/Sort2-v1": sort_skills(2),
    "polymimic/Sort4-v1": sort_skills(4),
    "polymimic/Sort6-v1": sort_skills(6),
    "polymimic/Stack-v1": STACK_SKILLS,
}
TASK_STYLES = {
    "polymimic/Push-v1": PUSH_STYLES,
    "polymimic/Avoid-v1": AVOID_STYLES,
    "polymimic/Align-v1": ALIGN_STYLES,
    "polymimic/Sort2-v1": SORT_STYLES,
    "polymimic/Sort4-v1": SORT_STYLES,
    "polymimic/Sort6-v1": SORT_STYLES,
    "polymimic/Stack-v1": STACK_STYLES,
}
Group = dict[str, list]


def _new_groups() -> dict[str, Group]:
    return collections.defaultdict(lambda: collections.defaultdict(list))


def _add(group: Group, success: bool, path: np.ndarray, realised: bool | None,
         actions: np.ndarray | None = None) -> None:  # fmt: skip
    group["success"].append(success)
    group["length"].append(len(path))
    group["paths"].append(path)
    if actions is not None:
        group["actions"].append(actions)
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
            _add(groups[quality], bool(attrs.get("success", False)), path_array, realised,
                 demo["actions"][()])
    return groups, control_dt(env_args), source


def _record(job: tuple[str, str, int, str | None]) -> tuple[str, bool, np.ndarray, bool, np.ndarray]:
    """One episode of the task's ``quality`` operator (runs in a worker process)."""
    env_id, quality, seed, style = job
    entry = task_operators(env_id)
    strategy = Strategy("uniform", {label: 1.0 for label in task_behaviours(env_id)},
                        scene_weight=0.0, change_of_mind=0.0)  # fmt: skip
    skill = TASK_SKILLS[env_id][quality]
    style_value = TASK_STYLES[env_id][style] if style else entry.expert_style
    operator = Operator(quality, strategy, style_value, skill, seed=100)
    episode = record_episode(_env(env_id), operator, seed)
    realised = episode.attrs["behaviour"] == episode.attrs["intended_behaviour"]
    return (quality, episode.attrs["success"], episode.obs[END_EFFECTOR_KEY], realised,
            episode.actions)  # fmt: skip


_ENVS: dict[str, gym.Env] = {}


def _env(env_id: str) -> gym.Env:
    # One env per worker process and task: building one costs more than an episode.
    if env_id not in _ENVS:
        _ENVS[env_id] = gym.make(env_id)
    return _ENVS[env_id]


def _record_member(job: tuple[str, int, int]) -> tuple[str, bool, np.ndarray, bool, np.ndarray]:
    """One demo of a named dataset's operator (its strategy, style and skill)."""
    name, operator_index, demo_index = job
    spec = dataset_spec(name)
    operator = spec.operators[operator_index]
    seed = spec.episode_seed(operator_index, demo_index)
    episode = record_episode(_env(spec.env_id), operator, seed)
    realised = episode.attrs["behaviour"] == episode.attrs["intended_behaviour"]
    label = f"{operator.skill.quality} {operator.operator_id} {episode.attrs['style']}"
    return label, episode.attrs["success"], episode.obs[END_EFFECTOR_KEY], realised, episode.actions


def _run(record: Any, jobs: list[Any], workers: int) -> list[Any]:
    """``record`` over ``jobs``, in this process or over ``workers`` spawned processes."""
    if workers <= 1:
        return [record(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(record, jobs, chunksize=2))


def _grouped(results: list[Any]) -> dict[str, Group]:
    """Episode results ``(group, success, path, realised, actions)`` gathered per group."""
    groups = _new_groups()
    for label, success, path, realised, actions in results:
        _add(groups[label], success, path, realised, actions)
    return groups


def record_population(name: str, episodes: int, workers: int) -> tuple[dict[str, Group], float | None, str]:
    """Per-operator groups of the first ``episodes`` demos of each operator of a named dataset."""
    spec = dataset_spec(name)
    jobs = [(name, k, i) for k in range(len(spec.operators)) for i in range(episodes)]
    return _grouped(_run(_record_member, jobs, workers)), control_dt({"env_name": spec.env_id}), END_EFFECTOR_KEY


def record_operators(
    env_id: str, episodes: int, seed: int, workers: int, style: str | None = None
) -> tuple[dict[str, Group], float | None, str]:
    """Per-quality groups of freshly recorded episodes of a task's skill table."""
    jobs = [(env_id, q, seed + i, style) for q in TASK_SKILLS[env_id] for i in range(episodes)]
    return _grouped(_run(_record, jobs, workers)), control_dt({"env_name": env_id}), END_EFFECTOR_KEY


def table(groups: dict[str, Group], dt: float | None, source: str) -> str:
    """The Markdown table of per-quality success, length, jerk and realised behaviour."""
    units = ("m" if source != "actions" else "action units") + ("/s^3" if dt else "/step^3")
    lines = [
        f"| quality | demos | success | mean length (steps) | success length | mean speed (m/s) "
        f"| tip power > 3 Hz | action power > 3 Hz | RMS jerk ({units}) | realised |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = [q for q in QUALITIES if q in groups] + sorted(set(groups) - set(QUALITIES),
                                                            key=lambda g: (QUALITIES.index(g.split()[0]) if g.split()[0] in QUALITIES else 9, g))  # fmt: skip
    for quality in order:
        g = groups[quality]
        jerk = rms_jerk(g["paths"], dt or 1.0)
        realised = f"{np.mean(g['realised']):.2f}" if g["realised"] else "n/a"
        step = dt or 1.0
        ok = [n for n, s in zip(g["length"], g["success"], strict=True) if s]
        ok_length = f"{np.mean(ok):.1f}" if ok else "n/a"
        speed = np.mean([motion.mean_speed(p, step) for p in g["paths"]])
        tip_hf = motion.high_frequency_fraction([motion.velocities(p, step) for p in g["paths"]], step)
        act_hf = motion.high_frequency_fraction(g["actions"], step) if g["actions"] else float("nan")
        lines.append(
            f"| {quality} | {len(g['success'])} | {np.mean(g['success']):.3f} | "
            f"{np.mean(g['length']):.1f} | {ok_length} | {speed:.3f} | {tip_hf:.3f} | "
            f"{act_hf:.3f} | {jerk:.2f} | {realised} |"
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
    parser.add_argument("--style", help="style name for --operators (default: the expert's)")
    parser.add_argument("--population", metavar="DATASET",
                        help="record each operator of a named dataset (its own strategy, "
                             "style, skill and the dataset's seeds) instead")  # fmt: skip
    args = parser.parse_args(argv)
    if sum(x is not None for x in (args.dataset, args.operators, args.population)) != 1:
        parser.error("give one of: a dataset, --operators ENV_ID, --population DATASET")
    if args.population:
        result: Any = record_population(args.population, args.episodes, args.workers)
    elif args.operators:
        result = record_operators(
            args.operators, args.episodes, args.seed, args.workers, args.style
        )
    else:
        result = read_dataset(args.dataset)
    print(table(*result))


if __name__ == "__main__":
    main()
