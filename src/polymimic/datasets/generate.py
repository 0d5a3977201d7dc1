"""Generating a named dataset: record every operator's demos, resumably, into one HDF5 file.

Each demo is recorded into a work directory next to the output (``<out>.partial/``), one
small single-demo dataset file per demo (``demo_<operator>_<index>.hdf5``), written
atomically as soon as it is recorded. A killed run therefore loses at most the demos in
flight: rerunning it reuses every readable demo there and records only the missing ones.
The work directory's ``params.json`` pins what its demos are (dataset, demos per operator,
operators, library versions); a rerun with other parameters is refused, never mixed in.

The final file is assembled from the work directory in a fixed order (operator-major), so
its arrays depend neither on the number of workers nor on interruptions. It is written
atomically, and only then is the work directory removed: an existing output is replaced
only by a complete new one.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import glob
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
from tqdm import tqdm

import polymimic
from polymimic.datasets.episode import Episode
from polymimic.datasets.hdf5 import DatasetError, read_episode, write_dataset
from polymimic.datasets.registry import DatasetSpec
from polymimic.datasets.validate import validate_dataset
from polymimic.errors import UserError
from polymimic.io import atomic_write_json, exclusive_lock, library_versions
from polymimic.operators import record_episode

GYM_ENV_TYPE = 2  # robomimic's EnvType.GYM_TYPE
WORK_DIR_SUFFIX = ".partial"
PARAMS_FILE = "params.json"
LOCK_FILE = "lock"
#: Library versions that change a demo's bytes; demos recorded under others are not mixed in.
PINNED_VERSIONS = ("polymimic", "mujoco", "numba", "numpy", "gymnasium")

_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]+")
log = logging.getLogger(__name__)


class GenerationError(UserError):
    """Generation cannot proceed as asked (work directory of other parameters, locked, ...).

    The message names the problem and what to do; a ``ValueError`` so the CLI prints one line.
    """


@dataclasses.dataclass(frozen=True)
class DemoJob:
    """One demo to record: which operator, which of its demos, with which seed."""

    operator_index: int
    operator_id: str
    demo_index: int
    seed: int

    @property
    def filename(self) -> str:
        """Its file in the work directory."""
        return f"demo_{self.operator_id}_{self.demo_index}.hdf5"


def demo_jobs(spec: DatasetSpec, demos_per_operator: int) -> list[DemoJob]:
    """All demos of a dataset in file order (operator-major)."""
    jobs = []
    for k, operator in enumerate(spec.operators):
        if not _SAFE_ID.fullmatch(operator.operator_id):
            raise ValueError(f"operator id {operator.operator_id!r} cannot be part of a file name")
        jobs += [
            DemoJob(k, operator.operator_id, j, spec.episode_seed(k, j))
            for j in range(demos_per_operator)
        ]
    return jobs


def env_args(spec: DatasetSpec) -> dict[str, Any]:
    """robomimic's ``env_args``: what a reader needs to re-create the environment."""
    return {
        "env_name": spec.env_id,
        "type": GYM_ENV_TYPE,
        "env_kwargs": dict(spec.env_kwargs),
        "env_version": polymimic.__version__,
    }


def work_dir_for(path: str | os.PathLike[str]) -> Path:
    """The work directory of an output file: ``<out>.partial`` beside it."""
    out = Path(path)
    return out.with_name(out.name + WORK_DIR_SUFFIX)


def generation_params(spec: DatasetSpec, demos_per_operator: int) -> dict[str, Any]:
    """What decides the demos in a work directory; a resumed run must have the same."""
    versions = library_versions()
    params = {
        "dataset": spec.name,
        "demos_per_operator": demos_per_operator,
        "env_id": spec.env_id,
        "env_kwargs": dict(spec.env_kwargs),
        "family": spec.family,
        "operators": [{**op.labels(), "seed": op.seed} for op in spec.operators],
        # Full definitions (strategy weights, style and skill parameters): a recalibrated
        # skill keeps its label but changes every demo.
        "operator_definitions": [repr(op) for op in spec.operators],
        "versions": {k: versions.get(k) for k in PINNED_VERSIONS},
        # The scripts and tasks themselves: an edited script under the same version number
        # must not resume a work directory its old self started.
        "code": code_digest(),
    }
    if spec.style_distance is not None:  # only then: other datasets' params stay as they were
        params["style_distance"] = spec.style_distance
    return json.loads(json.dumps(params))  # tuples -> lists, as it reads back from JSON


