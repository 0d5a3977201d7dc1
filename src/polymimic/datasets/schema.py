"""What a polymimic dataset file may contain: the schema every reader checks against.

Datasets come from other people, so a file is checked before its arrays are used, and a
file may not choose anything beyond its own data:

- **No links out of the file.** HDF5 soft and external links, virtual datasets and
  external raw storage make the library open or read *other* files; only hard links are
  accepted under ``data/`` and ``mask/``.
- **No filter plugins.** A dataset compressed with an unknown filter makes the HDF5 library
  load a shared library from its plugin path; only the built-in gzip, shuffle, fletcher32
  and LZF filters are accepted (``ALLOWED_FILTERS``).
- **Bounded sizes**, checked from shapes before any array is read, so a small compressed
  file cannot make a reader allocate terabytes: ``MAX_DEMOS`` demos, ``MAX_DEMO_STEPS``
  steps each, ``MAX_TOTAL_STEPS`` in all, ``MAX_LOW_DIM`` floats per low-dimensional
  observation key, images up to ``MAX_IMAGE_SIDE`` pixels a side.
- **Dtypes and shapes per key** (``ARRAY_RULES``): float actions (T, A), float rewards (T,),
  0/1 dones, terminations and truncations (T,), float states (T, S); observations are float
  (T, D) vectors or uint8 (T, H, W, C) images; every array of a demo has ``num_samples``
  rows, and every demo has the same widths.
- **Finite values** in every float array, within float32 range (training reads float32),
  checked when the arrays are read (``check_values``).

Functions here return a problem description (a string) or None, so the reader can raise one
``DatasetError`` that names the file; they never raise h5py's own errors.
"""

from __future__ import annotations

import dataclasses
import re

import h5py
import numpy as np

MAX_DEMOS = 100_000
MAX_DEMO_STEPS = 100_000
MAX_TOTAL_STEPS = 20_000_000  # 20M steps of a 20-float observation: 1.6 GB in memory
MAX_LOW_DIM = 4096  # floats per step in one low-dimensional observation key
MAX_ACTION_DIM = 64
MAX_STATE_DIM = 100_000
MAX_IMAGE_SIDE = 1024
MAX_ATTR_TEXT = 64 * 1024  # characters of one string attribute (env_args JSON, labels)
ALLOWED_FILTERS = {
    h5py.h5z.FILTER_DEFLATE: "gzip",
    h5py.h5z.FILTER_SHUFFLE: "shuffle",
    h5py.h5z.FILTER_FLETCHER32: "fletcher32",
    h5py.h5z.FILTER_LZF: "lzf",
}
OBS_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")


@dataclasses.dataclass(frozen=True)
class ArrayRule:
    """Dtype kinds (numpy ``dtype.kind``), ranks and the widest trailing size of one array."""

    kinds: str  # e.g. "f" for floats; "biu" for 0/1 flags
    ndims: tuple[int, ...]
    max_width: int = 1  # bound on the product of the trailing dimensions
    binary: bool = False  # values must be 0 or 1


ARRAY_RULES: dict[str, ArrayRule] = {
    "actions": ArrayRule("f", (2,), MAX_ACTION_DIM),
    "rewards": ArrayRule("f", (1,)),
    "dones": ArrayRule("biu", (1,), binary=True),
    "terminations": ArrayRule("biu", (1,), binary=True),
    "truncations": ArrayRule("biu", (1,), binary=True),
    "states": ArrayRule("f", (2,), MAX_STATE_DIM),
}
LOW_DIM_OBS = ArrayRule("f", (2,), MAX_LOW_DIM)
IMAGE_OBS = ArrayRule("u", (4,), MAX_IMAGE_SIDE * MAX_IMAGE_SIDE * 4)


def obs_rule(dataset: h5py.Dataset) -> ArrayRule:
    """The rule an observation array follows: images are 4-D uint8, the rest float vectors."""
    shape = dataset.shape  # None for an empty (null dataspace) dataset
    return IMAGE_OBS if shape is not None and len(shape) == 4 else LOW_DIM_OBS


def link_problem(group: h5py.Group, name: str) -> str | None:
    """A problem if ``group/name`` is a soft or external link (which leads elsewhere)."""
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.HardLink):
        return None
    kind = "external link to another file" if isinstance(link, h5py.ExternalLink) else "soft link"
    return f"{group.name}/{name} is an HDF5 {kind}; datasets may only hold their own data"


