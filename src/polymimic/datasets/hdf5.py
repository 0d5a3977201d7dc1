"""Demonstration datasets in robomimic's HDF5 layout: atomic writing, checked reading.

Layout (robomimic's, which its ``SequenceDataset`` and ``get_dataset_info`` read)::

    data/                     attrs: total, env_args (JSON), polymimic_format_version,
                                     polymimic_metadata (JSON: library versions + caller's dict)
      demo_<i>/               attrs: num_samples + every entry of Episode.attrs
        obs/<key>, next_obs/<key>, actions, rewards, dones, terminations, truncations, states
    mask/<filter_key>         arrays of byte strings naming demos: train, valid, failed,
                              operator_<id>, ...

Every user-caused problem (missing, truncated or foreign file, other format version,
inconsistent demo) raises one ``DatasetError`` whose message names the problem and the fix,
instead of a traceback from inside h5py. Whole-file validation and the dataset summary are
in ``polymimic.datasets.validate``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from polymimic.datasets.episode import Episode
from polymimic.io import atomic_write, fsync, library_versions

FORMAT_VERSION = 1
#: Keys ``env_args`` must carry (robomimic reads the first three; the version pins the env).
REQUIRED_ENV_ARGS = ("env_name", "type", "env_kwargs", "env_version")
#: Datasets every demo group holds; robomimic reads actions/rewards/dones/states, and
#: polymimic's Episode also needs the separate termination/truncation flags.
DEMO_ARRAYS = ("actions", "rewards", "dones", "terminations", "truncations", "states")
DEMO_GROUPS = ("obs", "next_obs")

_DEMO_NAME = re.compile(r"demo_(\d+)")
_COMPRESS_MIN_BYTES = 1 << 16  # below this gzip costs more time than it saves space
_IMAGE_CHUNK_FRAMES = 8
_REGENERATE = "Regenerate it with `polymimic data generate`."

PathLike = str | os.PathLike[str]


class DatasetError(ValueError):
    """A dataset file is missing, damaged, of another format version or inconsistent.

    The message names the problem and what to do about it.
    """


def _error(path: Any, problem: str, fix: str = _REGENERATE) -> DatasetError:
    return DatasetError(f"{path}: {problem}. {fix}")


# --------------------------------------------------------------------------- writing


def write_dataset(
    path: PathLike,
    episodes: Iterable[Episode],
    env_args: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
    valid_fraction: float = 0.1,
    split_seed: int = 0,
) -> Path:
    """Write episodes as ``demo_0..demo_{N-1}`` (in the given order) to a new HDF5 file.

    Written to a temporary file in the same directory, fsynced, then ``os.replace``d over
    ``path``: a crash (even inside the ``episodes`` iterator) never leaves a half-written file
    under the final name, and leaves any previous file there intact. Masks: ``train`` and
    ``valid`` split the successful demos (``attrs.get("success", True)``) with ``split_seed``,
    with at least one valid demo once there are two successes and ``valid_fraction > 0``;
    ``failed`` holds the others (``attrs["success"]`` false; possibly empty);
    ``operator_<id>`` holds every demo of each ``attrs["operator"]``.

    Args:
        path: destination file.
        episodes: demonstrations, streamed; each is written as soon as it arrives.
        env_args: robomimic env metadata with at least ``env_name``, ``type``,
            ``env_kwargs`` and ``env_version``; stored as JSON.
        metadata: extra JSON-serialisable facts stored next to the library versions.
        valid_fraction: share of successful demos put into ``mask/valid``, in [0, 1).
        split_seed: seed of the train/valid split.

    Returns:
        The final path.

    Raises:
        ValueError: bad arguments, or an inconsistent episode or attr HDF5 cannot hold.
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    env_json = _env_args_json(env_args)
    metadata_json = _metadata_json(metadata or {})

    def write(tmp: Path) -> None:
        # "w": atomic_write has already created the (empty, uniquely named) temp file.
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            records = _write_demos(data, episodes)
            data.attrs["total"] = sum(length for _, length, _ in records)
            data.attrs["env_args"] = env_json
            data.attrs["polymimic_format_version"] = FORMAT_VERSION
            data.attrs["polymimic_metadata"] = metadata_json
            for key, names in _split_masks(records, valid_fraction, split_seed).items():
                _put_mask(f, key, names)

    return atomic_write(path, write)