def code_digest() -> str:
    """sha256 over the source of the packages that decide a demo: envs and operators."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in ("envs", "operators"):
        for source in sorted((root / package).glob("*.py")):
            digest.update(f"{package}/{source.name}".encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------- recording

# Each worker process keeps its envs, created on first use: env construction (model
# compilation, home-pose IK) costs more than a short episode. Keyed by id and kwargs, not by
# dataset name, so two specs sharing a name can never share an env.
_WORKER_ENVS: dict[str, gym.Env] = {}


def _record(spec: DatasetSpec, job: DemoJob) -> Episode:
    key = json.dumps([spec.env_id, spec.env_kwargs], sort_keys=True, default=str)
    env = _WORKER_ENVS.get(key)
    if env is None:
        env = _WORKER_ENVS[key] = gym.make(spec.env_id, **spec.env_kwargs)
    operator = spec.operators[job.operator_index]
    episode = record_episode(env, operator, job.seed, family=spec.family)
    episode.attrs["demo_index"] = job.demo_index
    if spec.style_distance is not None:  # so a scorer reading one demo knows the knob
        episode.attrs["style_distance"] = float(spec.style_distance)
    return episode


def _record_to_file(spec: DatasetSpec, job: DemoJob, work_dir: Path) -> None:
    """Record one demo and write it (atomically) as a one-demo dataset in ``work_dir``.

    The worker writes the file itself, so only the job crosses process boundaries.
    """
    episode = _record(spec, job)
    write_dataset(work_dir / job.filename, [episode], env_args(spec), valid_fraction=0.0)


def _record_missing(
    spec: DatasetSpec, jobs: list[DemoJob], work_dir: Path, workers: int, progress: bool
) -> None:
    """Record ``jobs`` into ``work_dir``; over ``workers`` spawned processes when > 1.

    ``spawn`` because a forked child of a process holding a GL context can hang. Files are
    written as jobs complete, in whatever order; the assembly restores the order.
    """
    bar = tqdm(total=len(jobs), desc="recording demos", unit="demo", disable=not progress)
    with bar:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                _record_to_file(spec, job, work_dir)
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context)
        try:
            futures = [pool.submit(_record_to_file, spec, job, work_dir) for job in jobs]
            for future in concurrent.futures.as_completed(futures):
                future.result()  # re-raises a worker's error here
                bar.update()
        except BaseException:
            # Finished demos are already on disk for the rerun; do not wait for queued ones.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


# ------------------------------------------------------------------------- work directory


@contextlib.contextmanager
def _locked(work_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the work directory (released by the OS if killed)."""
    busy = GenerationError(
        f"{work_dir}: another generation is writing into this work directory; wait for it "
        "to finish or choose another output path"
    )
    with exclusive_lock(work_dir / LOCK_FILE, busy):
        yield