def tree_problem(group: h5py.Group, depth: int = 3) -> str | None:
    """The first non-hard link at most ``depth`` levels below ``group``, or None."""
    for name in group:
        if not isinstance(name, str):  # h5py hands out names that are not UTF-8 as bytes
            return f"{group.name} holds an entry named {name!r}, which is not valid UTF-8"
        problem = link_problem(group, name)
        if problem is not None:
            return problem
        child = group[name]
        if depth > 1 and isinstance(child, h5py.Group):
            problem = tree_problem(child, depth - 1)
            if problem is not None:
                return problem
    return None


def storage_problem(dataset: h5py.Dataset) -> str | None:
    """A problem if the array's bytes live outside this file or need a filter plugin."""
    if dataset.is_virtual:
        return f"{dataset.name} is a virtual dataset (its data lives in other files)"
    if dataset.external:
        return f"{dataset.name} stores its data in external raw files"
    plist = dataset.id.get_create_plist()
    for index in range(plist.get_nfilters()):
        code = plist.get_filter(index)[0]
        if code not in ALLOWED_FILTERS:
            return (
                f"{dataset.name} uses HDF5 filter {code}, which would load a plugin; allowed: "
                f"{', '.join(ALLOWED_FILTERS.values())}"
            )
    return None


def dtype_of(dataset: h5py.Dataset) -> np.dtype | None:
    """The array's numpy dtype, or None for an HDF5 datatype numpy cannot represent."""
    try:
        return dataset.dtype
    except (TypeError, ValueError):  # e.g. a damaged float with "insufficient precision"
        return None


def array_problem(dataset: h5py.Dataset, rule: ArrayRule, rows: int) -> str | None:
    """A problem with one array's dtype, rank, row count or size, or None (reads no data)."""
    dtype = dtype_of(dataset)
    if dtype is None:
        return f"{dataset.name} has an HDF5 datatype numpy cannot represent"
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in rule.kinds:
        return f"{dataset.name} has dtype {dtype}; expected {_kinds(rule.kinds)}"
    shape = dataset.shape
    if shape is None or len(shape) not in rule.ndims:
        return f"{dataset.name} has shape {shape}; expected {rule.ndims[0]} dimensions"
    if shape[0] != rows:
        return f"{dataset.name} has {shape[0]} rows but num_samples is {rows}"
    width = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    if not 1 <= width <= rule.max_width:
        return f"{dataset.name} has {width} values per step; expected 1 to {rule.max_width}"
    if rule is IMAGE_OBS and (max(shape[1:3]) > MAX_IMAGE_SIDE or shape[3] not in (1, 3, 4)):
        return f"{dataset.name} has image shape {shape[1:]}; expected (H, W, 1|3|4) up to {MAX_IMAGE_SIDE}"
    return storage_problem(dataset)


def _kinds(kinds: str) -> str:
    names = {"f": "floats", "b": "booleans", "i": "integers", "u": "unsigned integers"}
    return " or ".join(names[k] for k in kinds)


def value_problem(name: str, array: np.ndarray, rule: ArrayRule) -> str | None:
    """A problem with the values of an array already read: non-finite floats, non-0/1 flags."""
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            return f"{name} holds {int(bad.sum())} NaN or infinite values (first at step {row})"
        # Training reads floats as float32, where these become infinite.
        bad = np.abs(array) > np.finfo(np.float32).max
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            return f"{name} holds {int(bad.sum())} values beyond float32 range (step {row} first)"
    if rule.binary and array.dtype.kind != "b" and array.size and (
        array.min() < 0 or array.max() > 1
    ):
        return f"{name} must hold only 0 and 1, found values in [{array.min()}, {array.max()}]"
    return None


def attr_text_problem(owner: str, key: str, value: object) -> str | None:
    """A problem with a string attribute that polymimic parses (too long, not text)."""
    if not isinstance(value, str):
        return f"{owner} attribute '{key}' must be a string, got {type(value).__name__}"
    if len(value) > MAX_ATTR_TEXT:
        return f"{owner} attribute '{key}' holds {len(value)} characters (at most {MAX_ATTR_TEXT})"
    return None
