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

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from polymimic.datasets.episode import Episode
from polymimic.datasets.reader import (  # noqa: F401  (the reading API, re-exported)
    _REGENERATE,
    DEMO_ARRAYS,
    DEMO_GROUPS,
    FORMAT_VERSION,
    REQUIRED_ENV_ARGS,
    DatasetError,
    PathLike,
    _corrupt,
    _decode_attr,
    _demo_index,
    _error,
    all_array_keys,
    check_demo,
    demo_attrs,
    demo_names,
    get_mask,
    mask_keys,
    obs_keys_of,
    open_dataset,
    read_demo_arrays,
    read_env_args,
    read_episode,
    read_json_attr,
)
from polymimic.io import atomic_write, fsync, library_versions

_COMPRESS_MIN_BYTES = 1 << 16  # below this gzip costs more time than it saves space
_IMAGE_CHUNK_FRAMES = 8


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
