"""Fuzz the one HDF5 dataset reader: a broken file is a ``DatasetError``, never anything else.

Datasets come from other people, so ``polymimic.datasets.reader`` promises that every
problem with a file raises ``DatasetError`` (a ``UserError``) naming the problem, never a
``KeyError``/``TypeError``/``OSError``/... from h5py or numpy, and that it never follows links,
virtual datasets or external storage out of the file. Hand-written tests cover the problems
someone thought of; this module generates the ones nobody did:

1. **Structured mutations** (hypothesis, ``test_mutated_files_*``): a valid file of 1-3 demos
   of 1-6 steps (``demo_files.write_demo_file``) gets 1-3 mutations: dtypes, shapes (down
   to a declared (10**9, w) chunked array that must be refused from its shape alone),
   values (NaN, inf, huge, -0.0, flags outside 0/1), attributes (num_samples, format version,
   env_args, total), soft/external links, virtual datasets, external raw storage, unknown
   filters, odd masks, odd names (including names that are not UTF-8). Every entry point is
   called on every file; each must return or raise ``DatasetError``, and mutations that
   must be refused (NaN, links, wrong version, bad dtype or shape, ...) must be, by the
   entry points that read what was mutated, with a message that names the problem.
2. **External files are never opened** (``test_out_of_file_references_are_never_opened``):
   links, virtual sources and external storage point at a FIFO; opening it would block, so
   a subprocess that finishes in time proves the reader never touched it.
3. **Raw byte damage** (``test_raw_byte_mutations``): bit flips, overwritten and truncated
   copies of a small valid file, opened in a subprocess with a timeout, because the HDF5
   C library can crash or hang instead of raising (two kinds of damage trip HDF5 itself,
   a hang and a 4 GB allocation, and are skipped: see ``hdf5_traps``).

``test_report_fuzz_counts`` (last) prints how many files were generated and the outcome of
each entry point; run with ``-s`` to see it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo_files import write_demo_file
from polymimic.datasets import reader, schema
from polymimic.datasets.reader import DatasetError
from polymimic.datasets.validate import validate_dataset
from polymimic.datasets.windows import WindowDataset
from polymimic.errors import UserError

#: Generated files and the outcome of every entry point on them, printed by the last test.
COUNTS: Counter[str] = Counter()

ARRAYS = ("actions", "rewards", "dones", "terminations", "truncations", "states")
FLAGS = ("dones", "terminations", "truncations")
#: Structured files per run (about 20 s of CPU); POLYMIMIC_FUZZ_EXAMPLES for a longer hunt.
EXAMPLES = int(os.environ.get("POLYMIMIC_FUZZ_EXAMPLES", "200"))
#: Byte-damaged copies per run (one subprocess, about 15 s); POLYMIMIC_FUZZ_BYTE_FILES for
#: more, POLYMIMIC_FUZZ_SEED for other damage.
BYTE_FILES = int(os.environ.get("POLYMIMIC_FUZZ_BYTE_FILES", "240"))


# --------------------------------------------------------------------------- the base file


@dataclasses.dataclass(frozen=True)
class Base:
    """The valid file a case starts from."""

    names: tuple[str, ...]
    steps: tuple[int, ...]
    obs_keys: tuple[str, ...]
    obs_dim: int
    action_dim: int
    train: tuple[str, ...]

    def array_paths(self) -> list[str]:
        """Every array of every demo, as 'data/demo_N/key'."""
        keys = [*ARRAYS, *(f"{g}/{k}" for g in ("obs", "next_obs") for k in self.obs_keys)]
        return [f"data/{name}/{key}" for name in self.names for key in keys]

    def read_keys(self) -> list[str]:
        """The keys passed to ``read_demo_arrays``."""
        return [*ARRAYS, *(f"{g}/{k}" for g in ("obs", "next_obs") for k in self.obs_keys)]


def write_base(path: Path, base: Base) -> None:
    """Write the valid file ``base`` describes (masks 'train' and 'valid')."""
    demos = {}
    for i, (name, steps) in enumerate(zip(base.names, base.steps, strict=True)):
        ramp = np.arange(steps * base.obs_dim, dtype=np.float64).reshape(steps, base.obs_dim)
        arrays = {f"obs/{key}": ramp / 7 + i + j for j, key in enumerate(base.obs_keys)}
        actions = np.linspace(-1, 1, steps * base.action_dim).reshape(steps, base.action_dim)
        demos[name] = {**arrays, "actions": actions}
    write_demo_file(path, demos, {"train": list(base.train), "valid": list(base.names[-1:])})


@st.composite
def bases(draw: st.DrawFn) -> Base:
    """1-3 demos (names demo_0..demo_12, not contiguous) of 1-6 steps."""
    ids = sorted(draw(st.sets(st.integers(0, 12), min_size=1, max_size=3)))
    names = tuple(f"demo_{i}" for i in ids)
    steps = tuple(draw(st.lists(st.integers(1, 6), min_size=len(ids), max_size=len(ids))))
    train = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    return Base(
        names=names,
        steps=steps,
        obs_keys=draw(st.sampled_from([("pos",), ("pos", "vel")])),
        obs_dim=draw(st.integers(1, 3)),
        action_dim=draw(st.integers(1, 3)),
        train=tuple(train),
    )


# --------------------------------------------------------------------------- mutations


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One change to the file: ``kind`` (how), ``variant`` (which), ``target`` (where)."""

    kind: str
    variant: str
    target: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.variant}@{self.target}"


@dataclasses.dataclass(frozen=True)
class Expect:
    """A mutation that must be refused: by ``entries`` (None: every entry point), with one
    of ``keywords`` in the message when it is the only mutation."""

    reason: str
    entries: frozenset[str] | None
    keywords: tuple[str, ...]


class NotApplicable(Exception):
    """The mutation does not apply to the file as earlier mutations left it."""


# fmt: off
DTYPES = ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool", "S4",
          "complex64", "compound", "vlen_str", "big_endian_f8")
SHAPES = ("drop_dim", "add_dim", "zero_rows", "other_rows", "zero_width", "huge", "empty")
FLOAT_VALUES = ("nan", "inf", "-inf", "huge", "float32_huge", "-0.0", "subnormal")
FLAG_VALUES = ("2", "-1", "255")
STORAGE = ("virtual", "external_storage", "unknown_filter", "scaleoffset", "gzip", "fletcher32")
NUM_SAMPLES = ("str", "float", "negative", "zero", "huge", "array", "bool", "bytes",
               "uint64_max", "empty", "plus_one")