def write_masks(path: PathLike, masks: Mapping[str, Iterable[str]]) -> None:
    """Add or replace ``mask/<key>`` entries (stored sorted by demo index) in a dataset.

    Each mask is written under a staging name and then moved over the old one, so an
    interruption leaves the old or the new mask, never a partial one.

    Raises:
        DatasetError: the file cannot be opened, or a mask names a demo it does not hold.
        ValueError: a mask key that cannot be an HDF5 name.
    """
    with open_dataset(path, mode="r+") as f:
        known = set(demo_names(f))
        prepared = {}
        for key, names in masks.items():
            names = list(names)
            unknown = sorted(set(names) - known)
            if unknown:
                problem = f"mask '{key}' names demos the file does not hold: {unknown[:5]}"
                raise _error(path, problem, "Use names from demo_names().")
            prepared[key] = sorted(names, key=_demo_index)
        for key, names in prepared.items():
            _put_mask(f, key, names)
    fsync(path)


def _write_demos(data: h5py.Group, episodes: Iterable[Episode]) -> list[tuple[str, int, dict]]:
    """Write each episode as ``demo_<i>``; return (name, length, attrs) per demo."""
    records = []
    for index, episode in enumerate(episodes):
        name = f"demo_{index}"
        _check_episode(episode, name)
        demo = data.create_group(name)
        for group_name in DEMO_GROUPS:
            group = demo.create_group(group_name)
            for key, value in getattr(episode, group_name).items():
                _create(group, key, np.asarray(value))
        _create(demo, "actions", np.asarray(episode.actions))
        _create(demo, "rewards", np.asarray(episode.rewards))
        # robomimic's own files store dones as 0/1 integers.
        _create(demo, "dones", episode.dones.astype(np.int64))
        _create(demo, "terminations", np.asarray(episode.terminations, dtype=bool))
        _create(demo, "truncations", np.asarray(episode.truncations, dtype=bool))
        _create(demo, "states", np.asarray(episode.states))
        demo.attrs["num_samples"] = len(episode)
        for key, value in episode.attrs.items():
            demo.attrs[key] = _encode_attr(name, key, value)
        records.append((name, len(episode), dict(episode.attrs)))
    if not records:
        raise ValueError("write_dataset got no episodes; a dataset needs at least one demo")
    return records


def _check_episode(episode: Episode, name: str) -> None:
    """Raise ValueError unless every array of the episode has ``len(episode)`` rows."""
    length = len(episode)
    if length < 1 or np.ndim(episode.actions) != 2:
        raise ValueError(f"{name}: actions must be (T, A) with T >= 1, got {episode.actions.shape}")
    if set(episode.obs) != set(episode.next_obs) or not episode.obs:
        raise ValueError(
            f"{name}: obs keys {sorted(episode.obs)} and next_obs keys "
            f"{sorted(episode.next_obs)} must be the same non-empty set"
        )
    arrays = {f"obs/{k}": v for k, v in episode.obs.items()}
    arrays |= {f"next_obs/{k}": v for k, v in episode.next_obs.items()}
    for field in ("rewards", "terminations", "truncations", "states"):
        arrays[field] = getattr(episode, field)
    wrong = {k: np.shape(v) for k, v in arrays.items() if np.shape(v)[:1] != (length,)}
    if wrong:
        raise ValueError(f"{name}: expected {length} rows (len(actions)) but got shapes {wrong}")


