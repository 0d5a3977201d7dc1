"""The one reader of polymimic's HDF5 datasets, for tools and training alike.

Every read goes through :func:`open_dataset` (file exists, is HDF5, has a ``data`` group and
this format version, holds no links out of the file, a bounded number of demos) and every
demo through :func:`read_demo_arrays` (structure, dtypes, shapes and sizes checked against
``polymimic.datasets.schema`` before reading; finite values after). A problem anywhere
raises one :class:`DatasetError` whose message names the file, the problem and the fix,
never a traceback from inside h5py.

Writing lives in :mod:`polymimic.datasets.hdf5`, which re-exports everything here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np

from polymimic.datasets import schema
from polymimic.datasets.episode import Episode
from polymimic.errors import UserError

FORMAT_VERSION = 1
#: Keys ``env_args`` must carry (robomimic reads the first three; the version pins the env).
REQUIRED_ENV_ARGS = ("env_name", "type", "env_kwargs", "env_version")
#: Datasets every demo group holds; robomimic reads actions/rewards/dones/states, and
#: polymimic's Episode also needs the separate termination/truncation flags.
DEMO_ARRAYS = ("actions", "rewards", "dones", "terminations", "truncations", "states")
DEMO_GROUPS = ("obs", "next_obs")

_DEMO_NAME = re.compile(r"demo_(\d+)")
_REGENERATE = "Regenerate it with `polymimic data generate`."

PathLike = str | os.PathLike[str]


class DatasetError(UserError):
    """A dataset file is missing, damaged, of another format version or inconsistent.

    The message names the file, the problem and what to do about it; ``problem`` holds the
    middle part alone (validation lists several).
    """

    problem: str = ""


def _error(path: Any, problem: str, fix: str = _REGENERATE) -> DatasetError:
    error = DatasetError(f"{path}: {problem}. {fix}")
    error.problem = problem
    return error


def _corrupt(path: Any, problem: str, exc: Exception) -> DatasetError:
    """h5py reports damage as OSError from deep inside; say what it means for the user."""
    return _error(
        path,
        f"{problem}; it may be truncated (an interrupted copy or download), corrupt, or not "
        f"HDF5 at all (h5py: {exc})",
        f"Delete it and copy it again, or {_REGENERATE[0].lower()}{_REGENERATE[1:]}",
    )


#: What h5py raises where HDF5 meets damaged bytes (it maps library errors to these).
_DAMAGE = (OSError, KeyError, RuntimeError)
_F = TypeVar("_F", bound=Callable[..., Any])


def _reports_damage(function: _F) -> _F:
    """Turn h5py's errors from damaged bytes met mid-read into a DatasetError.

    HDF5 reads object headers, B-trees and heaps lazily, so damage can surface at any
    access, not only in ``open_dataset``.
    """

    @functools.wraps(function)
    def wrapper(source: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(source, *args, **kwargs)
        except _DAMAGE as exc:
            name = source.file.filename if isinstance(source, h5py.HLObject) else source
            raise _corrupt(name, "its structure could not be read", exc) from None

    return wrapper  # type: ignore[return-value]


def open_dataset(path: PathLike, mode: str = "r") -> h5py.File:
    """Open a polymimic dataset after checking that it exists, is HDF5 and has our version.

    Also refuses files with soft or external links under ``data/`` or ``mask/`` (they make
    HDF5 read other files) and more than ``schema.MAX_DEMOS`` demos.

    Args:
        path: the dataset file.
        mode: ``"r"`` (default) or ``"r+"`` to modify masks.

    Returns:
        The open ``h5py.File``; close it (or use it as a context manager).

    Raises:
        DatasetError: missing file, not HDF5 / truncated / corrupt, no ``data`` group, a
            format version other than ``FORMAT_VERSION``, links out of the file, too many demos.
    """
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a dataset file" if p.is_dir() else "does not exist"
        fix = "Check the path, or create the dataset with `polymimic data generate`."
        raise _error(p, f"dataset file {what}", fix)
    try:
        f = h5py.File(p, mode)
    except _DAMAGE as exc:
        raise _corrupt(p, "not a readable HDF5 file", exc) from None
    try:
        _check_header(f, p)
    except _DAMAGE as exc:
        f.close()
        raise _corrupt(p, "its structure could not be read", exc) from None
    except BaseException:
        f.close()
        raise
    return f


def _check_header(f: h5py.File, path: Path) -> None:
    problem = schema.link_problem(f, "data") if "data" in f else None
    if problem is not None:
        raise _error(path, problem)
    if not isinstance(f.get("data"), h5py.Group):
        problem = "HDF5 file has no 'data' group, so it is not a robomimic-layout dataset"
        raise _error(path, problem, f"Point to a dataset file. {_REGENERATE}")
    version = _attr(f["data"], "polymimic_format_version")
    if version is None:
        problem = "'data' has no polymimic_format_version attribute: not written by polymimic"
        raise _error(path, f"{problem}; this polymimic reads format version {FORMAT_VERSION}")
    if isinstance(version, bool) or not isinstance(version, int) or version != FORMAT_VERSION:
        raise _error(
            path,
            f"dataset has polymimic format version {version!r}, but this polymimic reads "
            f"format version {FORMAT_VERSION}",
            f"{_REGENERATE[:-1]}, or install the polymimic version that wrote it.",
        )
    if len(f["data"]) > schema.MAX_DEMOS:
        raise _error(path, f"'data' holds {len(f['data'])} entries (at most {schema.MAX_DEMOS})")
    for name in ("data", "mask"):
        if name in f:
            problem = schema.link_problem(f, name) or schema.tree_problem(f[name])
            if problem is not None:
                raise _error(path, problem)


@contextlib.contextmanager
def _opened(file_or_path: h5py.File | PathLike) -> Iterator[h5py.File]:
    """Use an already open file as is; open (and later close) a path."""
    if isinstance(file_or_path, h5py.File):
        yield file_or_path
    else:
        with open_dataset(file_or_path) as f:
            yield f


def _demo_index(name: str) -> int:
    match = _DEMO_NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        problem = f"'{name}' is not a demo name of the form demo_<int> (robomimic sorts by it)"
        raise _error("dataset", problem, f"Keep only demo groups under 'data'. {_REGENERATE}")
    return int(match.group(1))


@_reports_damage
def demo_names(file: h5py.File | PathLike, filter_key: str | None = None) -> list[str]:
    """Demo names, sorted by their integer suffix (as robomimic orders them).

    Args:
        file: an open dataset or its path.
        filter_key: if given, only the demos of ``mask/<filter_key>``, which must all exist.

    Raises:
        DatasetError: unreadable file, unknown mask key, a mask naming a missing demo or a
            non-``demo_<int>`` group.
    """
    with _opened(file) as f:
        if filter_key is None:
            names = list(f["data"].keys())
        else:
            names = get_mask(f, filter_key)
            # Checked before `in`: a name like "/ext/x" makes h5py walk a link outside data/.
            odd = [n for n in names if _DEMO_NAME.fullmatch(n) is None]
            if odd:
                problem = f"mask '{filter_key}' holds names that are not demo_<int>: {odd[:5]}"
                raise _error(f.filename, problem)
            missing = [n for n in names if n not in f["data"]]
            if missing:
                problem = f"mask '{filter_key}' names demos the file does not hold: {missing[:5]}"
                raise _error(f.filename, problem)
    return sorted(names, key=_demo_index)


@_reports_damage
def mask_keys(file: h5py.File | PathLike) -> list[str]:
    """The filter keys under ``mask/``, sorted (staging names of interrupted writes hidden)."""
    with _opened(file) as f:
        group = f.get("mask")
        if group is None:
            return []
        if not isinstance(group, h5py.Group):
            raise _error(f.filename, "'mask' is not a group of demo-name lists")
        return sorted(k for k in group if not k.startswith("."))


@_reports_damage
def get_mask(path_or_file: h5py.File | PathLike, key: str) -> list[str]:
    """The demo names stored in ``mask/<key>``, decoded to str.

    Raises:
        DatasetError: naming the missing key and listing the available ones, or a mask
            that is not a 1-D list of names.
    """
    with _opened(path_or_file) as f:
        available = mask_keys(f)
        if key not in available:
            fix = "Use one of those as the filter key, or add it with write_masks()."
            raise _error(f.filename, f"no mask '{key}'; available mask keys: {available}", fix)
        mask = f["mask"][key]
        ok = isinstance(mask, h5py.Dataset) and mask.ndim == 1
        ok = ok and getattr(schema.dtype_of(mask), "kind", "?") in "SO"
        if not ok or len(mask) > schema.MAX_DEMOS:
            raise _error(f.filename, f"mask/{key} is not a list of at most {schema.MAX_DEMOS} names")
        problem = schema.storage_problem(mask)
        if problem is not None:
            raise _error(f.filename, problem)
        raw = mask[()]
    names = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in raw]
    if not all(isinstance(n, str) for n in names):
        raise _error(f.filename, f"mask/{key} holds entries that are not demo names")
    return names


# --------------------------------------------------------------------------- demos


def _demo_problem(demo: h5py.Group) -> str | None:
    """Describe the first structural problem of a demo group, or None when it is sound.

    Reads shapes, dtypes and attributes only, never array data.
    """
    if not isinstance(demo, h5py.Group):
        return f"{demo.name} is not a group"
    missing = [k for k in DEMO_ARRAYS if not isinstance(demo.get(k), h5py.Dataset)]
    missing += [k for k in DEMO_GROUPS if not isinstance(demo.get(k), h5py.Group)]
    if "num_samples" not in demo.attrs:
        missing.append("attrs['num_samples']")
    if missing:
        return f"{demo.name} lacks required entries {missing}"
    obs_keys = set(demo["obs"])
    if not obs_keys or obs_keys != set(demo["next_obs"]):
        return (
            f"{demo.name} has obs keys {sorted(demo['obs'])} and next_obs keys "
            f"{sorted(demo['next_obs'])}; they must be the same non-empty set"
        )
    bad_keys = sorted(k for k in obs_keys if not schema.OBS_KEY.fullmatch(k))
    if bad_keys:
        return f"{demo.name} has observation keys {bad_keys[:3]} (letters, digits, _; <= 64)"
    num_samples = _attr(demo, "num_samples")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int):
        return f"{demo.name} attrs['num_samples'] is {num_samples!r}, not an integer"
    if not 1 <= num_samples <= schema.MAX_DEMO_STEPS:
        return f"{demo.name} has num_samples {num_samples} (expected 1 to {schema.MAX_DEMO_STEPS})"
    for key in DEMO_ARRAYS:
        problem = schema.array_problem(demo[key], schema.ARRAY_RULES[key], num_samples)
        if problem is not None:
            return problem
    for group in DEMO_GROUPS:
        for array in demo[group].values():
            if not isinstance(array, h5py.Dataset):
                return f"{array.name} is not an array"
            problem = schema.array_problem(array, schema.obs_rule(array), num_samples)
            if problem is not None:
                return problem
    return None


@_reports_damage
def check_demo(f: h5py.File, name: str) -> h5py.Group:
    """The demo group ``name`` after its structural checks.

    Raises:
        DatasetError: unknown demo, or a structural problem (``_demo_problem``).
    """
    data = f["data"]
    if not isinstance(name, str) or _DEMO_NAME.fullmatch(name) is None or name not in data:
        names = demo_names(f)
        listing = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        problem = f"no demo '{name}'; the file holds {len(names)} demos ({listing})"
        raise _error(f.filename, problem, "Use a name from demo_names().")
    demo = data[name]
    try:
        problem = _demo_problem(demo)
    except OSError as exc:
        raise _corrupt(f.filename, f"{demo.name} could not be read", exc) from None
    if problem is not None:
        raise _error(f.filename, f"{problem}; the file is incomplete or damaged")
    return demo


@_reports_damage
def read_demo_arrays(f: h5py.File, name: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
    """Read and check some arrays of one demo.

    Args:
        f: an open dataset.
        name: the demo, e.g. ``"demo_3"``.
        keys: paths inside the demo: ``"actions"``, ``"rewards"``, ``"obs/tip_pos"``,
            ``"next_obs/tip_pos"``, ...

    Returns:
        key -> array, each with ``num_samples`` rows, finite where it is a float array.

    Raises:
        DatasetError: an unknown key (naming the keys there are), a structural problem, a
            non-finite or non-0/1 value, or data that could not be read.
    """
    demo = check_demo(f, name)
    arrays = {}
    for key in keys:
        group, _, leaf = key.rpartition("/")
        known = schema.OBS_KEY.fullmatch(leaf) if group in DEMO_GROUPS else key in DEMO_ARRAYS
        if not known or key not in demo:
            available = sorted(demo["obs"]) if group else list(DEMO_ARRAYS)
            problem = f"{demo.name} has no '{key}'; available: {available}"
            raise _error(f.filename, problem, "Choose keys from `polymimic data info`.")
        dataset = demo[key]
        rule = schema.obs_rule(dataset) if group else schema.ARRAY_RULES[leaf]
        try:
            array = dataset[()]
        except OSError as exc:
            raise _corrupt(f.filename, f"{dataset.name} could not be read", exc) from None
        problem = schema.value_problem(dataset.name, array, rule)
        if problem is not None:
            raise _error(f.filename, problem, f"Fix or drop that demo. {_REGENERATE}")
        arrays[key] = array
    return arrays


@_reports_damage
def all_array_keys(f: h5py.File, name: str) -> list[str]:
    """Every array path of a demo that ``read_demo_arrays`` accepts."""
    demo = check_demo(f, name)
    return [*DEMO_ARRAYS, *(f"{group}/{key}" for group in DEMO_GROUPS for key in demo[group])]


@_reports_damage
def obs_keys_of(file: h5py.File | PathLike) -> list[str]:
    """Sorted observation keys of the first demo (every demo has the same, checked by
    ``validate_dataset``)."""
    with _opened(file) as f:
        names = demo_names(f)
        if not names:
            raise _error(f.filename, "'data' holds no demos")
        return sorted(check_demo(f, names[0])["obs"])


def _decode_attr(value: Any) -> Any:
    """HDF5 attr value -> plain Python str/int/float/bool (other values are passed on)."""
    if isinstance(value, np.ndarray):
        value = value[()] if value.ndim == 0 else value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _attr(owner: h5py.Group, key: str) -> Any:
    """``owner.attrs[key]`` decoded (None when absent); an unreadable datatype is damage."""
    try:
        return _decode_attr(owner.attrs.get(key))
    except (TypeError, ValueError) as exc:  # h5py: a datatype numpy cannot represent
        problem = f"{owner.name} attribute '{key}' is unreadable"
        raise _corrupt(owner.file.filename, problem, exc) from None


@_reports_damage
def demo_attrs(demo: h5py.Group) -> dict[str, Any]:
    """A demo's attributes (without ``num_samples``) as plain str/int/float/bool values.

    Raises:
        DatasetError: an attribute of another type, or a string over the size bound.
    """
    attrs = {}
    for key in demo.attrs:
        if key == "num_samples":
            continue
        if not isinstance(key, str):  # h5py hands out names that are not UTF-8 as bytes
            problem = f"{demo.name} has an attribute named {key!r}, which is not valid UTF-8"
            raise _error(demo.file.filename, problem)
        try:
            value = _decode_attr(demo.attrs[key])
        except (OSError, TypeError, ValueError) as exc:
            raise _corrupt(demo.file.filename, f"{demo.name} attribute '{key}' is unreadable", exc) from None
        if not isinstance(value, str | int | float | bool):
            problem = f"{demo.name} attribute '{key}' is a {type(value).__name__}"
            raise _error(demo.file.filename, f"{problem}; demo attributes are scalars")
        if isinstance(value, str) and (problem := schema.attr_text_problem(demo.name, key, value)):
            raise _error(demo.file.filename, problem)
        attrs[key] = value
    return attrs


@_reports_damage
def read_json_attr(file: h5py.File | PathLike, key: str) -> dict[str, Any]:
    """``data.attrs[key]`` parsed as a JSON object (``env_args``, ``polymimic_metadata``).

    Raises:
        DatasetError: missing, not text, over ``schema.MAX_ATTR_TEXT`` or not a JSON object.
    """
    with _opened(file) as f:
        raw = _attr(f["data"], key)
        problem = schema.attr_text_problem("data", key, raw)
        value = None
        if problem is None:
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError):  # deep nesting ("[[[[...") recurses
                value = None
        if not isinstance(value, dict):
            raise _error(f.filename, problem or f"data.attrs['{key}'] is missing or not a JSON object")
    return value


@_reports_damage
def read_env_args(file: h5py.File | PathLike) -> dict[str, Any]:
    """The file's robomimic ``env_args`` (JSON object with ``REQUIRED_ENV_ARGS``).

    Only parsed here; whoever makes an env from it checks it with
    ``polymimic.envs.allowlist.check_env_args``.

    Raises:
        DatasetError: missing, malformed, or lacking required keys.
    """
    env_args = read_json_attr(file, "env_args")
    missing = [k for k in REQUIRED_ENV_ARGS if k not in env_args]
    if missing:
        name = file.filename if isinstance(file, h5py.File) else file
        raise _error(name, f"data.attrs['env_args'] lacks {missing}")
    return env_args


@_reports_damage
def read_episode(file_or_path: h5py.File | PathLike, demo_name: str) -> Episode:
    """Read one demo back into an ``Episode`` (the inverse of ``write_dataset``).

    Raises:
        DatasetError: unknown demo, a structurally broken demo, bad values or unreadable data.
    """
    with _opened(file_or_path) as f:
        arrays = read_demo_arrays(f, demo_name, all_array_keys(f, demo_name))
        groups: dict[str, dict[str, np.ndarray]] = {group: {} for group in DEMO_GROUPS}
        for key, array in arrays.items():
            group, _, leaf = key.rpartition("/")
            if group:
                groups[group][leaf] = array
        return Episode(
            obs=groups["obs"],
            next_obs=groups["next_obs"],
            actions=arrays["actions"],
            rewards=arrays["rewards"],
            terminations=arrays["terminations"].astype(bool),
            truncations=arrays["truncations"].astype(bool),
            states=arrays["states"],
            attrs=demo_attrs(f["data"][demo_name]),
        )
