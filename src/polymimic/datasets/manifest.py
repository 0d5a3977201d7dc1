"""Content-hash manifests: is a generated dataset the benchmark's reference data?

Simulation is deterministic for fixed code and library versions, but not across MuJoCo
versions, CPU architectures or changes to the tasks and operators. A named dataset therefore
ships a committed manifest (``manifests/<name with / as __>.json``) holding one sha256 per
demo, and every generation is checked against it, so a user learns when their "same" dataset
is not the data the published results were computed on.

A demo's hash covers its arrays only (not the HDF5 bytes, which vary with h5py and
compression settings): ``actions``, ``states``, ``rewards``, ``obs/<key>`` and
``next_obs/<key>`` in sorted key order, ``dones``, ``terminations``, ``truncations``; each
enters as its name, dtype, shape and C-order bytes. Hashes are keyed by operator id and demo
index, and demo seeds do not depend on the number of demos per operator
(``DatasetSpec.episode_seed``), so a smaller generation is checked against the first demos
of each operator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from polymimic.datasets.hdf5 import (
    PathLike,
    _decode_attr,
    _error,
    demo_names,
    open_dataset,
    read_json_attr,
)
from polymimic.io import atomic_write_json, library_versions

MANIFEST_VERSION = 1
HASH_DESCRIPTION = (
    "sha256 over actions, states, rewards, obs/<key> and next_obs/<key> (sorted keys), dones, "
    "terminations, truncations; each as 'name|dtype|shape' then C-order bytes"
)
_SHOWN_DEMOS = 20  # how many differing demos a report names before summarising the rest

#: (operator id, demo index) -> sha256 hex digest
DemoKey = tuple[str, int]


def _hashed_arrays(demo: h5py.Group) -> list[tuple[str, h5py.Dataset]]:
    """The arrays a demo hash covers, in hashing order."""
    entries = [(name, demo[name]) for name in ("actions", "states", "rewards")]
    for group in ("obs", "next_obs"):
        entries += [(f"{group}/{key}", demo[group][key]) for key in sorted(demo[group])]
    entries += [(name, demo[name]) for name in ("dones", "terminations", "truncations")]
    return entries


def demo_digest(demo: h5py.Group) -> str:
    """sha256 (hex) of one demo group's arrays, as described in the module docstring."""
    digest = hashlib.sha256()
    for name, dataset in _hashed_arrays(demo):
        array = np.ascontiguousarray(dataset[()])
        # dtype.str includes the byte order, so equal values stored differently differ.
        digest.update(f"{name}|{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class DemoDigest:
    """The hash of one demo of a file and where it is."""

    demo: str  # name in the file, e.g. demo_3
    operator: str
    demo_index: int
    sha256: str


def file_digests(path: PathLike) -> list[DemoDigest]:
    """Hash every demo of a generated dataset, in file order.

    Raises:
        DatasetError: unreadable file, or a demo without ``operator``/``demo_index`` attrs
            (only generated datasets carry them).
    """
    digests = []
    with open_dataset(path) as f:
        for name in demo_names(f):
            attrs = f["data"][name].attrs
            if "operator" not in attrs or "demo_index" not in attrs:
                problem = f"{name} has no operator/demo_index attrs, so it has no manifest key"
                raise _error(path, problem, "Only files made by `polymimic data generate` can be checked.")
            key = (str(_decode_attr(attrs["operator"])), int(_decode_attr(attrs["demo_index"])))
            digests.append(DemoDigest(name, *key, demo_digest(f["data"][name])))
    return digests


def combined_digest(digests: list[DemoDigest]) -> str:
    """One sha256 over all per-demo hashes (sorted by operator and index): a file's fingerprint."""
    lines = sorted(f"{d.operator}/{d.demo_index}:{d.sha256}\n" for d in digests)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def build_manifest(path: PathLike, dataset_name: str) -> dict[str, Any]:
    """The manifest of a generated file: per-operator lists of demo hashes, plus versions.

    Raises:
        ValueError: the file is not complete per operator (a demo index is missing), so
            the lists would not be indexable by demo index.
    """
    per_operator: dict[str, dict[int, str]] = {}
    for d in file_digests(path):
        per_operator.setdefault(d.operator, {})[d.demo_index] = d.sha256
    demos = {}
    for operator, by_index in sorted(per_operator.items()):
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(f"{path}: operator {operator} lacks demo indices: {sorted(by_index)}")
        demos[operator] = [by_index[i] for i in range(len(by_index))]
    return {
        "manifest_version": MANIFEST_VERSION,
        "dataset": dataset_name,
        "hash": HASH_DESCRIPTION,
        "demos_per_operator": min(len(v) for v in demos.values()),
        "versions": library_versions(),
        "demos": demos,
    }


def manifest_filename(dataset_name: str) -> str:
    """``polymimic/push/multi-operator-v1`` -> ``polymimic__push__multi-operator-v1.json``."""
    return dataset_name.replace("/", "__") + ".json"


def manifest_dir() -> Path:
    """The package's ``manifests`` directory (package data, committed with the code)."""
    return Path(str(importlib.resources.files("polymimic.datasets") / "manifests"))


def load_manifest(dataset_name: str, directory: PathLike | None = None) -> dict[str, Any] | None:
    """The committed manifest of a named dataset, or None when it has none.

    Raises:
        ValueError: the manifest exists but is not valid JSON of a known manifest version.
    """
    path = Path(directory or manifest_dir()) / manifest_filename(dataset_name)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: not a manifest of version {MANIFEST_VERSION}")
    return manifest


def write_manifest(manifest: Mapping[str, Any], directory: PathLike | None = None) -> Path:
    """Write a manifest (atomically) under its dataset's file name; returns the path."""
    path = Path(directory or manifest_dir()) / manifest_filename(manifest["dataset"])
    return atomic_write_json(path, dict(manifest))


@dataclasses.dataclass
class ManifestCheck:
    """How a generated file compares with its dataset's manifest."""

    path: str  # the checked file
    dataset: str
    checked: int  # demos with a reference hash
    differing: list[DemoDigest]  # demos whose hash is not the manifest's
    unreferenced: list[DemoDigest]  # demos beyond what the manifest covers
    manifest_versions: dict[str, Any]
    current_versions: dict[str, Any]

    @property
    def matches(self) -> bool:
        """Every demo of the file has a reference hash and equals it."""
        return not self.differing and not self.unreferenced

    def version_changes(self) -> dict[str, tuple[Any, Any]]:
        """Library versions that differ: key -> (manifest's, now)."""
        keys = sorted(set(self.manifest_versions) | set(self.current_versions))
        pairs = {k: (self.manifest_versions.get(k), self.current_versions.get(k)) for k in keys}
        return {k: pair for k, pair in pairs.items() if pair[0] != pair[1]}

    def describe(self) -> str:
        """A report for people: one line when it matches, a warning with details otherwise."""
        if self.matches:
            return f"{self.path}: matches manifest ({self.checked} demos)"
        lines = [f"WARNING: {self.path} is not the reference data of {self.dataset}."]
        if self.differing:
            shown = ", ".join(
                f"{d.demo} ({d.operator} #{d.demo_index})" for d in self.differing[:_SHOWN_DEMOS]
            )
            more = len(self.differing) - _SHOWN_DEMOS
            lines.append(
                f"  {len(self.differing)} of {self.checked} demos differ from the manifest: "
                f"{shown}{f', and {more} more' if more > 0 else ''}"
            )
        if self.unreferenced:
            lines.append(f"  {len(self.unreferenced)} demos lie beyond the manifest (no reference hash)")
        lines.append(
            "  The benchmark data differs from the reference: results on it are not comparable "
            "with results computed on the reference data."
        )
        changes = self.version_changes()
        if changes:
            lines.append("  library versions (manifest -> now):")
            lines += [f"    {k}: {old} -> {new}" for k, (old, new) in changes.items()]
        else:
            lines.append(
                "  library versions equal the manifest's: the difference comes from polymimic's "
                "code (tasks, operators) or a modified file."
            )
        return "\n".join(lines)


def check_manifest(path: PathLike, manifest: Mapping[str, Any]) -> ManifestCheck:
    """Compare every demo of a generated file with a manifest's hash for it.

    Raises:
        DatasetError: unreadable file, or the file holds another dataset than the manifest.
    """
    with open_dataset(path) as f:
        metadata = read_json_attr(f, "polymimic_metadata")
    name = metadata.get("dataset_name")
    if name != manifest["dataset"]:
        raise _error(path, f"file holds dataset {name!r}, manifest is for {manifest['dataset']!r}",
                     "Check it against its own dataset's manifest.")
    reference: Mapping[str, list[str]] = manifest["demos"]
    checked, differing, unreferenced = 0, [], []
    for d in file_digests(path):
        hashes = reference.get(d.operator, [])
        if d.demo_index >= len(hashes):
            unreferenced.append(d)
            continue
        checked += 1
        if hashes[d.demo_index] != d.sha256:
            differing.append(d)
    return ManifestCheck(
        path=str(path), dataset=str(name), checked=checked, differing=differing,
        unreferenced=unreferenced, manifest_versions=dict(manifest.get("versions", {})),
        current_versions=library_versions(),
    )