def _create(group: h5py.Group, name: str, array: np.ndarray) -> None:
    """Create a dataset, gzip-compressed only when it is large enough to be worth it.

    Image stacks (T, H, W, C) are chunked a few frames at a time, so reading one window
    decompresses a few frames rather than h5py's default chunk shape (which can span
    image rows across the whole episode).
    """
    compress = array.ndim > 0 and array.nbytes >= _COMPRESS_MIN_BYTES
    chunks = None
    if compress and array.ndim == 4:
        chunks = (min(len(array), _IMAGE_CHUNK_FRAMES), *array.shape[1:])
    group.create_dataset(
        name, data=array, compression="gzip" if compress else None, chunks=chunks
    )


def _encode_attr(demo: str, key: str, value: Any) -> Any:
    """Turn a Python scalar into a value HDF5 stores faithfully (and that reads back)."""
    if key == "num_samples":
        raise ValueError(f"{demo}: attrs['num_samples'] is reserved for robomimic's demo length")
    if isinstance(value, bool | np.bool_):  # before int: bool is a subclass of int
        return np.bool_(value)
    if isinstance(value, int | np.integer):
        return np.int64(value)
    if isinstance(value, float | np.floating):
        return np.float64(value)
    if isinstance(value, str):
        return value
    raise ValueError(
        f"{demo}: attrs[{key!r}] = {value!r} has type {type(value).__name__}; "
        "demo attrs must be str, int, float or bool"
    )


def _env_args_json(env_args: Mapping[str, Any]) -> str:
    missing = [k for k in REQUIRED_ENV_ARGS if k not in env_args]
    if missing:
        raise ValueError(f"env_args lacks {missing}; robomimic needs {list(REQUIRED_ENV_ARGS)}")
    try:
        return json.dumps(dict(env_args), sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"env_args must be JSON-serialisable: {exc}") from None


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    if "versions" in metadata:
        raise ValueError("metadata key 'versions' is reserved for the recorded library versions")
    try:
        return json.dumps({"versions": library_versions(), **metadata}, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None


def choose_valid(candidates: list[str], valid_fraction: float, seed: int) -> set[str]:
    """The validation demos among ``candidates``: robomimic's split_train_val rule.

    ``round(valid_fraction * n)`` of them, at least one once ``n >= 2`` and the fraction is
    positive, never all of them (train is never empty); which ones is a seeded permutation.
    """
    n = len(candidates)
    n_valid = int(round(valid_fraction * n))
    if valid_fraction > 0 and n >= 2:
        n_valid = max(n_valid, 1)
    n_valid = min(n_valid, max(n - 1, 0))
    return {candidates[i] for i in np.random.default_rng(seed).permutation(n)[:n_valid]}


def _split_masks(
    records: list[tuple[str, int, dict]], valid_fraction: float, seed: int
) -> dict[str, list[str]]:
    """train/valid over successful demos, ``failed``, and one ``operator_<id>`` per operator."""
    successful = [name for name, _, attrs in records if attrs.get("success", True)]
    valid = choose_valid(successful, valid_fraction, seed)
    masks = {
        "train": [s for s in successful if s not in valid],
        "valid": [s for s in successful if s in valid],
        # Failed demos stay in the file (they are data about the operators) but a learner
        # filtering by train/valid never sees them; this mask names them explicitly.
        "failed": [name for name, _, attrs in records if not attrs.get("success", True)],
    }
    for name, _, attrs in records:
        if "operator" in attrs:
            masks.setdefault(f"operator_{attrs['operator']}", []).append(name)
    return masks


def _put_mask(f: h5py.File, key: str, names: list[str]) -> None:
    """Write ``mask/<key>`` as robomimic does (byte strings), replacing any old one."""
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"mask key {key!r} must be non-empty, without '/' or a leading '.'")
    group = f.require_group("mask")
    staging = f".{key}.tmp"
    if staging in group:
        del group[staging]
    group.create_dataset(staging, data=np.array([n.encode("utf-8") for n in names], dtype="S"))
    if key in group:
        del group[key]
    group.move(staging, key)


