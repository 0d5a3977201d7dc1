"""Generating a named dataset: run every operator's episodes and write one HDF5 file."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym

import polymimic
from polymimic.datasets.episode import Episode
from polymimic.datasets.hdf5 import write_dataset
from polymimic.datasets.registry import DatasetSpec
from polymimic.operators import record_episode, script_factory

GYM_ENV_TYPE = 2  # robomimic's EnvType.GYM_TYPE


@dataclasses.dataclass(frozen=True)
class DemoJob:
    """One demo to record: which operator, which of its demos, with which seed."""

    operator_index: int
    demo_index: int
    seed: int


def demo_jobs(spec: DatasetSpec, demos_per_operator: int) -> list[DemoJob]:
    """All demos of a dataset in file order (operator-major)."""
    return [
        DemoJob(k, j, spec.episode_seed(k, j, demos_per_operator))
        for k in range(len(spec.operators))
        for j in range(demos_per_operator)
    ]


def env_args(spec: DatasetSpec) -> dict[str, Any]:
    """robomimic's ``env_args``: what a reader needs to re-create the environment."""
    return {
        "env_name": spec.env_id,
        "type": GYM_ENV_TYPE,
        "env_kwargs": dict(spec.env_kwargs),
        "env_version": polymimic.__version__,
    }


# Each worker process keeps one env, created on first use: env construction (model
# compilation, home-pose IK) costs more than a short episode.
_WORKER_ENVS: dict[str, gym.Env] = {}


def _record(spec: DatasetSpec, job: DemoJob) -> Episode:
    env = _WORKER_ENVS.get(spec.name)
    if env is None:
        env = _WORKER_ENVS[spec.name] = gym.make(spec.env_id, **spec.env_kwargs)
    operator = spec.operators[job.operator_index]
    episode = record_episode(env, operator, script_factory(spec.env_id), job.seed)
    episode.attrs["demo_index"] = job.demo_index
    return episode


def iter_episodes(spec: DatasetSpec, jobs: list[DemoJob], workers: int = 1) -> Iterator[Episode]:
    """Record ``jobs`` in order; with ``workers > 1`` over spawned processes.

    Results come back in job order whatever the number of workers, so the file's bytes do
    not depend on it. ``spawn`` because a forked child of a process holding a GL context
    can hang.
    """
    if workers <= 1:
        for job in jobs:
            yield _record(spec, job)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(_record, [spec] * len(jobs), jobs, chunksize=4)


def generate_dataset(
    spec: DatasetSpec,
    path: str | Path,
    demos_per_operator: int | None = None,
    workers: int = 1,
    valid_fraction: float = 0.1,
) -> Path:
    """Generate ``spec`` (optionally with fewer demos per operator) into ``path``.

    The file is written atomically; the same spec and demo count give identical arrays.
    """
    count = spec.demos_per_operator if demos_per_operator is None else demos_per_operator
    if count < 1:
        raise ValueError(f"demos_per_operator must be >= 1, got {count}")
    jobs = demo_jobs(spec, count)
    metadata = {
        "dataset_name": spec.name,
        "description": spec.description,
        "demos_per_operator": count,
        "operators": [{**op.labels(), "seed": op.seed} for op in spec.operators],
    }
    return write_dataset(
        path,
        iter_episodes(spec, jobs, workers),
        env_args=env_args(spec),
        metadata=metadata,
        valid_fraction=valid_fraction,
    )