VERSION = ("str", "float", "array", "missing", "2", "0", "bool", "bytes", "float_1")
JSON_ATTR = ("non_json", "json_list", "huge", "bytes_valid", "number", "missing_keys", "deep",
             "missing", "array", "bad_utf8")
#: Every total but a float with the right integer value ("float_exact") is refused.
TOTAL = ("plus_one", "minus_one", "missing", "float_exact", "str", "numeric_str", "array",
         "nan", "inf", "bool")
ARRAY_LINKS = ("soft_array", "dangling", "external_array", "hard_shared")
GROUP_LINKS = ("soft_demo", "self_loop", "external_demo", "soft_obs_group", "external_obs_group")
MASK_LINKS = ("soft_mask", "external_mask")
MASKS = ("numeric", "2d", "group", "scalar", "null_space", "missing_demo", "non_demo_name",
         "absolute_name", "vlen_valid", "duplicate", "empty", "bytes_key", "nul_name")
DEMO_STRUCTURE = ("demo_as_dataset", "delete_num_samples", "odd_key_space", "odd_key_umlaut",
                  "odd_key_long", "odd_key_bytes", "obs_only_key", "obs_key_group", "attr_array",
                  "attr_huge", "attr_compound", "attr_ok", "image_obs", "image_bad_channels",
                  "extra_array", "attr_bytes_name")
FILE_STRUCTURE = ("extra_group_foo", "extra_dataset_foo", "bytes_demo_name", "data_attr_junk")

#: Mutations are applied in this order of kinds, so that no mutation writes through a link
#: or virtual dataset made by another (which would change arrays behind the bookkeeping).
PHASE = {"dtype": 0, "shape": 0, "value": 0, "flag": 0, "storage": 1, "num_samples": 1,
         "version": 1, "json": 1, "total": 1, "mask": 2, "demo": 2, "file": 2, "delete": 2,
         "link": 3}
# fmt: on