# --------------------------------------------------------------------------- reading


def open_dataset(path: PathLike, mode: str = "r") -> h5py.File:
    """Open a polymimic dataset after checking that it exists, is HDF5 and has our version.

    Args:
        path: the dataset file.
        mode: ``"r"`` (default) or ``"r+"`` to modify masks.

    Returns:
        The open ``h5py.File``; close it (or use it as a context manager).

    Raises:
        DatasetError: missing file, not HDF5 / truncated / corrupt, no ``data`` group, or a
            format version other than ``FORMAT_VERSION``.
    """
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a dataset file" if p.is_dir() else "does not exist"
        fix = "Check the path, or create the dataset with `polymimic data generate`."
        raise _error(p, f"dataset file {what}", fix)
    try:
        f = h5py.File(p, mode)
    except OSError as exc:
        raise _corrupt(p, "not a readable HDF5 file", exc) from None
    try:
        _check_header(f, p)
    except BaseException:
        f.close()
        raise
    return f


def _check_header(f: h5py.File, path: Path) -> None:
    if not isinstance(f.get("data"), h5py.Group):
        problem = "HDF5 file has no 'data' group, so it is not a robomimic-layout dataset"
        raise _error(path, problem, f"Point to a dataset file. {_REGENERATE}")
    version = f["data"].attrs.get("polymimic_format_version")
    if version is None:
        problem = "'data' has no polymimic_format_version attribute: not written by polymimic"
        raise _error(path, f"{problem}; this polymimic reads format version {FORMAT_VERSION}")
    if int(version) != FORMAT_VERSION:
        raise _error(
            path,
            f"dataset has polymimic format version {int(version)}, but this polymimic reads "
            f"format version {FORMAT_VERSION}",
            f"{_REGENERATE[:-1]}, or install the polymimic version that wrote it.",
        )


@contextlib.contextmanager
def _opened(file_or_path: h5py.File | PathLike) -> Iterator[h5py.File]:
    """Use an already open file as is; open (and later close) a path."""
    if isinstance(file_or_path, h5py.File):
        yield file_or_path
    else:
        with open_dataset(file_or_path) as f:
            yield f


def _demo_index(name: str) -> int:
    match = _DEMO_NAME.fullmatch(name)
    if match is None:
        problem = f"'{name}' is not a demo name of the form demo_<int> (robomimic sorts by it)"
        raise _error("dataset", problem, f"Keep only demo groups under 'data'. {_REGENERATE}")
    return int(match.group(1))


def demo_names(file: h5py.File | PathLike, filter_key: str | None = None) -> list[str]:
    """Demo names, sorted by their integer suffix (as robomimic orders them).

    Args:
        file: an open dataset or its path.
        filter_key: if given, only the demos of ``mask/<filter_key>``.

    Raises:
        DatasetError: unreadable file, unknown mask key or a non-``demo_<int>`` group.
    """
    with _opened(file) as f:
        names = get_mask(f, filter_key) if filter_key is not None else list(f["data"].keys())
    return sorted(names, key=_demo_index)


def mask_keys(file: h5py.File | PathLike) -> list[str]:
    """The filter keys under ``mask/``, sorted (staging names of interrupted writes hidden)."""
    with _opened(file) as f:
        group = f.get("mask")
        return sorted(k for k in group if not k.startswith(".")) if group is not None else []


def get_mask(path_or_file: h5py.File | PathLike, key: str) -> list[str]:
    """The demo names stored in ``mask/<key>``, decoded to str.

    Raises:
        DatasetError: naming the missing key and listing the available ones.
    """
    with _opened(path_or_file) as f:
        available = mask_keys(f)
        if key not in available:
            fix = "Use one of those as the filter key, or add it with write_masks()."
            raise _error(f.filename, f"no mask '{key}'; available mask keys: {available}", fix)
        raw = f["mask"][key][()]
    return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in raw]