def _check_params(work_dir: Path, params: dict[str, Any]) -> None:
    """Record ``params`` in a new work directory, or refuse one made with other params."""
    params_file = work_dir / PARAMS_FILE
    if not params_file.is_file():
        atomic_write_json(params_file, params)
        return
    try:
        recorded = json.loads(params_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    if recorded == params:
        return
    changed = sorted(k for k in params.keys() | recorded.keys() if params.get(k) != recorded.get(k))
    details = "; ".join(f"{k}: {recorded.get(k)!r} there, {params.get(k)!r} now" for k in changed)
    raise GenerationError(
        f"{work_dir} holds demos of an interrupted generation with other parameters ({details}). "
        f"Rerun with the same parameters to resume it, or delete {work_dir} to start over."
    )


def _remove_stale_temporaries(work_dir: Path, out: Path) -> None:
    """Delete temp files of writes a kill interrupted (atomic_write's naming, never others)."""
    for tmp in work_dir.glob(".demo_*.tmp.hdf5"):
        tmp.unlink(missing_ok=True)
    for tmp in out.parent.glob(f".{glob.escape(out.name)}.*.tmp{glob.escape(out.suffix)}"):
        tmp.unlink(missing_ok=True)


def _load_demo(path: Path, job: DemoJob) -> Episode:
    """Read a recorded demo back, checking that it is the one ``job`` asks for.

    Raises:
        DatasetError: the file is unreadable, damaged or holds another demo.
    """
    episode = read_episode(path, "demo_0")
    found = tuple(episode.attrs.get(k) for k in ("operator", "demo_index", "seed"))
    if found != (job.operator_id, job.demo_index, job.seed):
        raise DatasetError(f"{path}: holds demo {found}, expected {job}")
    return episode


def _missing_jobs(work_dir: Path, jobs: list[DemoJob]) -> list[DemoJob]:
    """Jobs whose demo is not (readably) in the work directory; damaged files are removed."""
    missing = []
    for job in jobs:
        path = work_dir / job.filename
        if not path.exists():
            missing.append(job)
            continue
        try:
            _load_demo(path, job)  # reads every array, so truncation or corruption shows
        except (DatasetError, OSError, KeyError) as exc:
            log.warning("re-recording %s: %s", path.name, exc)
            path.unlink()
            missing.append(job)
    return missing


# ------------------------------------------------------------------------- the entry point


def _reusable_output(path: Path, spec: DatasetSpec, count: int) -> bool:
    """True when ``path`` is a valid finished generation of ``spec`` with ``count`` demos.

    Raises:
        GenerationError: ``path`` exists but is something else; it is never overwritten
            without ``if_exists="overwrite"``.
    """
    if not path.exists():
        return False
    fix = "Pass --overwrite (if_exists='overwrite') to replace it, or choose another path."
    try:
        metadata = validate_dataset(path).metadata
    except DatasetError as exc:
        raise GenerationError(f"{path} exists but is not a valid dataset ({exc}). {fix}") from None
    found = (metadata.get("dataset_name"), metadata.get("demos_per_operator"))
    if found != (spec.name, count):
        raise GenerationError(
            f"{path} exists and holds dataset {found[0]!r} with {found[1]} demos per operator, "
            f"not {spec.name!r} with {count}. {fix}"
        )
    recorded, current = metadata.get("generation", {}), generation_params(spec, count)
    changed = sorted(k for k in current if recorded.get(k) != current[k])
    if changed:
        raise GenerationError(
            f"{path} holds {spec.name!r} made with other parameters or library versions "
            f"(differs in: {', '.join(changed)}), e.g. by an older polymimic. {fix}"
        )
    return True


def _metadata(spec: DatasetSpec, count: int) -> dict[str, Any]:
    """The dataset-level metadata stored beside the demos."""
    return {
        "dataset_name": spec.name,
        "description": spec.description,
        "demos_per_operator": count,
        "operators": [{**op.labels(), "seed": op.seed} for op in spec.operators],
        "generation": generation_params(spec, count),  # what reusing the file requires
    }


def generate_dataset(
    spec: DatasetSpec,
    path: str | os.PathLike[str],
    demos_per_operator: int | None = None,
    workers: int = 1,
    valid_fraction: float = 0.1,
    *,
    if_exists: Literal["overwrite", "reuse"] = "overwrite",
    progress: bool = False,
) -> Path:
    """Generate ``spec`` (optionally with fewer or more demos per operator) into ``path``.

    Resumable: demos already recorded in ``<path>.partial/`` by an interrupted run with the
    same parameters are reused. The same spec and demo count give identical arrays whatever
    ``workers`` and however often the run was interrupted.

    Args:
        spec: the dataset definition.
        path: the output file (its directory is created).
        demos_per_operator: default ``spec.demos_per_operator``; demo seeds do not depend
            on it, so a smaller count gives the first demos of each operator.
        workers: processes recording demos in parallel.
        valid_fraction: share of successful demos in ``mask/valid``.
        if_exists: when ``path`` exists, ``"overwrite"`` regenerates and replaces it (only
            once the new file is complete); ``"reuse"`` returns it untouched if it is a valid
            generation of the same dataset and count, and raises ``GenerationError`` if not.
        progress: show a progress bar on stderr.

    Returns:
        The output path.

    Raises:
        GenerationError: a work directory of other parameters or in use, or (``"reuse"``)
            an existing file that is not this generation.
    """
    count = spec.demos_per_operator if demos_per_operator is None else demos_per_operator
    if count < 1:
        raise ValueError(f"demos_per_operator must be >= 1, got {count}")
    if if_exists not in ("overwrite", "reuse"):
        raise ValueError(f"if_exists must be 'overwrite' or 'reuse', got {if_exists!r}")
    out, work_dir = Path(path), work_dir_for(path)
    jobs = demo_jobs(spec, count)
    if if_exists == "reuse" and _reusable_output(out, spec, count):
        log.info("%s already holds this generation; reusing it", out)
        return out
    work_dir.mkdir(parents=True, exist_ok=True)
    with _locked(work_dir):
        _check_params(work_dir, generation_params(spec, count))
        _remove_stale_temporaries(work_dir, out)
        missing = _missing_jobs(work_dir, jobs)
        if len(missing) < len(jobs):
            log.info("resuming: %d of %d demos already recorded", len(jobs) - len(missing), len(jobs))
        _record_missing(spec, missing, work_dir, workers, progress)
        episodes = (_load_demo(work_dir / job.filename, job) for job in jobs)
        write_dataset(
            out, episodes, env_args(spec), _metadata(spec, count), valid_fraction=valid_fraction
        )
        shutil.rmtree(work_dir)
    return out