def mutations(base: Base) -> st.SearchStrategy[Mutation]:
    """Every kind of mutation, aimed at the arrays, demos and masks ``base`` has."""
    arrays = st.sampled_from(base.array_paths())
    demos = st.sampled_from([f"data/{name}" for name in base.names])
    flags = st.sampled_from([f"data/{n}/dones" for n in base.names])  # the int64 flags
    groups = st.sampled_from([f"data/{n}/{g}" for n in base.names for g in ("obs", "next_obs")])

    def of(kind: str, variants: tuple[str, ...], targets: st.SearchStrategy[str]) -> Any:
        return st.builds(Mutation, st.just(kind), st.sampled_from(variants), targets)

    return st.one_of(
        of("dtype", DTYPES, arrays),
        of("shape", SHAPES, arrays),
        of("value", FLOAT_VALUES, arrays),
        of("flag", FLAG_VALUES, flags),
        of("storage", STORAGE, arrays),
        of("num_samples", NUM_SAMPLES, demos),
        of("version", VERSION, st.just("data")),
        of("json", JSON_ATTR, st.sampled_from(["env_args", "polymimic_metadata"])),
        of("total", TOTAL, st.just("total")),
        of("link", ARRAY_LINKS, arrays),
        of("link", GROUP_LINKS, demos),
        of("link", MASK_LINKS, st.just("mask/train")),
        of("mask", MASKS, st.just("mask/train")),
        of("demo", DEMO_STRUCTURE, demos),
        of("file", FILE_STRUCTURE, st.just("data")),
        of("delete", ("delete",), st.one_of(arrays, groups)),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[Base, list[Mutation]]:
    """A base file and 1-3 mutations of it, in application order."""
    base = draw(bases())
    drawn = draw(st.lists(mutations(base), min_size=1, max_size=3))
    return base, sorted(drawn, key=lambda m: PHASE[m.kind])


# --------------------------------------------------------------------------- applying them


@dataclasses.dataclass
class Scratch:
    """What a case may point outside its file at: ``other`` is a valid copy of the base
    (the target of external links and virtual sources, so following one would *succeed*)."""

    root: Path
    base: Base
    other: Path
    made: int = 0

    def raw_file(self, array: np.ndarray) -> Path:
        """A file holding ``array``'s bytes (external raw storage that would read fine)."""
        self.made += 1
        path = self.root / f"raw_{self.made}.bin"
        path.write_bytes(np.ascontiguousarray(array).tobytes())
        return path

    def source(self, array: np.ndarray) -> str:
        """A dataset in ``other`` holding ``array`` (a virtual source that would read fine)."""
        self.made += 1
        with h5py.File(self.other, "a") as g:
            g.create_dataset(f"sources/s{self.made}", data=array)
        return f"sources/s{self.made}"


def demo_of(target: str) -> str:
    """'data/demo_3/obs/pos' -> 'demo_3'."""
    return target.split("/")[1]


def structural(target: str) -> frozenset[str]:
    """Entry points that check the structure of the demo holding ``target``."""
    demo = demo_of(target)
    return frozenset({"validate", "window", f"arrays:{demo}", f"episode:{demo}", f"attrs:{demo}"})


def value_readers(target: str) -> frozenset[str]:
    """Entry points that read the values of the array ``target``."""
    demo, key = demo_of(target), target.split("/", 2)[2]
    read_by_window = key == "actions" or key.startswith("obs/")
    return frozenset(
        {"validate", f"arrays:{demo}", f"episode:{demo}"}
        | ({"window"} if read_by_window else set())
    )


def rule_kinds(target: str) -> str:
    """The dtype kinds the schema allows at ``target`` (observations here are 2-D floats)."""
    leaf = target.rsplit("/", 1)[1]
    return schema.ARRAY_RULES[leaf].kinds if leaf in schema.ARRAY_RULES else "f"


def parent_group(f: h5py.File, parent: str) -> Any:
    """``f[parent]`` or None where earlier mutations made it unreachable (a link loop)."""
    try:
        return f.get(parent) if parent else f
    except (KeyError, RuntimeError, OSError):
        return None


def get(f: h5py.File, path: str) -> Any:
    """``f[path]`` without following links, or NotApplicable."""
    parent, _, leaf = path.rpartition("/")
    group = parent_group(f, parent)
    if not isinstance(group, h5py.Group) or not isinstance(
        group.get(leaf, getlink=True), h5py.HardLink
    ):
        raise NotApplicable(path)
    return group[leaf]


def small_array(f: h5py.File, path: str) -> np.ndarray:
    """The numeric array at ``path`` when it is small and local (what mutations start from)."""
    dataset = get(f, path)
    if not isinstance(dataset, h5py.Dataset) or dataset.shape is None or dataset.size > 10**4:
        raise NotApplicable(path)
    if dataset.is_virtual or dataset.external:
        raise NotApplicable(path)
    array = dataset[()]
    if array.dtype.kind not in "biuf" or array.ndim == 0 or array.dtype.names is not None:
        raise NotApplicable(path)
    return array


def require_new(group: h5py.Group, name: str | bytes) -> None:
    """NotApplicable when ``group`` already has ``name`` (iteration copes with bytes names)."""
    if name in list(group):
        raise NotApplicable(f"{group.name}/{name!r}")


def replace(f: h5py.File, path: str, link: Any = None, **create: Any) -> None:
    """Put a new dataset (``create``) or ``link`` at ``path`` in place of what is there."""
    parent, _, leaf = path.rpartition("/")
    group = parent_group(f, parent)
    if not isinstance(group, h5py.Group):
        raise NotApplicable(path)
    if group.get(leaf, getlink=True) is not None:
        del group[leaf]
    if link is not None:
        group[leaf] = link
    else:
        group.create_dataset(leaf, **create)


def converted(array: np.ndarray, variant: str) -> tuple[np.ndarray, dict[str, Any]]:
    """``array`` in the dtype ``variant`` names, with extra create_dataset arguments."""
    if variant == "compound":
        return np.zeros(array.shape, dtype=[("a", "<f8"), ("b", "<i4")]), {}
    if variant == "vlen_str":
        text = np.array([str(x) for x in array.ravel()], dtype=object).reshape(array.shape)
        return text, {"dtype": h5py.string_dtype()}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return array.astype(">f8" if variant == "big_endian_f8" else variant), {}


def apply_dtype(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Rewrite an array in another dtype; refused unless the schema allows the kind."""
    new, extra = converted(small_array(f, m.target), m.variant)
    replace(f, m.target, data=new, **extra)
    kind = "O" if m.variant == "vlen_str" else new.dtype.kind
    return (
        None if kind in rule_kinds(m.target) else Expect("dtype", structural(m.target), ("dtype",))
    )


def apply_shape(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Give an array another shape (all refused: rank, rows and width are fixed)."""
    old = small_array(f, m.target)
    if old.size == 0:
        raise NotApplicable(m.target)
    if m.variant == "huge":  # 16 GB declared, a few hundred bytes stored
        if 0 in old.shape[1:]:
            raise NotApplicable(m.target)
        replace(
            f,
            m.target,
            shape=(10**9, *old.shape[1:]),
            dtype=old.dtype,
            chunks=(1024, *old.shape[1:]),
            compression="gzip",
            fillvalue=old.dtype.type(1),
        )
    elif m.variant == "empty":
        replace(f, m.target, data=h5py.Empty(old.dtype))
    else:
        new = {
            "drop_dim": lambda: old[:, 0] if old.ndim > 1 else old[0],
            "add_dim": lambda: old[..., None],
            "zero_rows": lambda: old[:0],
            "other_rows": lambda: np.concatenate([old, old[-1:] if len(old) else old[:1]]),
            "zero_width": lambda: np.zeros((len(old), 0), old.dtype),
        }[m.variant]()
        if m.variant == "other_rows" and len(new) == len(old):
            raise NotApplicable(m.target)
        replace(f, m.target, data=new)
        with h5py.File(scratch.other, "r") as g:
            if new.shape == g[m.target].shape:  # drop_dim then add_dim: back to the start
                return None
    return Expect("shape", structural(m.target), ("shape", "rows", "values per step"))


FLOAT_VALUE = {
    "nan": np.nan,
    "inf": np.inf,
    "-inf": -np.inf,
    "huge": 1e300,
    "float32_huge": 3e38,
    "-0.0": -0.0,
    "subnormal": 5e-324,
}


def apply_value(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Write one special float; NaN/inf (also after a cast to float16/32) are refused."""
    old = small_array(f, m.target)
    if old.dtype.kind != "f" or old.size == 0:
        raise NotApplicable(m.target)
    new = old.copy()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new.flat[0] = FLOAT_VALUE[m.variant]
        f[m.target][...] = new
    stored = f[m.target][()].astype(np.float64)
    if not np.isfinite(stored).all():
        return Expect("nonfinite", value_readers(m.target), ("NaN or infinite",))
    if (np.abs(stored) > np.finfo(np.float32).max).any():
        return Expect("float32", value_readers(m.target), ("float32",))
    return None


def apply_flag(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Write a flag value outside 0/1 into an integer flag array; refused."""
    old = small_array(f, m.target)
    if old.dtype.kind not in "iu" or old.size == 0:
        raise NotApplicable(m.target)
    new = old.copy()
    with np.errstate(all="ignore"):
        new.flat[0] = np.array(int(m.variant)).astype(old.dtype)
    f[m.target][...] = new
    stored = f[m.target][()]
    if ((stored != 0) & (stored != 1)).any():
        readers = value_readers(m.target)
        return Expect("flag", readers, ("only 0 and 1",))
    return None


def apply_storage(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Store an array virtually, externally or through a filter."""
    old = small_array(f, m.target)
    scaleable = old.dtype.kind in "iu" or (old.dtype.kind == "f" and old.dtype.itemsize >= 4)
    if old.size == 0 or (m.variant == "scaleoffset" and not scaleable):
        raise NotApplicable(m.target)
    if m.variant == "virtual":
        layout = h5py.VirtualLayout(shape=old.shape, dtype=old.dtype)
        layout[...] = h5py.VirtualSource(scratch.other, scratch.source(old), shape=old.shape)
        parent, _, leaf = m.target.rpartition("/")
        del f[m.target]
        f[parent].create_virtual_dataset(leaf, layout)
        return Expect("virtual", structural(m.target), ("virtual",))
    if m.variant == "external_storage":
        external = [(str(scratch.raw_file(old)), 0, h5py.h5f.UNLIMITED)]
        replace(f, m.target, shape=old.shape, dtype=old.dtype, external=external)
        return Expect("external", structural(m.target), ("external",))
    create = {
        "unknown_filter": {"compression": 307, "allow_unknown_filter": True},  # bzip2 plugin
        "scaleoffset": {"scaleoffset": 0 if old.dtype.kind in "iu" else 3},
        "gzip": {"compression": "gzip", "shuffle": True},
        "fletcher32": {"fletcher32": True},
    }[m.variant]
    replace(f, m.target, data=old, **create)
    if m.variant in ("gzip", "fletcher32"):
        return None  # built-in filters the schema allows
    return Expect("filter", structural(m.target), ("filter",))


def apply_num_samples(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Give ``num_samples`` a wrong type or value; refused."""
    demo = get(f, m.target)
    if not isinstance(demo, h5py.Group):
        raise NotApplicable(m.target)
    current = reader._decode_attr(demo.attrs.get("num_samples"))
    if m.variant == "plus_one" and (
        isinstance(current, bool) or not isinstance(current, int) or not 0 < current < 100
    ):
        raise NotApplicable(m.target)
    demo.attrs["num_samples"] = {
        "str": "3",
        "float": 3.0,
        "negative": -1,
        "zero": 0,
        "huge": 10**12,
        "array": np.array([3, 3]),
        "bool": True,
        "bytes": np.bytes_(b"3"),
        "uint64_max": np.uint64(2**64 - 1),
        "empty": h5py.Empty("i8"),
        "plus_one": current + 1 if m.variant == "plus_one" else 0,
    }[m.variant]
    return Expect("num_samples", structural(m.target), ("num_samples",))


def apply_version(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Change or drop ``polymimic_format_version``; refused at open."""
    attrs = f["data"].attrs
    if m.variant == "missing":
        attrs.pop("polymimic_format_version", None)
    else:
        attrs["polymimic_format_version"] = {
            "str": "1",
            "float": 1.5,
            "float_1": 1.0,
            "array": np.array([1]),
            "2": 2,
            "0": 0,
            "bool": True,
            "bytes": np.bytes_(b"1"),
        }[m.variant]
    return Expect("version", None, ("format version", "format_version"))


def json_value(key: str, variant: str) -> Any:
    """The new value of ``data.attrs[key]`` for a JSON-attribute mutation."""
    valid = {"env_name": "polymimic/Push-v1", "type": 2, "env_kwargs": {}, "env_version": "0.1"}
    if key == "polymimic_metadata":
        valid = {"versions": {}}
    return {
        "non_json": "{not json",
        "json_list": "[1, 2]",
        "number": 3,
        "missing_keys": "{}",
        "huge": json.dumps({**valid, "pad": "x" * (schema.MAX_ATTR_TEXT + 10)}),
        "bytes_valid": np.bytes_(json.dumps(valid).encode()),
        "deep": "[" * 32_000 + "]" * 32_000,  # under MAX_ATTR_TEXT, beyond json's recursion
        "array": np.array([b"{}", b"{}"]),
    }[variant]


def apply_json(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Break ``env_args`` or ``polymimic_metadata``."""
    attrs, key = f["data"].attrs, m.target
    if m.variant == "missing":
        attrs.pop(key, None)
    elif m.variant == "bad_utf8":
        attrs.create(key, data=b'\xff{"a": 1}', dtype=h5py.string_dtype("utf-8"))
    else:
        attrs[key] = json_value(key, m.variant)
    if m.variant == "bytes_valid" or (m.variant == "missing_keys" and key != "env_args"):
        return None
    entries = {"validate"} | (
        {"env_args", "window", "window:train"} if key == "env_args" else set()
    )
    return Expect(key, frozenset(entries), (key,))


def apply_total(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Make ``data.attrs['total']`` disagree with the demos (or a float)."""
    attrs = f["data"].attrs
    current = sum(scratch.base.steps)  # what the base file holds
    if m.variant == "missing":
        attrs.pop("total", None)
    else:
        attrs["total"] = {
            "plus_one": current + 1,
            "minus_one": current - 1,
            "float_exact": float(current),
            "str": "abc",
            "numeric_str": str(current),
            "array": np.array([current, current]),
            "nan": np.nan,
            "inf": np.inf,
            "bool": True,
        }[m.variant]
    return (
        None if m.variant == "float_exact" else Expect("total", frozenset({"validate"}), ("total",))
    )


MASK_USERS = frozenset({"demo_names:train", "window:train", "validate"})


def mask_value(names: list[str], variant: str) -> Any:
    """The new content of ``mask/train`` for the variants that write a dataset."""
    encoded = [n.encode() for n in names]
    return {
        "numeric": np.arange(2),
        "2d": np.array([encoded]),
        "scalar": np.bytes_(encoded[0]),
        "null_space": h5py.Empty("S8"),
        "missing_demo": np.array([b"demo_99"]),
        "non_demo_name": np.array([b"foo"]),
        "absolute_name": np.array([b"/data/" + encoded[0]]),
        "nul_name": np.array([encoded[0] + b"\x00x"]),
        "duplicate": np.array(encoded + encoded),
        "empty": np.array([], dtype="S8"),
    }.get(variant)


def apply_mask(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Replace ``mask/train`` by something that is not a list of demo names."""
    group = f.require_group("mask")
    if m.variant == "bytes_key":
        require_new(group, b"\xff\xfe")
        group.create_dataset(b"\xff\xfe", data=np.array([b"demo_0"]))
        return Expect("name", None, ("UTF-8",))
    names = list(scratch.base.train)
    if m.variant == "group":
        if group.get("train", getlink=True) is not None:
            del group["train"]
        group.create_group("train")
    elif m.variant == "vlen_valid":
        replace(f, m.target, data=np.array(names, dtype=object), dtype=h5py.string_dtype())
    else:
        replace(f, m.target, data=mask_value(names, m.variant))
    if m.variant in ("vlen_valid", "duplicate"):
        return None
    if m.variant == "empty":
        return Expect("mask", frozenset({"window:train"}), ("selects no demos",))
    keywords = ("mask/train", "mask 'train'")
    if m.variant in ("numeric", "2d", "group", "scalar", "null_space"):
        return Expect("mask", MASK_USERS | {"get_mask:train"}, keywords)
    return Expect("mask", MASK_USERS, keywords)


def add_obs_key(
    demo: h5py.Group,
    name: str | bytes,
    shape: tuple[int, ...],
    dtype: str,
    groups: tuple[str, ...] = ("obs", "next_obs"),
) -> None:
    """Add an observation array ``name`` of ``shape[1:]`` per step to ``groups`` of ``demo``."""
    rows = reader._decode_attr(demo.attrs.get("num_samples"))
    if not isinstance(rows, int) or isinstance(rows, bool) or not 0 < rows < 100:
        raise NotApplicable(demo.name)
    for group in groups:
        if not isinstance(demo.get(group), h5py.Group):
            raise NotApplicable(demo.name)
        require_new(demo[group], name)
    for group in groups:
        demo[group].create_dataset(name, data=np.ones((rows, *shape), dtype=dtype))


def apply_demo(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Change one demo's structure, observation keys or attributes."""
    demo = get(f, m.target)
    if not isinstance(demo, h5py.Group):
        raise NotApplicable(m.target)
    v, refused = m.variant, structural(m.target)
    if v == "demo_as_dataset":
        replace(f, m.target, data=np.zeros(3))
        return Expect("demo", refused, ("not a group",))
    if v == "delete_num_samples":
        demo.attrs.pop("num_samples", None)
        return Expect("demo", refused, ("lacks",))
    odd = {"odd_key_space": "x y", "odd_key_umlaut": "\u00fc", "odd_key_long": "k" * 65}
    if v in odd:
        add_obs_key(demo, odd[v], (2,), "f8")
        return Expect("demo", refused, ("observation keys",))
    if v == "odd_key_bytes":  # a name that is not UTF-8 (h5py then hands out bytes)
        add_obs_key(demo, b"\xff\xfe", (2,), "f8")
        return Expect("name", None, ("UTF-8",))
    if v in ("obs_only_key", "image_obs", "image_bad_channels"):
        shape = {"obs_only_key": (2,), "image_obs": (4, 4, 3), "image_bad_channels": (4, 4, 2)}[v]
        groups = ("obs",) if v == "obs_only_key" else ("obs", "next_obs")
        add_obs_key(demo, "cam", shape, "f8" if v == "obs_only_key" else "u1", groups)
        return None if v == "image_obs" else Expect("demo", refused, ("next_obs keys", "image"))
    if v == "obs_key_group":
        for group in ("obs", "next_obs"):
            if not isinstance(demo.get(group), h5py.Group):
                raise NotApplicable(m.target)
            require_new(demo[group], "grp")
        for group in ("obs", "next_obs"):
            demo[group].create_group("grp")
        return Expect("demo", refused, ("not an array",))
    if v == "extra_array":
        require_new(demo, "extra")
        demo["extra"] = np.zeros(2)
        return None
    name = b"\xff\xfe" if v == "attr_bytes_name" else "operator"
    demo.attrs[name] = {
        "attr_array": np.arange(3),
        "attr_huge": "x" * (schema.MAX_ATTR_TEXT + 1),
        "attr_compound": np.zeros((), dtype=[("a", "<f8")]),
        "attr_ok": "alice",
        "attr_bytes_name": 1,
    }[v]
    demo_name = demo_of(m.target)
    readers = frozenset({f"attrs:{demo_name}", f"episode:{demo_name}", "validate"})
    return None if v == "attr_ok" else Expect("attr", readers, ("attribute",))


def apply_file(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Add something beside the demos under ``data``."""
    data = f["data"]
    require_new(data, b"\xff\xfe" if m.variant == "bytes_demo_name" else "foo")
    if m.variant == "bytes_demo_name":
        data.create_group(b"\xff\xfe")
        return Expect("name", None, ("UTF-8",))
    if m.variant == "data_attr_junk":
        data.attrs["junk"] = np.zeros((2, 2))
        return None
    if m.variant == "extra_group_foo":
        data.create_group("foo")
    else:
        data["foo"] = np.zeros(1)
    users = frozenset({"demo_names", "window", "validate", "obs_keys_of"})
    return Expect("extra", users, ("demo_<int>",))


def apply_delete(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Delete a required array or group; refused."""
    get(f, m.target)  # NotApplicable when it is gone already
    del f[m.target]
    return Expect("delete", structural(m.target), ("lacks", "same non-empty set"))


def link_for(m: Mutation, scratch: Scratch) -> tuple[str, Any]:
    """Where the link goes (the path it replaces) and the link object itself."""
    other = str(scratch.other)
    names = scratch.base.names
    if m.variant in ("soft_array", "hard_shared"):
        demo, key = demo_of(m.target), m.target.split("/", 2)[2]
        peers = [n for n in names if n != demo]
        dest = (
            f"/data/{peers[0]}/{key}"
            if peers
            else f"/data/{demo}/" + ("rewards" if key != "rewards" else "states")
        )
        return m.target, (h5py.SoftLink(dest) if m.variant == "soft_array" else dest)
    return {
        "dangling": (m.target, h5py.SoftLink("/nowhere/at/all")),
        "external_array": (m.target, h5py.ExternalLink(other, "/" + m.target)),
        "soft_demo": (m.target, h5py.SoftLink(f"/data/{names[0]}")),
        "self_loop": (m.target, h5py.SoftLink("/" + m.target)),
        "external_demo": (m.target, h5py.ExternalLink(other, "/" + m.target)),
        "soft_obs_group": (m.target + "/obs", h5py.SoftLink(f"/{m.target}/next_obs")),
        "external_obs_group": (m.target + "/obs", h5py.ExternalLink(other, f"/{m.target}/obs")),
        "soft_mask": (m.target, h5py.SoftLink("/mask/valid")),
        "external_mask": (m.target, h5py.ExternalLink(other, "/mask/train")),
    }[m.variant]


def apply_link(f: h5py.File, m: Mutation, scratch: Scratch) -> Expect | None:
    """Replace an array, demo, obs group or mask by a link; refused at open."""
    path, link = link_for(m, scratch)
    if m.variant == "hard_shared":
        source = get(f, link.lstrip("/"))
        replace(f, path, link=source)  # a second hard link: allowed, it stays in the file
        return None
    replace(f, path, link=link)
    return Expect("link", None, ("link",))


APPLY: dict[str, Callable[[h5py.File, Mutation, Scratch], Expect | None]] = {
    "dtype": apply_dtype,
    "shape": apply_shape,
    "value": apply_value,
    "flag": apply_flag,
    "storage": apply_storage,
    "num_samples": apply_num_samples,
    "version": apply_version,
    "json": apply_json,
    "total": apply_total,
    "mask": apply_mask,
    "demo": apply_demo,
    "file": apply_file,
    "delete": apply_delete,
    "link": apply_link,
}


def replaced_path(m: Mutation) -> str | None:
    """The subtree a mutation replaces (earlier expectations there no longer hold)."""
    if m.kind in ("dtype", "shape", "value", "flag", "storage", "delete", "total", "json") or (
        m.kind == "mask" and m.variant != "bytes_key"
    ):
        return m.target
    if m.kind == "link":
        return m.target + "/obs" if m.variant.endswith("obs_group") else m.target
    if m.kind == "demo" and m.variant == "demo_as_dataset":
        return m.target
    return None


def mutate(
    path: Path, mutations: list[Mutation], scratch: Scratch
) -> tuple[list[Mutation], list[Expect]]:
    """Apply ``mutations`` in order; return those that applied and what must be refused."""
    applied: list[Mutation] = []
    expects: dict[str, Expect] = {}
    with h5py.File(path, "r+") as f:
        for m in mutations:
            try:
                expect = APPLY[m.kind](f, m, scratch)
            except NotApplicable:
                continue
            applied.append(m)
            gone = replaced_path(m)
            if gone is not None:
                expects = {
                    k: e
                    for k, e in expects.items()
                    if k.split("#")[0] != gone and not k.startswith(gone + "/")
                }
            if expect is not None:
                expects[f"{m.target}#{len(applied)}"] = expect
    return applied, list(expects.values())


# --------------------------------------------------------------------------- the entry points


def entry_points(path: Path, base: Base) -> dict[str, Callable[[], Any]]:
    """Every public way into the reader, by name ('arrays:demo_0' and so on per demo)."""

    def on_file(read: Callable[[h5py.File], Any]) -> Callable[[], Any]:
        def call() -> Any:
            with reader.open_dataset(path) as f:
                return read(f)

        return call

    calls: dict[str, Callable[[], Any]] = {
        "open": on_file(lambda f: None),
        "demo_names": lambda: reader.demo_names(path),
        "demo_names:train": lambda: reader.demo_names(path, "train"),
        "get_mask:train": lambda: reader.get_mask(path, "train"),
        "mask_keys": lambda: reader.mask_keys(path),
        "env_args": lambda: reader.read_env_args(path),
        "obs_keys_of": lambda: reader.obs_keys_of(path),
        "validate": lambda: validate_dataset(path),
        "window": lambda: WindowDataset(path, filter_key=None),
        "window:train": lambda: WindowDataset(path, filter_key="train"),
    }
    for name in base.names:
        calls[f"arrays:{name}"] = on_file(
            lambda f, n=name: reader.read_demo_arrays(f, n, base.read_keys())
        )
        calls[f"episode:{name}"] = lambda n=name: reader.read_episode(path, n)
        calls[f"attrs:{name}"] = on_file(
            lambda f, n=name: reader.demo_attrs(reader.check_demo(f, n))
        )
    return calls


def check_returned(entry: str, value: Any) -> None:
    """What an entry point returns is sound: finite floats, whole rows."""
    if isinstance(value, WindowDataset):
        assert np.isfinite(value.obs).all() and np.isfinite(value.actions).all(), entry
        assert len(value) == int(value.episode_lengths.sum()) == len(value.actions), entry
    if entry.startswith("arrays:"):
        rows = {len(array) for array in value.values()}
        assert len(rows) == 1, f"{entry}: arrays of different lengths {rows}"
        for key, array in value.items():
            assert array.dtype.kind != "f" or np.isfinite(array).all(), f"{entry}/{key}"


def outcome_of(entry: str, call: Callable[[], Any]) -> tuple[str, str]:
    """('ok' | 'DatasetError' | 'UserError', message); any other exception fails the test."""
    try:
        value = call()
    except DatasetError as exc:
        outcome, message = "DatasetError", str(exc)
    except UserError as exc:
        outcome, message = "UserError", str(exc)
    except Exception as exc:  # the contract broken: report which entry point and what
        raise AssertionError(f"{entry} raised {type(exc).__name__}: {exc}") from exc
    else:
        check_returned(entry, value)
        return "ok", ""
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from undecodable bytes: the CLI cannot print it
        raise AssertionError(f"{entry}: unprintable message {message!r}") from None
    return outcome, message


def check_expectations(
    results: dict[str, tuple[str, str]], expects: list[Expect], applied: list[Mutation]
) -> None:
    """Refusals that must happen, and messages that name the problem."""
    for expect in expects:
        entries = results.keys() if expect.entries is None else expect.entries & results.keys()
        for entry in entries:
            assert results[entry][0] != "ok", f"{entry} accepted a file with {expect.reason}"
    reasons = {expect.reason for expect in expects}
    if "version" in reasons:
        assert "format" in results["open"][1] and "version" in results["open"][1]
    elif "link" in reasons and "name" not in reasons:  # both found by one walk, either first
        assert "link" in results["open"][1], results["open"][1]
    if len(applied) == 1 and len(expects) == 1:
        (expect,) = expects
        entries = results.keys() if expect.entries is None else expect.entries & results.keys()
        for entry in entries:
            message = results[entry][1]
            assert any(k in message for k in expect.keywords), (entry, expect, message)


def record(results: dict[str, tuple[str, str]], applied: list[Mutation]) -> None:
    """Count the file, its validation outcome and each entry point's outcome."""
    COUNTS["structured files"] += 1
    COUNTS[f"structured files, validate -> {results['validate'][0]}"] += 1
    for entry, (outcome, _) in results.items():
        COUNTS[
            f"entry {entry.split(':')[0]}{':train' * entry.endswith(':train')} -> {outcome}"
        ] += 1
    for m in applied:
        COUNTS[f"mutation {m.kind}"] += 1


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ in the repository; a failure prints its example
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_mutated_files_raise_only_dataset_error(case: tuple[Base, list[Mutation]]) -> None:
    """Every entry point on every mutated file returns or raises DatasetError, and refuses
    what it must (NaN, links, virtual data, wrong version, bad dtypes and shapes, ...)."""
    base, drawn = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path, other = root / "case.hdf5", root / "other.hdf5"
        write_base(path, base)
        write_base(other, base)
        applied, expects = mutate(path, drawn, Scratch(root, base, other))
        results = {
            entry: outcome_of(entry, call) for entry, call in entry_points(path, base).items()
        }
    if not applied:
        assert results["validate"][0] == "ok", results["validate"]
    check_expectations(results, expects, applied)
    record(results, applied)


# --------------------------------------------------------------------------- in a subprocess

#: Runs the reader on files named on the command line, printing one RESULT line per entry
#: point and file. argv[1] is 'traps' (add names and keys a caller might pass, aimed at a
#: root-level link '/ext') or 'damage' (add the torch-based WindowDataset instead). Run in
#: a subprocess because the HDF5 C library may crash, hang, or block opening a FIFO.
CHILD = textwrap.dedent(
    """
    import sys
    from polymimic.datasets import reader
    from polymimic.datasets.reader import DatasetError
    from polymimic.datasets.validate import validate_dataset

    def on_file(path, read):
        def call():
            with reader.open_dataset(path) as f:
                return read(f)
        return call

    def calls(path):
        entries = {
            "validate": lambda: validate_dataset(path),
            "demo_names": lambda: reader.demo_names(path),
            "demo_names:train": lambda: reader.demo_names(path, "train"),
            "env_args": lambda: reader.read_env_args(path),
            "obs_keys_of": lambda: reader.obs_keys_of(path),
            "episode": lambda: reader.read_episode(path, "demo_0"),
            "attrs": on_file(path, lambda f: reader.demo_attrs(reader.check_demo(f, "demo_0"))),
        }
        if WINDOW:
            entries["window"] = lambda: WindowDataset(path, filter_key=None)
            entries["window:train"] = lambda: WindowDataset(path, filter_key="train")
        else:
            read = reader.read_demo_arrays
            entries["episode:/ext/x"] = lambda: reader.read_episode(path, "/ext/x")
            entries["arrays:/ext/x"] = on_file(path, lambda f: read(f, "demo_0", ["/ext/x"]))
            entries["arrays:obs/."] = on_file(path, lambda f: read(f, "demo_0", ["obs/."]))
        return entries

    def outcome(call):
        try:
            call()
        except DatasetError:
            return "DatasetError"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:300].replace("\\n", " ")
        return "ok"

    WINDOW = sys.argv[1] == "damage"
    if WINDOW:
        from polymimic.datasets.windows import WindowDataset
    for index, path in enumerate(sys.argv[2:]):
        print("BEGIN", index, flush=True)
        for entry, call in calls(path).items():
            print("RESULT", index, entry, "|", outcome(call), flush=True)
        print("END", index, flush=True)
    """
)


@dataclasses.dataclass
class ChildRun:
    """What the subprocess reported: outcomes per file index, exit code (None: timed out)."""

    results: dict[int, dict[str, str]]
    returncode: int | None
    unfinished: int | None  # the file it was reading when it crashed or hung
    stderr: str


def run_child(paths: list[Path], window: bool, timeout: float) -> ChildRun:
    """Run ``CHILD`` over ``paths`` in a fresh interpreter with a wall-clock limit."""
    command = [sys.executable, "-c", CHILD, "damage" if window else "traps", *map(str, paths)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, code = exc.stdout or b"", exc.stderr or b"", None
    results: dict[int, dict[str, str]] = {}
    begun = ended = None
    for line in stdout.decode("utf-8", "replace").splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "BEGIN":
            begun = int(rest)
        elif tag == "END":
            ended = int(rest)
        elif tag == "RESULT":
            head, _, outcome = rest.partition(" | ")
            index, entry = head.split(" ", 1)
            results.setdefault(int(index), {})[entry] = outcome
    unfinished = begun if begun is not None and begun != ended else None
    return ChildRun(results, code, unfinished, stderr.decode("utf-8", "replace")[-2000:])


def others(run: ChildRun) -> list[str]:
    """Outcomes that are neither 'ok' nor 'DatasetError' (each a broken promise)."""
    return [
        f"file {index} {entry}: {outcome}"
        for index, outcomes in sorted(run.results.items())
        for entry, outcome in outcomes.items()
        if outcome not in ("ok", "DatasetError")
    ]


# --------------------------------------------------------------------------- out-of-file data

SMALL = Base(
    names=("demo_0", "demo_1"),
    steps=(3, 2),
    obs_keys=("pos",),
    obs_dim=2,
    action_dim=2,
    train=("demo_0",),
)


def trap_placements(f: h5py.File, placement: str, trap: str) -> None:
    """Make ``f`` refer to the FIFO ``trap`` in the way ``placement`` names."""
    if placement.startswith("external_link:"):
        path = placement.split(":", 1)[1]
        replace(f, path, link=h5py.ExternalLink(trap, "/x"))
    elif placement == "root_external_link_named_by_mask":
        f["ext"] = h5py.ExternalLink(trap, "/x")
        replace(f, "mask/train", data=np.array([b"/ext/x"]))
    elif placement.startswith("virtual:"):
        path = placement.split(":", 1)[1]
        old = f[path]
        layout = h5py.VirtualLayout(shape=old.shape, dtype=old.dtype)
        layout[...] = h5py.VirtualSource(trap, "x", shape=old.shape, dtype=old.dtype)
        parent, _, leaf = path.rpartition("/")
        del f[path]
        f[parent].create_virtual_dataset(leaf, layout)
    else:  # external raw storage
        path = placement.split(":", 1)[1]
        shape, dtype = f[path].shape, f[path].dtype
        replace(f, path, shape=shape, dtype=dtype, external=[(trap, 0, h5py.h5f.UNLIMITED)])


TRAPS = (
    "external_link:data",
    "external_link:data/demo_0",
    "external_link:data/demo_0/actions",
    "external_link:data/demo_0/obs",
    "external_link:data/demo_1/next_obs/pos",
    "external_link:mask",
    "external_link:mask/train",
    "root_external_link_named_by_mask",
    "virtual:data/demo_0/actions",
    "virtual:data/demo_1/obs/pos",
    "virtual:mask/train",
    "external_storage:data/demo_0/states",
    "external_storage:mask/train",
)


def fifo_blocks_h5py(root: Path) -> bool:
    """Control: following an external link to a FIFO blocks (so the trap would catch it).

    In a subprocess: h5py keeps the GIL while HDF5 is blocked in open(), so no thread of
    this process could release it.
    """
    fifo, path = root / "control.fifo", root / "control.hdf5"
    os.mkfifo(fifo)
    with h5py.File(path, "w") as f:
        f["x"] = h5py.ExternalLink(str(fifo), "/x")
    follow = f"import h5py; h5py.File({str(path)!r}, 'r')['x']"
    try:
        subprocess.run([sys.executable, "-c", follow], capture_output=True, timeout=3, check=False)
    except subprocess.TimeoutExpired:
        return True
    return False


def test_out_of_file_references_are_never_opened(tmp_path: Path) -> None:
    """External links, virtual sources and external storage point at a FIFO: opening it
    would block the subprocess, so finishing in time proves nothing followed them."""
    assert fifo_blocks_h5py(tmp_path), "this platform's HDF5 does not block on FIFOs"
    trap = tmp_path / "trap.fifo"
    os.mkfifo(trap)
    paths = []
    for index, placement in enumerate(TRAPS):
        path = tmp_path / f"trap_{index}.hdf5"
        write_base(path, SMALL)
        with h5py.File(path, "r+") as f:
            trap_placements(f, placement, str(trap))
        paths.append(path)
    run = run_child(paths, window=False, timeout=30)
    assert run.returncode == 0, (
        f"the reader blocked or crashed on {TRAPS[run.unfinished or 0]!r} "
        f"(exit {run.returncode}): {run.stderr}"
    )
    assert not others(run), others(run)
    for index, placement in enumerate(TRAPS):
        assert run.results[index]["validate"] == "DatasetError", placement
        COUNTS[f"out-of-file references refused by validate ({len(TRAPS)} files)"] += 1


# --------------------------------------------------------------------------- raw bytes


def data_ranges(path: Path) -> list[tuple[int, int]]:
    """(start, end) byte ranges of the arrays' raw data; the rest is HDF5 metadata."""
    ranges = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.id.get_offset() is not None:
            start = obj.id.get_offset()
            ranges.append((start, start + obj.id.get_storage_size()))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return ranges


def damaged(
    good: bytes, metadata: np.ndarray, rng: np.random.Generator
) -> tuple[bytes, str, range]:
    """One damaged copy of ``good``, a description of the damage and the bytes it changed.

    Three in four hits land in metadata (superblock, object headers, B-trees, heaps), where
    damage changes structure rather than values.
    """
    data = bytearray(good)
    where = int(rng.choice(metadata)) if rng.random() < 0.75 else int(rng.integers(len(data)))
    kind = str(rng.choice(["flip", "overwrite", "zero", "ones", "truncate"]))
    if kind == "truncate":
        cut = int(rng.integers(len(data)))
        return bytes(data[:cut]), f"truncate at {cut}", range(0)
    if kind == "flip":
        bits = rng.integers(0, 8, size=int(rng.integers(1, 4)))
        for bit in bits:
            data[where] ^= 1 << int(bit)
        return bytes(data), f"flip bits {bits.tolist()} of byte {where}", range(where, where + 1)
    size = int(rng.integers(1, 17))
    fill = {
        "overwrite": rng.integers(0, 256, size=size).astype(np.uint8).tobytes(),
        "zero": bytes(size),
        "ones": b"\xff" * size,
    }[kind]
    data[where : where + size] = fill[: len(data) - where]
    return bytes(data), f"{kind} {size} bytes at {where}", range(where, where + size)


HANG = "HDF5 hangs on a damaged global heap"
HUGE_VLEN = "HDF5 allocates a damaged string length"


def hdf5_traps(good: bytes) -> dict[int, str]:
    """Bytes of ``good`` where damage trips the HDF5 C library itself, by offset.

    Damage there is skipped, because polymimic can neither avoid reading variable-length
    strings (env_args is one) nor interrupt one HDF5 call (h5py holds the GIL). Both were
    found by this fuzzer with HDF5 2.0.0; plain h5py, ``h5py.File(p)["data"].attrs["env_args"]``,
    shows them:

    - ``HANG``: the size field of an object in the global heap collection ("GCOL"), made
      larger than the collection (or the free-space object's made smaller): the read spins
      forever.
    - ``HUGE_VLEN``: the 32-bit length in a string's reference into that heap, made large:
      HDF5 allocates and fills that many bytes (up to 4 GB, several seconds) before it finds
      the damage and raises.
    """
    traps: dict[int, str] = {}
    start = good.find(b"GCOL")
    if start < 0:
        return traps
    position, end = start + 16, start + int.from_bytes(good[start + 8 : start + 16], "little")
    while position + 16 <= end:  # object: index (2), refcount (2), reserved (4), size (8)
        index = int.from_bytes(good[position : position + 2], "little")
        size = int.from_bytes(good[position + 8 : position + 16], "little")
        traps.update(dict.fromkeys(range(position + 8, position + 16), HANG))
        if index == 0:  # the free space, last
            break
        reference = struct.pack("<IQI", size, start, index)  # length, collection, index
        at = good.find(reference)
        while at >= 0:
            traps.update(dict.fromkeys(range(at, at + 4), HUGE_VLEN))
            at = good.find(reference, at + 1)
        position += 16 + (size + 7) // 8 * 8
    return traps


def test_raw_byte_mutations(tmp_path: Path) -> None:
    """Bit flips, overwrites and truncations of a small valid file: every entry point, in a
    subprocess with a timeout, returns or raises DatasetError; nothing crashes or hangs."""
    good_path = tmp_path / "good.hdf5"
    write_base(good_path, SMALL)
    good = good_path.read_bytes()
    in_data = np.zeros(len(good), dtype=bool)
    for start, end in data_ranges(good_path):
        in_data[start:end] = True
    metadata = np.flatnonzero(~in_data)
    seed = int(os.environ.get("POLYMIMIC_FUZZ_SEED", "20240607"))
    rng = np.random.default_rng(seed)
    paths, damage = [], []
    traps = hdf5_traps(good)
    for index in range(BYTE_FILES):
        content, description, touched = damaged(good, metadata, rng)
        tripped = {traps[offset] for offset in touched if offset in traps}
        if tripped:  # a known HDF5 C-library problem, see hdf5_traps
            COUNTS[f"byte-damaged files skipped ({', '.join(sorted(tripped))})"] += 1
            continue
        paths.append(tmp_path / f"damaged_{index}.hdf5")
        paths[-1].write_bytes(content)
        damage.append(f"file {index}: {description}")
    run = run_child(paths, window=True, timeout=30 + 0.5 * len(paths))
    where = damage[run.unfinished] if run.unfinished is not None else "?"
    assert run.returncode == 0, f"exit {run.returncode} while reading {where}: {run.stderr}"
    bad = others(run)
    assert not bad, [f"{damage[int(b.split()[1])]}: {b}" for b in bad]
    assert len(run.results) == len(paths)
    for outcomes in run.results.values():
        COUNTS["byte-damaged files"] += 1
        COUNTS[f"byte-damaged files, validate -> {outcomes['validate']}"] += 1


# --------------------------------------------------------------------------- totals


@pytest.mark.parametrize("total", ["abc", np.array([1, 2]), np.nan, np.inf], ids=repr)
def test_total_that_is_not_a_number_is_a_dataset_error(tmp_path: Path, total: Any) -> None:
    """``total`` is only compared with the demos' lengths; a non-number must be refused."""
    path = tmp_path / "total.hdf5"
    write_base(path, SMALL)
    with h5py.File(path, "r+") as f:
        f["data"].attrs["total"] = total
    with pytest.raises(DatasetError, match="total"):
        validate_dataset(path)


def test_report_fuzz_counts() -> None:
    """Print what the fuzz tests above generated (``pytest -s``); runs last in the module."""
    lines = [f"{count:7d}  {key}" for key, count in sorted(COUNTS.items())]
    print("\nreader fuzz counts:\n" + "\n".join(lines))