def _demo_problem(demo: h5py.Group) -> str | None:
    """Describe the first structural problem of a demo group, or None when it is sound."""
    missing = [k for k in DEMO_ARRAYS if not isinstance(demo.get(k), h5py.Dataset)]
    missing += [k for k in DEMO_GROUPS if not isinstance(demo.get(k), h5py.Group)]
    if "num_samples" not in demo.attrs:
        missing.append("attrs['num_samples']")
    if missing:
        return f"{demo.name} lacks required entries {missing}"
    if not demo["obs"] or set(demo["obs"]) != set(demo["next_obs"]):
        return (
            f"{demo.name} has obs keys {sorted(demo['obs'])} and next_obs keys "
            f"{sorted(demo['next_obs'])}; they must be the same non-empty set"
        )
    num_samples = int(demo.attrs["num_samples"])
    lengths = {k: demo[k].shape for k in DEMO_ARRAYS}
    for group in DEMO_GROUPS:
        lengths |= {f"{group}/{k}": getattr(v, "shape", None) for k, v in demo[group].items()}
    wrong = {k: s[0] if s else s for k, s in lengths.items() if not s or s[0] != num_samples}
    if wrong:
        return f"{demo.name} has inconsistent lengths: num_samples is {num_samples}, not {wrong}"
    return None


def _raise_for_demo(f: h5py.File, demo: h5py.Group) -> None:
    problem = _demo_problem(demo)
    if problem is not None:
        raise _error(f.filename, f"{problem}; the file is incomplete or damaged")


def _decode_attr(value: Any) -> Any:
    """HDF5 attr value -> plain Python str/int/float/bool."""
    if isinstance(value, np.ndarray):
        value = value[()] if value.ndim == 0 else value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    return value.decode("utf-8") if isinstance(value, bytes) else value


def read_episode(file_or_path: h5py.File | PathLike, demo_name: str) -> Episode:
    """Read one demo back into an ``Episode`` (the inverse of ``write_dataset``).

    Raises:
        DatasetError: unknown demo, a structurally broken demo, or unreadable data.
    """
    with _opened(file_or_path) as f:
        data = f["data"]
        if demo_name not in data:
            names = demo_names(f)
            listing = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            problem = f"no demo '{demo_name}'; the file holds {len(names)} demos ({listing})"
            raise _error(f.filename, problem, "Use a name from demo_names().")
        demo = data[demo_name]
        _raise_for_demo(f, demo)
        try:
            return Episode(
                obs={k: v[()] for k, v in demo["obs"].items()},
                next_obs={k: v[()] for k, v in demo["next_obs"].items()},
                actions=demo["actions"][()],
                rewards=demo["rewards"][()],
                terminations=demo["terminations"][()].astype(bool),
                truncations=demo["truncations"][()].astype(bool),
                states=demo["states"][()],
                attrs={k: _decode_attr(v) for k, v in demo.attrs.items() if k != "num_samples"},
            )
        except OSError as exc:
            raise _corrupt(f.filename, "data could not be read", exc) from None


def _corrupt(path: Any, problem: str, exc: Exception) -> DatasetError:
    """h5py reports damage as OSError from deep inside; say what it means for the user."""
    return _error(
        path,
        f"{problem}; it may be truncated (an interrupted copy or download), corrupt, or not "
        f"HDF5 at all (h5py: {exc})",
        f"Delete it and copy it again, or {_REGENERATE[0].lower()}{_REGENERATE[1:]}",
    )


# --------------------------------------------------------------------------- re-exports

# Whole-file validation and the summary live in polymimic.datasets.validate, which builds on
# this module; they stay importable from here. Resolved on first access (PEP 562) because an
# import at the top would be circular.
_FROM_VALIDATE = ("LABEL_KEYS", "DatasetSummary", "dataset_info", "validate_dataset")


def __getattr__(name: str) -> Any:
    if name in _FROM_VALIDATE:
        from polymimic.datasets import validate

        return getattr(validate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
